"""The SLA sweep: ``case.sla_warning`` and ``case.sla_breached``, once each per case and target,
and the closing of resolved cases whose reopen window has passed.

Run by every service process and by ``crm worker`` (``app.jobs``). Each event is claimed by an
UPDATE that sets the case's stamp only where it is still null, so two processes sweeping at the
same time (or one sweeping twice) never emit an event twice.
"""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from app.case.repository import CaseRepository
from app.case.service import case as case_service
from app.events import outbox
from app.jobs.registry import PeriodicJob, register_periodic_job

# (stamp column, due column, event, target)
CHECKS = (
    ("first_response_warned_at", "first_response_warn_at", "case.sla_warning", "first_response"),
    ("first_response_breached_at", "first_response_due_at", "case.sla_breached", "first_response"),
    ("resolution_warned_at", "resolution_warn_at", "case.sla_warning", "resolution"),
    ("resolution_breached_at", "resolution_due_at", "case.sla_breached", "resolution"),
)


async def sweep(session: AsyncSession, workspace_id: uuid.UUID, limit: int) -> int:
    """Emit the SLA events that came due; returns how many (at most ``limit`` per kind)."""
    repository = CaseRepository(session)
    emitted = 0
    for stamp, due, event, target in CHECKS:
        for case_id, due_at in await repository.mark_sla_events(workspace_id, stamp, due, limit):
            await outbox.record(
                session,
                workspace_id=workspace_id,
                type=event,
                aggregate_type="case",
                aggregate_id=case_id,
                data={"case_id": str(case_id), "target": target, "at": due_at.isoformat()},
            )
            emitted += 1
    emitted += await case_service.close_expired(session, workspace_id, limit)
    await session.flush()
    # The runner calls again while a call returns ``limit`` or more: some kind may be left.
    return emitted


register_periodic_job(PeriodicJob("case-sla-sweep", every_seconds=30, run=sweep, batch_size=500))
