"""Periodic jobs: each workspace visited in its own bound transaction, batches repeated until
done, and a workspace another process is working on skipped rather than worked twice."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.session import Database
from app.jobs.registry import PeriodicJob, periodic_job, periodic_jobs, register_periodic_job
from app.jobs.registry import _jobs as registered_jobs
from app.jobs.runner import run_once, workspace_ids
from tests.conftest import WorkspaceHandle


@pytest.fixture
def scratch_job_names() -> Iterator[list[str]]:
    names: list[str] = []
    yield names
    for name in names:
        registered_jobs.pop(name, None)


async def test_workspace_ids_lists_every_workspace_to_the_service_role(
    database: Database, make_workspace: object
) -> None:
    first: WorkspaceHandle = await make_workspace()  # type: ignore[operator]
    second: WorkspaceHandle = await make_workspace()  # type: ignore[operator]

    listed = await workspace_ids(database)

    assert {first.id, second.id} <= set(listed)


async def test_each_pass_runs_bound_to_its_workspace_and_repeats_full_batches(
    database: Database, make_workspace: object
) -> None:
    first: WorkspaceHandle = await make_workspace()  # type: ignore[operator]
    second: WorkspaceHandle = await make_workspace()  # type: ignore[operator]
    backlog = {first.id: 5, second.id: 2}
    calls: list[tuple[uuid.UUID, str]] = []

    async def drain(session: AsyncSession, workspace_id: uuid.UUID, limit: int) -> int:
        bound = (await session.execute(text("SELECT crm_current_workspace()::text"))).scalar()
        calls.append((workspace_id, str(bound)))
        done = min(limit, backlog[workspace_id])
        backlog[workspace_id] -= done
        return done

    job = PeriodicJob("test-drain", every_seconds=60, run=drain, batch_size=2)

    report = await run_once(database, job, only=[first.id, second.id])

    assert report.changed == {first.id: 5, second.id: 2}
    assert report.skipped == []
    assert backlog == {first.id: 0, second.id: 0}
    # 5 items in batches of 2: 2, 2, 1. A full last batch (2 of 2) needs one more, empty call.
    assert [workspace for workspace, _ in calls] == [first.id] * 3 + [second.id] * 2
    assert all(bound == str(workspace) for workspace, bound in calls)


async def test_a_workspace_locked_by_another_process_is_skipped_not_worked_twice(
    database: Database, make_workspace: object
) -> None:
    busy: WorkspaceHandle = await make_workspace()  # type: ignore[operator]
    free: WorkspaceHandle = await make_workspace()  # type: ignore[operator]
    visited: list[uuid.UUID] = []

    async def note(session: AsyncSession, workspace_id: uuid.UUID, limit: int) -> int:
        visited.append(workspace_id)
        return 1

    job = PeriodicJob("test-lock", every_seconds=60, run=note)
    # Another process in the middle of the same job on `busy`.
    async with database.engine.connect() as other, other.begin():
        held = await other.execute(
            text("SELECT pg_try_advisory_xact_lock(hashtext(:job), hashtext(:workspace))"),
            {"job": "crm-job:test-lock", "workspace": str(busy.id)},
        )
        assert held.scalar_one() is True

        report = await run_once(database, job, only=[busy.id, free.id])

    assert report.skipped == [busy.id]
    assert report.changed == {free.id: 1}
    assert visited == [free.id]


async def test_a_failing_pass_rolls_back_what_it_wrote(
    database: Database, workspace: WorkspaceHandle
) -> None:
    async def fail_after_writing(session: AsyncSession, workspace_id: uuid.UUID, limit: int) -> int:
        await session.execute(text("UPDATE workspaces SET name = 'changed by a job'"))
        raise RuntimeError("the job broke")

    job = PeriodicJob("test-fail", every_seconds=60, run=fail_after_writing)

    with pytest.raises(RuntimeError):
        await run_once(database, job, only=[workspace.id])

    async with database.sessionmaker() as session, session.begin():
        await session.execute(
            text("SELECT set_config('app.workspace_id', :id, true)"), {"id": str(workspace.id)}
        )
        name = (await session.execute(text("SELECT name FROM workspaces"))).scalar_one()
    assert name != "changed by a job"


def test_registry_refuses_a_job_that_would_never_finish_and_names_unknown_jobs(
    scratch_job_names: list[str],
) -> None:
    async def nothing(session: AsyncSession, workspace_id: uuid.UUID, limit: int) -> int:
        return 0

    with pytest.raises(ValueError, match="positive"):
        register_periodic_job(PeriodicJob("test-zero", every_seconds=0, run=nothing))
    with pytest.raises(ValueError, match="positive"):
        register_periodic_job(PeriodicJob("test-zero", every_seconds=1, run=nothing, batch_size=0))

    scratch_job_names.append("test-registered")
    register_periodic_job(PeriodicJob("test-registered", every_seconds=1, run=nothing))
    assert periodic_job("test-registered").run is nothing
    assert "test-registered" in [job.name for job in periodic_jobs()]
    with pytest.raises(LookupError, match="no periodic job named 'test-missing'"):
        periodic_job("test-missing")
