"""Loyalty ledger throughput: earn and redeem transactions per second, through the service
layer (one transaction per operation, as a request runs it), on one hot account and spread
over many accounts.

    .venv/bin/python -m bench.loyalty [--duration 10] [--workers 16] [--accounts 200]

A fresh embedded PostgreSQL in a temporary directory, removed afterwards. Each worker has a
connection of its own and alternates a manual earn of 1 point and a redemption of 1 point.
On the hot account every write queues on the account's row lock; spread, the workers write
to different accounts and only share the machine. The cores are shared by the workers and
PostgreSQL, so figures move from run to run.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from app.auth.dependencies import AuthContext
from app.auth.scopes import Scope
from app.config import Settings
from app.contact.schemas import ContactCreate
from app.contact.service import contact as contact_service
from app.db.bootstrap import migrate_to_head, resolve_target
from app.db.session import Database, bind_workspace
from app.kit.schemas import parse_input
from app.loyalty import schemas
from app.loyalty.service import loyalty as loyalty_service
from app.workspace.service import workspace as workspace_service

SEED_POINTS = 1_000_000


async def _setup(database: Database, accounts: int) -> tuple[AuthContext, list[uuid.UUID]]:
    async with database.sessionmaker() as session, session.begin():
        created = await workspace_service.create(session, name="Loyalty bench")
    auth = AuthContext(
        workspace_id=created.workspace.id,
        api_key_id=created.admin_key.record.id,
        scopes=frozenset({Scope.admin.value}),
    )
    ids: list[uuid.UUID] = []
    async with database.sessionmaker() as session, session.begin():
        await bind_workspace(session, auth.workspace_id)
        program, _ = await loyalty_service.create_program(
            session, auth, parse_input(schemas.ProgramCreate, {"name": "Bench"})
        )
        for index in range(accounts):
            contact = await contact_service.create(
                session, auth, ContactCreate(given_name=f"Member {index}")
            )
            account = await loyalty_service.enrol(
                session, auth, schemas.AccountCreate(program_id=program.id, contact_id=contact.id)
            )
            await loyalty_service.post_entry(
                session, auth, account.id, schemas.EntryCreate(kind="earn", points=SEED_POINTS)
            )
            ids.append(account.id)
    return auth, ids


async def _scenario(
    database: Database, auth: AuthContext, targets: list[uuid.UUID], duration: float
) -> tuple[int, list[float]]:
    deadline = time.monotonic() + duration
    latencies: list[float] = []

    async def worker(account_id: uuid.UUID, offset: int) -> None:
        step = offset
        while time.monotonic() < deadline:
            started = time.perf_counter()
            async with database.sessionmaker() as session, session.begin():
                await bind_workspace(session, auth.workspace_id)
                if step % 2 == 0:
                    await loyalty_service.post_entry(
                        session, auth, account_id, schemas.EntryCreate(kind="earn", points=1)
                    )
                else:
                    await loyalty_service.redeem(
                        session, auth, account_id, schemas.RedemptionCreate(points=1)
                    )
            latencies.append(time.perf_counter() - started)
            step += 1

    await asyncio.gather(*(worker(account_id, i) for i, account_id in enumerate(targets)))
    return len(latencies), latencies


def _report(name: str, count: int, latencies: list[float], duration: float) -> str:
    ordered = sorted(latencies)
    p50 = statistics.median(ordered) * 1000
    p99 = ordered[int(len(ordered) * 0.99) - 1] * 1000 if ordered else 0.0
    return (
        f"{name:<28} {count:>7} tx  {count / duration:>8.0f} tx/s  "
        f"p50 {p50:6.1f} ms  p99 {p99:6.1f} ms"
    )


async def _run(settings: Settings, app_url: str, args: argparse.Namespace) -> list[str]:
    database = Database.connect(app_url, settings)
    try:
        auth, ids = await _setup(database, max(args.accounts, args.workers))
        lines = []
        count, latencies = await _scenario(database, auth, [ids[0]] * args.workers, args.duration)
        lines.append(_report(f"hot account, {args.workers} workers", count, latencies,
                             args.duration))  # fmt: skip
        spread = [ids[i % len(ids)] for i in range(args.workers)]
        count, latencies = await _scenario(database, auth, spread, args.duration)
        lines.append(_report(f"{len(set(spread))} accounts, {args.workers} workers", count,
                             latencies, args.duration))  # fmt: skip
        return lines
    finally:
        await database.dispose()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--accounts", type=int, default=200)
    args = parser.parse_args(argv)
    data_dir = Path(tempfile.mkdtemp(prefix="crm-bench-loyalty-", dir="/tmp"))
    settings = Settings(
        data_dir=data_dir,
        db_pool_size=args.workers,
        db_max_overflow=0,
        log_level="WARNING",
        run_jobs=False,
    )
    target = resolve_target(settings)
    try:
        migrate_to_head(target)
        for line in asyncio.run(_run(settings, target.app_url, args)):
            print(line)
    finally:
        if target.embedded is not None:
            target.embedded.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
