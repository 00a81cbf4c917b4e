"""Each account's next due time: writes settle only once a lot has fallen due, and then
always before they do anything else."""

from __future__ import annotations

import uuid
from datetime import datetime

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db.session import Database
from tests.conftest import WorkspaceHandle
from tests.loyalty.helpers import (
    account,
    backdate,
    check_invariants,
    earn,
    entries,
    expire_lot,
    lots,
    member,
    purchase_now,
    redeem,
    run_sweep,
)
from tests.purchase.helpers import thb


async def next_due(engine: AsyncEngine, account_id: str) -> datetime | None:
    async with engine.connect() as connection:
        value: datetime | None = await connection.scalar(
            text("SELECT next_due_at FROM loyalty_accounts WHERE id = :a"),
            {"a": uuid.UUID(account_id)},
        )
        return value


async def test_the_due_time_is_the_earliest_expiry_of_a_lot_holding_points(
    client: httpx.AsyncClient, workspace: WorkspaceHandle, owner_engine: AsyncEngine
) -> None:
    _, member_account, _ = await member(client, workspace, expiry_months=12)
    account_id = member_account["id"]
    assert await next_due(owner_engine, account_id) is None
    await earn(client, workspace, account_id, 10)
    await earn(client, workspace, account_id, 20)
    found = await lots(owner_engine, account_id)
    assert await next_due(owner_engine, account_id) == found[0]["expires_at"]
    # Spent lots no longer fall due, but the due time may stay early: the next write past it
    # settles nothing and moves it on.
    assert (await redeem(client, workspace, account_id, points=10)).status_code == 201
    assert await next_due(owner_engine, account_id) <= found[1]["expires_at"]
    await check_invariants(owner_engine, workspace)


async def test_without_expiry_nothing_ever_falls_due(
    client: httpx.AsyncClient, workspace: WorkspaceHandle, owner_engine: AsyncEngine
) -> None:
    _, member_account, _ = await member(client, workspace)
    account_id = member_account["id"]
    await earn(client, workspace, account_id, 10)
    assert (await redeem(client, workspace, account_id, points=4)).status_code == 201
    assert await next_due(owner_engine, account_id) is None
    await check_invariants(owner_engine, workspace)


async def test_a_write_after_a_lots_expiry_expires_it_first(
    client: httpx.AsyncClient, workspace: WorkspaceHandle, owner_engine: AsyncEngine
) -> None:
    _, member_account, _ = await member(client, workspace, expiry_months=12)
    account_id = member_account["id"]
    await earn(client, workspace, account_id, 30)
    await earn(client, workspace, account_id, 5)
    first = (await lots(owner_engine, account_id))[0]
    await expire_lot(owner_engine, first["id"])
    # The lot's 30 points are gone before the redemption looks: 5 are left, not 35.
    refused = await redeem(client, workspace, account_id, points=6)
    assert refused.status_code == 409, refused.text
    assert refused.json()["available"] == 5
    spent = await redeem(client, workspace, account_id, points=5)
    assert spent.status_code == 201, spent.text
    assert (spent.json()["account"]["available"], spent.json()["account"]["expired"]) == (0, 30)
    kinds = [e["kind"] for e in await entries(client, workspace, account_id)]
    assert kinds == ["earn", "earn", "expire", "redeem"]
    # Settled: the due time moved on to the other lot's expiry (spent now, so never earlier).
    second = (await lots(owner_engine, account_id))[1]
    assert await next_due(owner_engine, account_id) == second["expires_at"]
    await check_invariants(owner_engine, workspace)


async def test_a_pending_release_becomes_available_at_its_time_and_not_before(
    client: httpx.AsyncClient, workspace: WorkspaceHandle, owner_engine: AsyncEngine
) -> None:
    _, member_account, contact_id = await member(client, workspace, pending_days=14)
    account_id = member_account["id"]
    await purchase_now(client, workspace, contact_id, thb("500.00"))
    pending_lot = (await lots(owner_engine, account_id))[0]
    assert await next_due(owner_engine, account_id) == pending_lot["available_at"]
    # Before its time, a write leaves it pending.
    await earn(client, workspace, account_id, 1)
    state = await account(client, workspace, account_id)
    assert (state["available"], state["pending"]) == (1, 20)
    assert (await redeem(client, workspace, account_id, points=2)).status_code == 409
    await backdate(
        owner_engine,
        "UPDATE loyalty_lots SET available_at = now() - interval '1 second' WHERE id = :id",
        id=pending_lot["id"],
    )
    # At its time, the next write releases it first and may spend it.
    spent = await redeem(client, workspace, account_id, points=21)
    assert spent.status_code == 201, spent.text
    assert (spent.json()["account"]["available"], spent.json()["account"]["pending"]) == (0, 0)
    kinds = [e["kind"] for e in await entries(client, workspace, account_id)]
    assert kinds == ["earn", "earn", "release", "redeem"]
    assert await next_due(owner_engine, account_id) is None
    await check_invariants(owner_engine, workspace)


async def test_the_sweep_settles_an_account_whose_due_time_is_wrong(
    client: httpx.AsyncClient,
    workspace: WorkspaceHandle,
    owner_engine: AsyncEngine,
    database: Database,
) -> None:
    _, member_account, _ = await member(client, workspace, expiry_months=12)
    account_id = member_account["id"]
    await earn(client, workspace, account_id, 40)
    await backdate(
        owner_engine,
        "UPDATE loyalty_lots SET available_at = now() - interval '13 months', "
        "expires_at = now() - interval '1 day' WHERE account_id = :a",
        a=uuid.UUID(account_id),
    )
    # A due time later than the truth (as a bad data fix could leave it): the sweep finds the
    # account by its lots and settles it all the same.
    await backdate(
        owner_engine,
        "UPDATE loyalty_accounts SET next_due_at = now() + interval '10 years' WHERE id = :a",
        a=uuid.UUID(account_id),
    )
    assert await run_sweep(database, workspace) == 1
    state = await account(client, workspace, account_id)
    assert (state["available"], state["expired"]) == (0, 40)
    assert await next_due(owner_engine, account_id) is None
    assert await run_sweep(database, workspace) == 0
    await check_invariants(owner_engine, workspace)
