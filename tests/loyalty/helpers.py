"""Building blocks for the loyalty tests: programmes, members, ledger reads and the invariant
checker that every scenario ends with."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.loyalty.invariants import broken_invariants
from tests.conftest import WorkspaceHandle
from tests.purchase.helpers import new_contact, simple_purchase


def program_body(**overrides: Any) -> dict[str, Any]:
    """1 point per 25.00 THB and per 10,000 VND; available at once; no expiry."""
    body: dict[str, Any] = {
        "name": "Siam Rewards",
        "point_name": "stars",
        "earn_rates": [
            {"spend": {"amount": "25.00", "currency": "THB"}, "points": 1},
            {"spend": {"amount": "10000", "currency": "VND"}, "points": 1},
        ],
    }
    body.update(overrides)
    return body


async def new_program(
    client: httpx.AsyncClient, ws: WorkspaceHandle, **overrides: Any
) -> dict[str, Any]:
    response = await client.post(
        "/v1/loyalty/programs", headers=ws.headers, json=program_body(**overrides)
    )
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


async def enrol(
    client: httpx.AsyncClient, ws: WorkspaceHandle, program_id: str, contact_id: str
) -> dict[str, Any]:
    response = await client.post(
        "/v1/loyalty/accounts",
        headers=ws.headers,
        json={"program_id": program_id, "contact_id": contact_id},
    )
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


async def member(
    client: httpx.AsyncClient, ws: WorkspaceHandle, **program: Any
) -> tuple[dict[str, Any], dict[str, Any], str]:
    """A new programme, a new contact and its account: ``(program, account, contact_id)``."""
    created = await new_program(client, ws, **program)
    contact_id = await new_contact(client, ws)
    account = await enrol(client, ws, created["id"], contact_id)
    return created, account, contact_id


async def post_entry(
    client: httpx.AsyncClient, ws: WorkspaceHandle, account_id: str, **body: Any
) -> httpx.Response:
    return await client.post(
        f"/v1/loyalty/accounts/{account_id}/entries", headers=ws.headers, json=body
    )


async def earn(
    client: httpx.AsyncClient, ws: WorkspaceHandle, account_id: str, points: int, **extra: Any
) -> dict[str, Any]:
    response = await post_entry(client, ws, account_id, kind="earn", points=points, **extra)
    assert response.status_code in (200, 201), response.text
    result: dict[str, Any] = response.json()
    return result


async def redeem(
    client: httpx.AsyncClient, ws: WorkspaceHandle, account_id: str, **body: Any
) -> httpx.Response:
    return await client.post(
        f"/v1/loyalty/accounts/{account_id}/redemptions", headers=ws.headers, json=body
    )


async def account(
    client: httpx.AsyncClient, ws: WorkspaceHandle, account_id: str
) -> dict[str, Any]:
    response = await client.get(f"/v1/loyalty/accounts/{account_id}", headers=ws.headers)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def entries(
    client: httpx.AsyncClient, ws: WorkspaceHandle, account_id: str
) -> list[dict[str, Any]]:
    """Every entry of the account, oldest first."""
    found: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 200}
        if cursor:
            params["cursor"] = cursor
        response = await client.get(
            f"/v1/loyalty/accounts/{account_id}/entries", headers=ws.headers, params=params
        )
        assert response.status_code == 200, response.text
        page = response.json()
        found += page["data"]
        cursor = page["next_cursor"]
        if cursor is None:
            return sorted(found, key=lambda entry: entry["seq"])


async def lots(engine: AsyncEngine, account_id: str) -> list[dict[str, Any]]:
    async with engine.connect() as connection:
        rows = await connection.execute(
            text(
                "SELECT id, original, remaining, state, available_at, expires_at, entry_id "
                "FROM loyalty_lots WHERE account_id = :a ORDER BY created_at, id"
            ),
            {"a": uuid.UUID(account_id)},
        )
        return [dict(row._mapping) for row in rows]


async def allocations(engine: AsyncEngine, entry_id: str) -> dict[uuid.UUID, int]:
    async with engine.connect() as connection:
        rows = await connection.execute(
            text("SELECT lot_id, amount FROM loyalty_allocations WHERE entry_id = :e"),
            {"e": uuid.UUID(entry_id)},
        )
        result: dict[uuid.UUID, int] = {}
        for lot_id, amount in rows:
            result[lot_id] = result.get(lot_id, 0) + amount
        return result


async def backdate(engine: AsyncEngine, sql: str, **params: Any) -> None:
    """Move stored times into the past (as the owner: the clock itself is never faked)."""
    async with engine.begin() as connection:
        await connection.execute(text(sql), params)


async def expire_lot(engine: AsyncEngine, lot_id: Any) -> None:
    """A lot earned 13 months ago that expired a second ago, not yet settled."""
    await backdate(
        engine,
        "UPDATE loyalty_lots SET available_at = now() - interval '13 months', "
        "expires_at = now() - interval '1 second' WHERE id = :id",
        id=lot_id,
    )


async def age_entries(engine: AsyncEngine, account_id: str, months: int) -> None:
    """Let ``months`` pass for an account's qualifying history: its entries' qualifying times
    and the time its kept qualifying total stays exact move back together. The ledger refuses
    updates, so the owner lifts the trigger inside one transaction; nobody else ever sees it
    lifted."""
    async with engine.begin() as connection:
        await connection.execute(text("ALTER TABLE loyalty_entries DISABLE TRIGGER append_only"))
        await connection.execute(
            text(
                "UPDATE loyalty_entries SET qualifies_at = qualifies_at "
                "- make_interval(months => :m) WHERE account_id = :a"
            ),
            {"m": months, "a": uuid.UUID(account_id)},
        )
        await connection.execute(text("ALTER TABLE loyalty_entries ENABLE TRIGGER append_only"))
        await connection.execute(
            text(
                "UPDATE loyalty_accounts SET qualifying_until = qualifying_until "
                "- make_interval(months => :m) WHERE id = :a"
            ),
            {"m": months, "a": uuid.UUID(account_id)},
        )


async def run_sweep(database: Any, ws: WorkspaceHandle) -> int:
    from app.jobs.registry import periodic_job
    from app.jobs.runner import run_once

    report = await run_once(database, periodic_job("loyalty-sweep"), only=[ws.id])
    return report.total


async def check_invariants(engine: AsyncEngine, ws: WorkspaceHandle) -> None:
    """Every ledger invariant, over every account of the workspace."""
    async with engine.connect() as connection:
        broken = await broken_invariants(connection, ws.id)
    assert not broken, broken


def moments_ago(seconds: int = 1) -> str:
    """A purchase time relative to today: pending periods and tier windows run from it."""
    return (datetime.now(UTC) - timedelta(seconds=seconds)).isoformat()


async def purchase_now(
    client: httpx.AsyncClient,
    ws: WorkspaceHandle,
    contact_id: str,
    total: dict[str, str],
    **overrides: Any,
) -> dict[str, Any]:
    """A one-line purchase made a moment ago."""
    overrides.setdefault("occurred_at", moments_ago())
    return await simple_purchase(client, ws, contact_id, total, **overrides)
