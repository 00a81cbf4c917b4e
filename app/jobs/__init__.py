"""Periodic work done per workspace: loyalty expiry and pending release, SLA sweeps.

A module registers a job when it is imported (from ``app.modules``)::

    register_periodic_job(PeriodicJob("loyalty-sweep", every_seconds=300, run=sweep))

where ``run`` is ``async (session, workspace_id, limit) -> items changed``, called in a
transaction already bound to the workspace. The runner calls it again, in a new transaction,
while it returns ``limit`` items, so one large backlog never becomes one long transaction.

Every service process runs every job (unless ``CRM_RUN_JOBS=false``), and so does
``crm worker``. Several processes never work on the same (job, workspace) at once: each
transaction first takes ``pg_try_advisory_xact_lock`` on that pair and skips the workspace when
another process holds it. Jobs must still be idempotent (running twice changes nothing the
second time), because the lock only spans one transaction.
"""
