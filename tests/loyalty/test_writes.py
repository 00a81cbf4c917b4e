"""A plain earn, adjust or redemption is one statement (``crm_loyalty_write``): it must leave
the same ledger, events and answers as the general path, which reads can check."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.auth.dependencies import AuthContext
from app.auth.scopes import Scope
from app.db.session import Database, bind_workspace
from app.loyalty import schemas
from app.loyalty.service import loyalty as loyalty_service
from tests.conftest import WorkspaceHandle
from tests.loyalty.helpers import (
    account,
    backdate,
    check_invariants,
    earn,
    entries,
    lots,
    member,
    post_entry,
    redeem,
)
from tests.purchase.helpers import events, new_contact
from tests.test_graphql import count_statements

TIERS = [{"name": "Silver", "threshold": 50}, {"name": "Gold", "threshold": 200}]


async def _entry(
    client: httpx.AsyncClient, ws: WorkspaceHandle, account_id: str, entry_id: str
) -> Any:
    response = await client.get(
        f"/v1/loyalty/accounts/{account_id}/entries/{entry_id}", headers=ws.headers
    )
    assert response.status_code == 200, response.text
    return response.json()


async def test_a_plain_earn_or_redemption_is_one_statement_on_the_ledger(
    client: httpx.AsyncClient, workspace: WorkspaceHandle, database: Database
) -> None:
    _, member_account, _ = await member(client, workspace, expiry_months=12, tiers=TIERS)
    account_id = member_account["id"]
    for write in (
        lambda: post_entry(client, workspace, account_id, kind="earn", points=60),
        lambda: redeem(client, workspace, account_id, points=10),
        lambda: post_entry(client, workspace, account_id, kind="adjust", points=-5, reason="x"),
    ):
        with count_statements(database) as statements:
            response = await write()
        assert response.status_code == 201, response.text
        ledger = [s for s in statements if "loyalty" in s]
        assert len(ledger) == 1, statements
        assert "crm_loyalty_write" in ledger[0]


async def test_what_a_write_answers_is_what_reads_show(
    client: httpx.AsyncClient, workspace: WorkspaceHandle, owner_engine: AsyncEngine
) -> None:
    _, member_account, contact_id = await member(client, workspace, expiry_months=12, tiers=TIERS)
    account_id = member_account["id"]
    for points in (5, 7, 11):
        await earn(client, workspace, account_id, points)
    # Lots expiring within 30 and 60 days: not due yet, so the writes below stay plain.
    found = await lots(owner_engine, account_id)
    for lot, days in zip(found, (20, 50, 400), strict=True):
        await backdate(
            owner_engine,
            "UPDATE loyalty_lots SET available_at = now() - interval '1 day', "
            "expires_at = now() + make_interval(days => :d) WHERE id = :id",
            d=days,
            id=lot["id"],
        )
    answers = []
    for body in (
        {"kind": "earn", "points": 40, "reason": "bonus"},
        {"kind": "adjust", "points": 3, "reason": "gift"},
        {"kind": "adjust", "points": -2, "reason": "fix"},
    ):
        response = await post_entry(client, workspace, account_id, **body)
        assert response.status_code == 201, response.text
        written = response.json()
        assert written["account"] == await account(client, workspace, account_id)
        entry = await _entry(client, workspace, account_id, written["entry"]["id"])
        assert written["entry"] == entry
        answers.append(entry)
    spent = await redeem(client, workspace, account_id, points=6, reason="coffee")
    assert spent.status_code == 201, spent.text
    body = spent.json()
    assert body["account"] == await account(client, workspace, account_id)
    redemption = await client.get(
        f"/v1/loyalty/accounts/{account_id}/redemptions/{body['id']}", headers=workspace.headers
    )
    assert {k: v for k, v in body.items() if k != "account"} == redemption.json()
    answers.append(await _entry(client, workspace, account_id, body["entry_id"]))
    state = await account(client, workspace, account_id)
    assert state["tier"]["name"] == "Silver"
    # The adjust took 2 and the redemption 3 of the first lot, then 3 of the second.
    assert state["expiring"] == {"days_30": 0, "days_60": 4, "days_90": 4}
    assert state["available"] == 58
    assert state["progress"]["qualifying"] == 63
    assert state["progress"]["needed"] == 137

    # Events carry each entry as the API shows it, and the tier change once.
    recorded = await events(owner_engine, workspace, "loyalty_account")
    by_entry = {event.data["id"]: event for event in recorded if "id" in event.data}
    kinds = {"earn": "loyalty.earned", "adjust": "loyalty.adjusted", "redeem": "loyalty.redeemed"}
    for entry in answers:
        event = by_entry[entry["id"]]
        assert event.type == kinds[entry["kind"]]
        assert event.data == {**entry, "contact_id": contact_id}
    changes = [event.data for event in recorded if event.type == "loyalty.tier_changed"]
    assert len(changes) == 1
    assert changes[0]["to_tier_id"] == state["tier"]["id"]
    assert changes[0]["from_tier_id"] is None
    assert changes[0]["qualifying"] == 63

    # A new lot's times in the entry are the lot's own.
    lot = (await lots(owner_engine, account_id))[3]
    assert answers[0]["details"] == {
        "source": "manual",
        "available_at": lot["available_at"].isoformat(),
        "expires_at": lot["expires_at"].isoformat(),
    }
    await check_invariants(owner_engine, workspace)


async def test_allocations_of_a_redemption_sort_in_consumption_order(
    client: httpx.AsyncClient, workspace: WorkspaceHandle, owner_engine: AsyncEngine
) -> None:
    _, member_account, _ = await member(client, workspace, expiry_months=12)
    account_id = member_account["id"]
    for _ in range(5):
        await earn(client, workspace, account_id, 3)
    found = await lots(owner_engine, account_id)
    # Expiring in the reverse order of earning: the last lot is consumed first.
    for lot, days in zip(found, (50, 40, 30, 20, 10), strict=True):
        await backdate(
            owner_engine,
            "UPDATE loyalty_lots SET available_at = now() - interval '1 day', "
            "expires_at = now() + make_interval(days => :d) WHERE id = :id",
            d=days,
            id=lot["id"],
        )
    spent = await redeem(client, workspace, account_id, points=14)
    assert spent.status_code == 201, spent.text
    async with owner_engine.connect() as connection:
        rows = (
            await connection.execute(
                text(
                    "SELECT lot_id, amount FROM loyalty_allocations WHERE entry_id = :e ORDER BY id"
                ),
                {"e": uuid.UUID(spent.json()["entry_id"])},
            )
        ).all()
    assert [(row.lot_id, row.amount) for row in rows] == [
        (lot["id"], -3 if index else -2) for index, lot in reversed(list(enumerate(found)))
    ]
    await check_invariants(owner_engine, workspace)


async def test_the_sessions_own_copy_of_the_account_is_brought_up_to_date(
    client: httpx.AsyncClient, workspace: WorkspaceHandle, database: Database
) -> None:
    program, _, _ = await member(client, workspace)
    contact_id = uuid.UUID(await new_contact(client, workspace))
    auth = AuthContext(
        workspace_id=workspace.id,
        api_key_id=workspace.admin_key_id,
        scopes=frozenset({Scope.admin.value}),
    )
    async with database.sessionmaker() as session, session.begin():
        await bind_workspace(session, workspace.id)
        enrolled = await loyalty_service.enrol(
            session,
            auth,
            schemas.AccountCreate(program_id=uuid.UUID(program["id"]), contact_id=contact_id),
        )
        _, written, _ = await loyalty_service.post_entry(
            session, auth, enrolled.id, schemas.EntryCreate(kind="earn", points=9)
        )
        assert written is enrolled
        again = await loyalty_service.get_account(session, auth, enrolled.id)
        assert (again.available, again.balance, again.version) == (9, 9, 2)
        shown = await loyalty_service.account_schema(session, auth, again)
        assert (shown.available, shown.lifetime_earned) == (9, 9)
        assert not session.dirty
    state = await account(client, workspace, str(enrolled.id))
    assert (state["available"], state["version"]) == (9, 2)


async def test_plain_writes_over_http_commit_together_and_never_overspend(
    client: httpx.AsyncClient, workspace: WorkspaceHandle, owner_engine: AsyncEngine
) -> None:
    """Without an Idempotency-Key the write is not the request's transaction: the writes to
    one account that queue behind each other share one (and its commit). 40 concurrent
    redemptions of 10 against 100 points."""
    _, member_account, _ = await member(client, workspace, expiry_months=12)
    account_id = member_account["id"]
    await earn(client, workspace, account_id, 100)

    responses = await asyncio.gather(
        *(redeem(client, workspace, account_id, points=10) for _ in range(40))
    )

    statuses = sorted(response.status_code for response in responses)
    assert statuses.count(201) == 10, statuses
    assert statuses.count(409) == 30, statuses
    assert all(r.json()["code"] == "insufficient_points" for r in responses if r.status_code == 409)
    assert (await account(client, workspace, account_id))["available"] == 0
    # Entries written in one transaction share its timestamp: the queued writes were grouped.
    redeemed = [e for e in await entries(client, workspace, account_id) if e["kind"] == "redeem"]
    assert len(redeemed) == 10
    assert len({entry["recorded_at"] for entry in redeemed}) < 10
    await check_invariants(owner_engine, workspace)


async def test_a_write_with_an_idempotency_key_commits_with_its_record(
    client: httpx.AsyncClient, workspace: WorkspaceHandle, database: Database
) -> None:
    """The key's record and the write commit together, so the write stays in the request's
    transaction: the ledger call goes through the session, and a replay writes nothing."""
    _, member_account, _ = await member(client, workspace, expiry_months=12)
    account_id = member_account["id"]
    url = f"/v1/loyalty/accounts/{account_id}/entries"
    headers = {**workspace.headers, "Idempotency-Key": f"earn-{uuid.uuid4()}"}
    session_calls: list[str] = []

    def record(*args: Any) -> None:
        session_calls.append(args[2])

    event.listen(database.engine.sync_engine, "before_cursor_execute", record)
    try:
        first = await client.post(url, headers=headers, json={"kind": "earn", "points": 7})
    finally:
        event.remove(database.engine.sync_engine, "before_cursor_execute", record)
    assert first.status_code == 201, first.text
    assert any("crm_loyalty_write" in statement for statement in session_calls)

    again = await client.post(url, headers=headers, json={"kind": "earn", "points": 7})
    assert again.status_code == 201
    assert again.headers.get("idempotent-replayed") == "true"
    assert again.json() == first.json()
    assert (await account(client, workspace, account_id))["available"] == 7
