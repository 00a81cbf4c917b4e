"""Each account keeps its qualifying total (migration 0014_loyalty_qualifying): a plain write
adds its share while nothing can have left the tier window, and sums the window again once
something may have, after the general path wrote, or when the programme changed."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import WorkspaceHandle
from tests.loyalty.helpers import (
    account,
    age_entries,
    backdate,
    check_invariants,
    earn,
    member,
    post_entry,
    redeem,
)

TIERS = [{"name": "Silver", "threshold": 50}, {"name": "Gold", "threshold": 200}]


async def _kept(engine: AsyncEngine, account_id: str) -> dict[str, Any]:
    async with engine.connect() as connection:
        row = (
            await connection.execute(
                text(
                    "SELECT qualifying, qualifying_until, qualifying_program_version "
                    "FROM loyalty_accounts WHERE id = :id"
                ),
                {"id": account_id},
            )
        ).one()
    return dict(row._mapping)


async def _first_qualified(engine: AsyncEngine, account_id: str) -> datetime:
    async with engine.connect() as connection:
        value: datetime = (
            await connection.execute(
                text(
                    "SELECT min(qualifies_at) FROM loyalty_entries "
                    "WHERE account_id = :id AND qualifying_points <> 0"
                ),
                {"id": account_id},
            )
        ).scalar_one()
    return value


async def test_plain_writes_keep_the_total_and_when_it_stops_being_exact(
    client: httpx.AsyncClient, workspace: WorkspaceHandle, owner_engine: AsyncEngine
) -> None:
    _, member_account, _ = await member(client, workspace, tiers=TIERS)
    account_id = member_account["id"]
    # An adjust does not qualify: with nothing qualifying, the total is exact forever.
    await post_entry(client, workspace, account_id, kind="adjust", points=5, reason="goodwill")
    kept = await _kept(owner_engine, account_id)
    assert kept["qualifying"] == 0
    assert kept["qualifying_until"].year == 9999  # infinity

    await earn(client, workspace, account_id, 30)
    await earn(client, workspace, account_id, 25)
    assert (await redeem(client, workspace, account_id, points=40)).status_code == 201
    kept = await _kept(owner_engine, account_id)
    first = await _first_qualified(owner_engine, account_id)
    assert kept["qualifying"] == 55
    # The oldest qualifying entry leaves the 12-month window then.
    assert abs(kept["qualifying_until"] - (first + timedelta(days=365))) < timedelta(days=2)
    state = await account(client, workspace, account_id)
    assert state["tier"]["name"] == "Silver"
    assert state["progress"]["qualifying"] == 55
    await check_invariants(owner_engine, workspace)


async def test_an_entry_leaving_the_window_is_summed_out_by_the_next_write(
    client: httpx.AsyncClient, workspace: WorkspaceHandle, owner_engine: AsyncEngine
) -> None:
    _, member_account, _ = await member(client, workspace, tiers=TIERS)
    account_id = member_account["id"]
    await earn(client, workspace, account_id, 60)
    assert (await account(client, workspace, account_id))["tier"]["name"] == "Silver"
    await age_entries(owner_engine, account_id, 13)

    written = await earn(client, workspace, account_id, 10)

    assert written["account"]["progress"]["qualifying"] == 10
    assert written["account"]["tier"] is None
    kept = await _kept(owner_engine, account_id)
    assert kept["qualifying"] == 10
    await check_invariants(owner_engine, workspace)


async def test_the_general_path_leaves_the_total_to_the_next_plain_write(
    client: httpx.AsyncClient, workspace: WorkspaceHandle, owner_engine: AsyncEngine
) -> None:
    _, member_account, _ = await member(client, workspace, tiers=TIERS)
    account_id = member_account["id"]
    await earn(client, workspace, account_id, 20)
    # A reference takes the general path (app.loyalty.ledger), which does not keep the total.
    await earn(client, workspace, account_id, 40, reference="till-3/0007")
    assert (await _kept(owner_engine, account_id))["qualifying_until"] is None

    written = await earn(client, workspace, account_id, 5)

    assert written["account"]["progress"]["qualifying"] == 65
    assert written["account"]["tier"]["name"] == "Silver"
    assert (await _kept(owner_engine, account_id))["qualifying"] == 65
    await check_invariants(owner_engine, workspace)


async def test_a_changed_programme_makes_the_next_write_sum_its_new_window(
    client: httpx.AsyncClient, workspace: WorkspaceHandle, owner_engine: AsyncEngine
) -> None:
    program, member_account, _ = await member(client, workspace, tiers=TIERS)
    account_id = member_account["id"]
    await earn(client, workspace, account_id, 70)
    # Five months pass for that earn; it is still in a 12-month window.
    await age_entries(owner_engine, account_id, 5)
    assert (await earn(client, workspace, account_id, 1))["account"]["progress"]["qualifying"] == 71

    changed = await client.patch(
        f"/v1/loyalty/programs/{program['id']}",
        headers=workspace.headers,
        json={"tier_window_months": 3},
    )
    assert changed.status_code == 200, changed.text
    written = await earn(client, workspace, account_id, 2)

    assert written["account"]["progress"]["qualifying"] == 3
    assert written["account"]["tier"] is None
    await check_invariants(owner_engine, workspace)


async def test_reads_use_the_kept_total_while_it_is_exact_and_sum_after(
    client: httpx.AsyncClient, workspace: WorkspaceHandle, owner_engine: AsyncEngine
) -> None:
    """Reading an account does not sum its window while the kept total is exact. Shown here
    by changing the kept total behind the service's back (as no writer does)."""
    _, member_account, _ = await member(client, workspace, tiers=TIERS)
    account_id = member_account["id"]
    await earn(client, workspace, account_id, 60)
    await backdate(
        owner_engine, "UPDATE loyalty_accounts SET qualifying = 250 WHERE id = :id", id=account_id
    )
    assert (await account(client, workspace, account_id))["progress"]["qualifying"] == 250

    await backdate(
        owner_engine,
        "UPDATE loyalty_accounts SET qualifying_until = now() - interval '1 second' WHERE id = :id",
        id=account_id,
    )
    state = await account(client, workspace, account_id)
    assert state["progress"]["qualifying"] == 60
    assert state["tier"]["name"] == "Silver"
