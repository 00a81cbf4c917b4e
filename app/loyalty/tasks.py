"""The loyalty sweep: pending points released and lots expired when their time comes, and
tiers re-derived as the rolling window moves. Run by every service process and by
``crm worker`` / ``crm loyalty sweep``; idempotent, so overlapping runs are harmless."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from app.jobs.registry import PeriodicJob, register_periodic_job
from app.loyalty.service import loyalty as loyalty_service

SWEEP_JOB = "loyalty-sweep"


async def sweep(session: AsyncSession, workspace_id: uuid.UUID, limit: int) -> int:
    return await loyalty_service.sweep(session, workspace_id, limit)


register_periodic_job(PeriodicJob(SWEEP_JOB, every_seconds=300, run=sweep, batch_size=200))
