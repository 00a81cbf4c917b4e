"""Running periodic jobs across workspaces, safely from several processes at once."""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from dataclasses import dataclass, field

from sqlalchemy import text

from app.db.session import Database, bind_workspace
from app.jobs.registry import PeriodicJob

logger = logging.getLogger("crm.jobs")

# Row-level security hides workspaces from the service role; this function lists their ids
# (and nothing else) for jobs.
_WORKSPACE_IDS = text("SELECT crm_workspace_ids()")
_TRY_LOCK = text("SELECT pg_try_advisory_xact_lock(hashtext(:job), hashtext(:workspace))")


@dataclass
class JobReport:
    job: str
    changed: dict[uuid.UUID, int] = field(default_factory=dict)
    # Workspaces another process was working on at the time.
    skipped: list[uuid.UUID] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.changed.values())


async def workspace_ids(database: Database) -> list[uuid.UUID]:
    async with database.sessionmaker() as session:
        return list((await session.execute(_WORKSPACE_IDS)).scalars())


async def run_in_workspace(
    database: Database, job: PeriodicJob, workspace_id: uuid.UUID
) -> int | None:
    """Run ``job`` to completion in one workspace; None when another process holds it."""
    total = 0
    while True:
        async with database.sessionmaker() as session, session.begin():
            locked = (
                await session.execute(
                    _TRY_LOCK, {"job": f"crm-job:{job.name}", "workspace": str(workspace_id)}
                )
            ).scalar_one()
            if not locked:
                return None if total == 0 else total
            await bind_workspace(session, workspace_id)
            changed = await job.run(session, workspace_id, job.batch_size)
        total += changed
        if changed < job.batch_size:
            return total


async def run_once(
    database: Database, job: PeriodicJob, only: list[uuid.UUID] | None = None
) -> JobReport:
    """One pass of ``job`` over every workspace (or over ``only``)."""
    report = JobReport(job.name)
    for workspace_id in only if only is not None else await workspace_ids(database):
        changed = await run_in_workspace(database, job, workspace_id)
        if changed is None:
            report.skipped.append(workspace_id)
        else:
            report.changed[workspace_id] = changed
    return report


async def run_forever(database: Database, job: PeriodicJob) -> None:
    """Run ``job`` every ``every_seconds``, until cancelled; a failed pass is logged and retried
    on the next round. The first pass waits a random part of the interval, so processes
    started together do not all sweep at the same moment."""
    await asyncio.sleep(random.uniform(0, job.every_seconds))  # noqa: S311 - jitter, not a secret
    while True:
        try:
            report = await run_once(database, job)
            if report.total:
                logger.info("job %s changed %d item(s)", job.name, report.total)
        except Exception as exc:
            logger.warning("job %s failed: %s: %s", job.name, exc.__class__.__name__, exc)
        await asyncio.sleep(job.every_seconds)
