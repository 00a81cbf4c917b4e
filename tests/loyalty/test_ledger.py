"""The points ledger over HTTP: lots, consumption order, redemption and reversal, expiry,
append-only storage, idempotency."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db.session import Database, bind_workspace
from tests.conftest import WorkspaceHandle
from tests.loyalty.helpers import (
    account,
    allocations,
    backdate,
    check_invariants,
    earn,
    entries,
    lots,
    member,
    post_entry,
    redeem,
    run_sweep,
)
from tests.purchase.helpers import events


async def test_enrol_once_per_programme(
    client: httpx.AsyncClient, workspace: WorkspaceHandle
) -> None:
    program, created, contact_id = await member(client, workspace)
    assert created["available"] == 0
    assert created["balance"] == 0
    assert created["tier"] is None
    again = await client.post(
        "/v1/loyalty/accounts",
        headers=workspace.headers,
        json={"program_id": program["id"], "contact_id": contact_id},
    )
    assert again.status_code == 409, again.text
    assert again.json()["code"] == "duplicate"
    assert again.json()["existing_id"] == created["id"]


async def test_redemption_consumes_the_earliest_expiring_lots_first(
    client: httpx.AsyncClient, workspace: WorkspaceHandle, owner_engine: AsyncEngine
) -> None:
    _, member_account, _ = await member(client, workspace, expiry_months=12)
    account_id = member_account["id"]
    for points in (100, 50, 70):
        await earn(client, workspace, account_id, points)
    # Lot A (100) expires first, then B (50), then C (70).
    found = await lots(owner_engine, account_id)
    await backdate(
        owner_engine,
        "UPDATE loyalty_lots SET expires_at = expires_at - make_interval(days => :d) "
        "WHERE id = :id",
        d=3,
        id=found[0]["id"],
    )
    await backdate(
        owner_engine,
        "UPDATE loyalty_lots SET expires_at = expires_at - make_interval(days => :d) "
        "WHERE id = :id",
        d=2,
        id=found[1]["id"],
    )
    response = await redeem(client, workspace, account_id, points=120)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["account"]["available"] == 100
    assert body["account"]["redeemed"] == 120
    after = await lots(owner_engine, account_id)
    assert [lot["remaining"] for lot in after] == [0, 30, 70]
    taken = await allocations(owner_engine, body["entry_id"])
    assert taken == {found[0]["id"]: -100, found[1]["id"]: -20}
    await check_invariants(owner_engine, workspace)


async def test_equal_lots_are_consumed_in_id_order(
    client: httpx.AsyncClient, workspace: WorkspaceHandle, owner_engine: AsyncEngine
) -> None:
    _, member_account, _ = await member(client, workspace, expiry_months=6)
    account_id = member_account["id"]
    await earn(client, workspace, account_id, 10)
    await earn(client, workspace, account_id, 10)
    found = await lots(owner_engine, account_id)
    await backdate(
        owner_engine,
        "UPDATE loyalty_lots SET available_at = :t, expires_at = :e WHERE account_id = :a",
        t=found[0]["available_at"],
        e=found[0]["expires_at"],
        a=uuid.UUID(account_id),
    )
    response = await redeem(client, workspace, account_id, points=5)
    assert response.status_code == 201, response.text
    smaller = min(lot["id"] for lot in found)
    assert await allocations(owner_engine, response.json()["entry_id"]) == {smaller: -5}


async def test_not_enough_points_is_409_and_writes_nothing(
    client: httpx.AsyncClient, workspace: WorkspaceHandle, owner_engine: AsyncEngine
) -> None:
    _, member_account, _ = await member(client, workspace)
    account_id = member_account["id"]
    await earn(client, workspace, account_id, 30)
    exact = await redeem(client, workspace, account_id, points=30)
    assert exact.status_code == 201, exact.text
    before = await entries(client, workspace, account_id)
    more = await redeem(client, workspace, account_id, points=1)
    assert more.status_code == 409, more.text
    problem = more.json()
    assert problem["code"] == "insufficient_points"
    assert problem["available"] == 0
    assert problem["needed"] == 1
    assert await entries(client, workspace, account_id) == before
    adjust = await post_entry(
        client, workspace, account_id, kind="adjust", points=-1, reason="correction"
    )
    assert adjust.status_code == 409
    assert adjust.json()["code"] == "insufficient_points"
    await check_invariants(owner_engine, workspace)


async def test_reversal_restores_exactly_the_consumed_lots_once(
    client: httpx.AsyncClient, workspace: WorkspaceHandle, owner_engine: AsyncEngine
) -> None:
    _, member_account, _ = await member(client, workspace, expiry_months=12)
    account_id = member_account["id"]
    await earn(client, workspace, account_id, 100)
    await earn(client, workspace, account_id, 50)
    before = await lots(owner_engine, account_id)
    redeemed = (await redeem(client, workspace, account_id, points=120)).json()
    url = f"/v1/loyalty/accounts/{account_id}/redemptions/{redeemed['id']}/reverse"
    reversed_ = await client.post(url, headers=workspace.headers, json={"reason": "returned"})
    assert reversed_.status_code == 200, reversed_.text
    body = reversed_.json()
    assert body["status"] == "reversed"
    assert body["account"]["available"] == 150
    assert body["account"]["redeemed"] == 0
    taken = await allocations(owner_engine, redeemed["entry_id"])
    given = await allocations(owner_engine, body["reversal_entry_id"])
    assert given == {lot_id: -amount for lot_id, amount in taken.items()}
    after = await lots(owner_engine, account_id)
    assert [(lot["remaining"], lot["expires_at"]) for lot in after] == [
        (lot["original"], lot["expires_at"]) for lot in before
    ]
    again = await client.post(url, headers=workspace.headers, json={})
    assert again.status_code == 409
    assert again.json()["code"] == "already_reversed"
    ledger = await entries(client, workspace, account_id)
    assert [e["kind"] for e in ledger] == ["earn", "earn", "redeem", "reverse"]
    assert ledger[-1]["reverses_entry_id"] == redeemed["entry_id"]
    await check_invariants(owner_engine, workspace)


async def test_reversal_of_points_past_their_expiry_restores_then_expires_them(
    client: httpx.AsyncClient,
    workspace: WorkspaceHandle,
    owner_engine: AsyncEngine,
    database: Database,
) -> None:
    _, member_account, _ = await member(client, workspace, expiry_months=12)
    account_id = member_account["id"]
    await earn(client, workspace, account_id, 100)
    redeemed = (await redeem(client, workspace, account_id, points=60)).json()
    await backdate(
        owner_engine,
        "UPDATE loyalty_lots SET available_at = now() - interval '400 days', "
        "expires_at = now() - interval '1 day' WHERE account_id = :a",
        a=uuid.UUID(account_id),
    )
    assert await run_sweep(database, workspace) == 1
    assert (await account(client, workspace, account_id))["expired"] == 40
    url = f"/v1/loyalty/accounts/{account_id}/redemptions/{redeemed['id']}/reverse"
    response = await client.post(url, headers=workspace.headers, json={})
    assert response.status_code == 200, response.text
    after = response.json()["account"]
    assert after["available"] == 0
    assert after["expired"] == 100
    kinds = [e["kind"] for e in await entries(client, workspace, account_id)]
    assert kinds == ["earn", "redeem", "expire", "reverse", "expire"]
    await check_invariants(owner_engine, workspace)


async def test_expiry_sweep_is_exact_and_idempotent(
    client: httpx.AsyncClient,
    workspace: WorkspaceHandle,
    owner_engine: AsyncEngine,
    database: Database,
) -> None:
    _, member_account, _ = await member(client, workspace, expiry_months=12)
    account_id = member_account["id"]
    await earn(client, workspace, account_id, 80)
    await earn(client, workspace, account_id, 20)
    await redeem(client, workspace, account_id, points=30)
    first = (await lots(owner_engine, account_id))[0]
    await backdate(
        owner_engine,
        "UPDATE loyalty_lots SET available_at = now() - interval '13 months', "
        "expires_at = now() - interval '1 month' WHERE id = :id",
        id=first["id"],
    )
    assert await run_sweep(database, workspace) == 1
    assert await run_sweep(database, workspace) == 0
    state = await account(client, workspace, account_id)
    assert (state["available"], state["expired"], state["balance"]) == (20, 50, 20)
    expired = [e for e in await entries(client, workspace, account_id) if e["kind"] == "expire"]
    assert len(expired) == 1
    assert expired[0]["amount"] == -50
    assert await allocations(owner_engine, expired[0]["id"]) == {first["id"]: -50}
    kinds = [event.type for event in await events(owner_engine, workspace, "loyalty_account")]
    assert kinds.count("loyalty.expired") == 1
    await check_invariants(owner_engine, workspace)


async def test_expiring_points_are_shown_by_horizon(
    client: httpx.AsyncClient, workspace: WorkspaceHandle, owner_engine: AsyncEngine
) -> None:
    _, member_account, _ = await member(client, workspace, expiry_months=12)
    account_id = member_account["id"]
    for points in (5, 7, 11, 13):
        await earn(client, workspace, account_id, points)
    found = await lots(owner_engine, account_id)
    for lot, days in zip(found, (10, 45, 80, 200), strict=True):
        await backdate(
            owner_engine,
            "UPDATE loyalty_lots SET available_at = now() - interval '1 day', "
            "expires_at = now() + make_interval(days => :d) WHERE id = :id",
            d=days,
            id=lot["id"],
        )
    state = await account(client, workspace, account_id)
    assert state["expiring"] == {"days_30": 5, "days_60": 12, "days_90": 23}


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE loyalty_entries SET amount = amount + 1",
        "DELETE FROM loyalty_entries",
        "TRUNCATE loyalty_entries CASCADE",
        "UPDATE loyalty_allocations SET amount = amount - 1",
        "DELETE FROM loyalty_allocations",
        "DELETE FROM loyalty_lots",
        "DELETE FROM loyalty_accounts",
    ],
)
async def test_the_ledger_cannot_be_rewritten_by_the_service_role(
    client: httpx.AsyncClient,
    workspace: WorkspaceHandle,
    database: Database,
    statement: str,
) -> None:
    _, member_account, _ = await member(client, workspace)
    await earn(client, workspace, member_account["id"], 10)
    redeemed = await redeem(client, workspace, member_account["id"], points=4)
    assert redeemed.status_code == 201

    async def attempt() -> None:
        async with database.sessionmaker() as session, session.begin():
            await bind_workspace(session, workspace.id)
            await session.execute(text(statement))

    with pytest.raises(DBAPIError, match=r"append-only|only deleted|permission denied"):
        await attempt()
    assert (await account(client, workspace, member_account["id"]))["available"] == 6


async def test_the_ledger_cannot_be_rewritten_even_by_its_owner(
    client: httpx.AsyncClient, workspace: WorkspaceHandle, owner_engine: AsyncEngine
) -> None:
    _, member_account, _ = await member(client, workspace)
    await earn(client, workspace, member_account["id"], 10)

    async def attempt(statement: str) -> None:
        async with owner_engine.begin() as connection:
            await connection.execute(text(statement))

    for statement in (
        "UPDATE loyalty_entries SET amount = 11",
        "DELETE FROM loyalty_entries",
        "TRUNCATE loyalty_allocations",
    ):
        with pytest.raises(DBAPIError, match="append-only"):
            await attempt(statement)


async def test_deleting_a_workspace_or_a_contact_takes_its_ledger_along(
    client: httpx.AsyncClient, make_workspace: Any, owner_engine: AsyncEngine
) -> None:
    ws: WorkspaceHandle = await make_workspace()
    _, member_account, contact_id = await member(client, ws)
    await earn(client, ws, member_account["id"], 10)
    await redeem(client, ws, member_account["id"], points=3)
    deleted = await client.delete(f"/v1/contacts/{contact_id}", headers=ws.headers)
    assert deleted.status_code == 204, deleted.text
    gone = await client.get(f"/v1/loyalty/accounts/{member_account['id']}", headers=ws.headers)
    assert gone.status_code == 404
    _, other, _ = await member(client, ws)
    await earn(client, ws, other["id"], 10)
    await redeem(client, ws, other["id"], points=3)
    async with owner_engine.begin() as connection:
        await connection.execute(text("DELETE FROM workspaces WHERE id = :w"), {"w": ws.id})
        left = await connection.execute(
            text("SELECT count(*) FROM loyalty_entries WHERE workspace_id = :w"), {"w": ws.id}
        )
        assert left.scalar_one() == 0


async def test_a_reference_makes_a_manual_entry_unique_forever(
    client: httpx.AsyncClient, workspace: WorkspaceHandle, owner_engine: AsyncEngine
) -> None:
    _, member_account, _ = await member(client, workspace)
    account_id = member_account["id"]
    first = await post_entry(client, workspace, account_id, kind="earn", points=25,
                             reference="survey-2026-11")  # fmt: skip
    assert first.status_code == 201, first.text
    again = await post_entry(client, workspace, account_id, kind="earn", points=25,
                             reference="survey-2026-11")  # fmt: skip
    assert again.status_code == 200, again.text
    assert again.json()["entry"]["id"] == first.json()["entry"]["id"]
    stored = await client.get(first.headers["location"], headers=workspace.headers)
    assert stored.status_code == 200, stored.text
    assert stored.json() == first.json()["entry"]
    other = await post_entry(client, workspace, account_id, kind="earn", points=26,
                             reference="survey-2026-11")  # fmt: skip
    assert other.status_code == 409
    assert other.json()["code"] == "reference_reused"
    assert (await account(client, workspace, account_id))["available"] == 25


async def test_idempotency_key_replays_a_redemption(
    client: httpx.AsyncClient, workspace: WorkspaceHandle, owner_engine: AsyncEngine
) -> None:
    _, member_account, _ = await member(client, workspace)
    account_id = member_account["id"]
    await earn(client, workspace, account_id, 50)
    headers = {**workspace.headers, "Idempotency-Key": "redeem-1"}
    url = f"/v1/loyalty/accounts/{account_id}/redemptions"
    first = await client.post(url, headers=headers, json={"points": 20})
    second = await client.post(url, headers=headers, json={"points": 20})
    assert first.status_code == second.status_code == 201
    assert second.headers["idempotent-replayed"] == "true"
    assert second.json() == first.json()
    reused = await client.post(url, headers=headers, json={"points": 21})
    assert reused.status_code == 422
    assert reused.json()["code"] == "idempotency_key_reused"
    assert (await account(client, workspace, account_id))["available"] == 30
    await check_invariants(owner_engine, workspace)


async def test_adjust_is_audited_and_needs_write_scope(
    client: httpx.AsyncClient, workspace: WorkspaceHandle, owner_engine: AsyncEngine
) -> None:
    _, member_account, _ = await member(client, workspace)
    account_id = member_account["id"]
    reader = await workspace.key("loyalty:read")
    refused = await client.post(
        f"/v1/loyalty/accounts/{account_id}/entries",
        headers=reader,
        json={"kind": "adjust", "points": 5, "reason": "goodwill"},
    )
    assert refused.status_code == 403
    no_reason = await post_entry(client, workspace, account_id, kind="adjust", points=5)
    assert no_reason.status_code == 422
    done = await post_entry(
        client, workspace, account_id, kind="adjust", points=5, reason="goodwill"
    )
    assert done.status_code == 201, done.text
    entry = done.json()["entry"]
    assert entry["api_key_id"] == str(workspace.admin_key_id)
    assert entry["reason"] == "goodwill"
    kinds = [event.type for event in await events(owner_engine, workspace, "loyalty_account")]
    assert "loyalty.adjusted" in kinds
    assert (await account(client, workspace, account_id))["lifetime_earned"] == 0


async def test_another_workspace_sees_nothing_and_changes_nothing(
    client: httpx.AsyncClient, workspace: WorkspaceHandle, make_workspace: Any
) -> None:
    program, member_account, _ = await member(client, workspace)
    await earn(client, workspace, member_account["id"], 10)
    other: WorkspaceHandle = await make_workspace("Other")
    account_url = f"/v1/loyalty/accounts/{member_account['id']}"
    assert (await client.get(account_url, headers=other.headers)).status_code == 404
    assert (await client.get(f"{account_url}/entries", headers=other.headers)).status_code == 404
    spent = await redeem(client, other, member_account["id"], points=1)
    assert spent.status_code == 404
    program_url = f"/v1/loyalty/programs/{program['id']}"
    assert (await client.get(program_url, headers=other.headers)).status_code == 404
    assert (await account(client, workspace, member_account["id"]))["available"] == 10


async def test_programme_patch_with_a_stale_etag_is_412(
    client: httpx.AsyncClient, workspace: WorkspaceHandle, owner_engine: AsyncEngine
) -> None:
    program, _, _ = await member(client, workspace)
    url = f"/v1/loyalty/programs/{program['id']}"
    current = await client.get(url, headers=workspace.headers)
    etag = current.headers["etag"]
    first = await client.patch(
        url, headers={**workspace.headers, "If-Match": etag}, json={"pending_days": 7}
    )
    assert first.status_code == 200, first.text
    assert first.json()["pending_days"] == 7
    stale = await client.patch(
        url, headers={**workspace.headers, "If-Match": etag}, json={"pending_days": 9}
    )
    assert stale.status_code == 412
    fixed = await client.patch(url, headers=workspace.headers, json={"clawback_policy": "x"})
    assert fixed.status_code == 422
    kinds = {event.type for event in await events(owner_engine, workspace, "loyalty_program")}
    assert kinds == {"loyalty.program_created", "loyalty.program_updated"}


async def test_every_ledger_change_is_an_outbox_event(
    client: httpx.AsyncClient, workspace: WorkspaceHandle, owner_engine: AsyncEngine
) -> None:
    _, member_account, _ = await member(client, workspace, tiers=[{"name": "S", "threshold": 5}])
    account_id = member_account["id"]
    await earn(client, workspace, account_id, 10)
    await post_entry(client, workspace, account_id, kind="adjust", points=2, reason="goodwill")
    redeemed = (await redeem(client, workspace, account_id, points=3)).json()
    url = f"/v1/loyalty/accounts/{account_id}/redemptions/{redeemed['id']}/reverse"
    await client.post(url, headers=workspace.headers)
    kinds = [event.type for event in await events(owner_engine, workspace, "loyalty_account")]
    assert kinds == [
        "loyalty.enrolled",
        "loyalty.earned",
        "loyalty.tier_changed",
        "loyalty.adjusted",
        "loyalty.redeemed",
        "loyalty.reversed",
    ]
