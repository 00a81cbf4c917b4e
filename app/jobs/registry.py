"""The periodic jobs modules have registered."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

JobFn = Callable[[AsyncSession, uuid.UUID, int], Awaitable[int]]


@dataclass(frozen=True)
class PeriodicJob:
    name: str
    every_seconds: float
    run: JobFn
    # Items per transaction: the runner repeats while a call returns this many.
    batch_size: int = 1000


_jobs: dict[str, PeriodicJob] = {}


def register_periodic_job(job: PeriodicJob) -> None:
    if job.every_seconds <= 0 or job.batch_size <= 0:
        raise ValueError(f"job {job.name!r}: interval and batch size must be positive")
    _jobs[job.name] = job


def periodic_jobs() -> list[PeriodicJob]:
    return sorted(_jobs.values(), key=lambda job: job.name)


def periodic_job(name: str) -> PeriodicJob:
    try:
        return _jobs[name]
    except KeyError:
        known = ", ".join(job.name for job in periodic_jobs()) or "none"
        raise LookupError(f"no periodic job named {name!r} (known: {known})") from None
