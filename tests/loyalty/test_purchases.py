"""Purchases earn points once, refunds and cancellations claw them back, pending points
release on time, tiers follow the ledger."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db.session import Database
from tests.conftest import WorkspaceHandle
from tests.loyalty.helpers import (
    account,
    age_entries,
    backdate,
    check_invariants,
    earn,
    enrol,
    entries,
    member,
    moments_ago,
    new_program,
    purchase_now,
    redeem,
    run_sweep,
)
from tests.purchase.helpers import (
    basket,
    events,
    new_contact,
    new_purchase,
    post_purchase,
    refund,
    thb,
    vnd,
)


async def test_a_purchase_earns_in_every_programme_with_a_rate_for_its_currency(
    client: httpx.AsyncClient, workspace: WorkspaceHandle, owner_engine: AsyncEngine
) -> None:
    both = await new_program(client, workspace)
    vnd_only = await new_program(
        client,
        workspace,
        name="Saigon Club",
        earn_rates=[{"spend": {"amount": "10000", "currency": "VND"}, "points": 1}],
    )
    contact_id = await new_contact(client, workspace)
    first = await enrol(client, workspace, both["id"], contact_id)
    second = await enrol(client, workspace, vnd_only["id"], contact_id)
    purchase = await purchase_now(client, workspace, contact_id, thb("1250.50"))
    # floor(1250.50 / 25) = 50, rounded down once per purchase.
    assert (await account(client, workspace, first["id"]))["available"] == 50
    assert (await account(client, workspace, second["id"]))["available"] == 0
    ledger = await entries(client, workspace, first["id"])
    assert [(e["kind"], e["amount"], e["reference"]) for e in ledger] == [
        ("earn", 50, f"purchase:{purchase['id']}")
    ]
    await purchase_now(client, workspace, contact_id, vnd("255000"))
    assert (await account(client, workspace, first["id"]))["available"] == 75
    assert (await account(client, workspace, second["id"]))["available"] == 25
    kinds = [event.type for event in await events(owner_engine, workspace, "loyalty_account")]
    assert kinds.count("loyalty.earned") == 3
    await check_invariants(owner_engine, workspace)


async def test_category_and_tier_multipliers_round_down_once(
    client: httpx.AsyncClient, workspace: WorkspaceHandle
) -> None:
    _, member_account, contact_id = await member(
        client,
        workspace,
        category_multipliers={"beverage": "2"},
        tiers=[{"name": "Gold", "threshold": 10, "earn_multiplier": "1.5"}],
    )
    # Lines: 850.00 of beverage at x2 and 400.50 at x1: 2100.50 / 25 = 84.02 -> 84.
    await new_purchase(client, workspace, basket(contact_id, occurred_at=moments_ago()))
    state = await account(client, workspace, member_account["id"])
    assert state["available"] == 84
    assert state["tier"]["name"] == "Gold"
    # Gold earns x1.5: 100.00 / 25 * 1.5 = 6.
    await purchase_now(client, workspace, contact_id, thb("100.00"))
    assert (await account(client, workspace, member_account["id"]))["available"] == 90


async def test_a_purchase_earns_at_most_once(
    client: httpx.AsyncClient, workspace: WorkspaceHandle, owner_engine: AsyncEngine
) -> None:
    _, member_account, contact_id = await member(client, workspace)
    body = basket(contact_id, occurred_at=moments_ago())
    first = await post_purchase(client, workspace, body)
    again = await post_purchase(client, workspace, body)
    assert (first.status_code, again.status_code) == (201, 200)
    ledger = await entries(client, workspace, member_account["id"])
    assert len(ledger) == 1
    async with owner_engine.connect() as connection:
        duplicates = await connection.execute(
            text(
                "SELECT reference FROM loyalty_entries WHERE workspace_id = :w "
                "AND reference IS NOT NULL GROUP BY program_id, reference HAVING count(*) > 1"
            ),
            {"w": workspace.id},
        )
        assert duplicates.all() == []


async def test_refunds_claw_back_in_proportion(
    client: httpx.AsyncClient, workspace: WorkspaceHandle, owner_engine: AsyncEngine
) -> None:
    _, member_account, contact_id = await member(client, workspace)
    purchase = await purchase_now(client, workspace, contact_id, thb("1250.50"))
    first = await refund(client, workspace, purchase["id"], amount=thb("250.50"))
    assert first.status_code == 201, first.text
    # Kept: floor(50 x 1000.00 / 1250.50) = 39, so 11 come back.
    state = await account(client, workspace, member_account["id"])
    assert (state["available"], state["lifetime_earned"]) == (39, 39)
    rest = await refund(client, workspace, purchase["id"], amount=thb("1000.00"))
    assert rest.status_code == 201, rest.text
    state = await account(client, workspace, member_account["id"])
    assert (state["available"], state["lifetime_earned"], state["balance"]) == (0, 0, 0)
    ledger = await entries(client, workspace, member_account["id"])
    earn_id = ledger[0]["id"]
    assert [(e["kind"], e["amount"], e["clawback_of_entry_id"]) for e in ledger[1:]] == [
        ("reverse", -11, earn_id),
        ("reverse", -39, earn_id),
    ]
    await check_invariants(owner_engine, workspace)


async def test_a_refund_before_release_claws_back_pending_points_only(
    client: httpx.AsyncClient, workspace: WorkspaceHandle, owner_engine: AsyncEngine
) -> None:
    _, member_account, contact_id = await member(client, workspace, pending_days=14)
    account_id = member_account["id"]
    await earn(client, workspace, account_id, 10)
    purchase = await purchase_now(client, workspace, contact_id, thb("1000.00"))
    state = await account(client, workspace, account_id)
    assert (state["available"], state["pending"]) == (10, 40)
    spent = await redeem(client, workspace, account_id, points=11)
    assert spent.status_code == 409, "pending points are not spendable"
    await refund(client, workspace, purchase["id"], amount=thb("1000.00"))
    state = await account(client, workspace, account_id)
    assert (state["available"], state["pending"], state["balance"]) == (10, 0, 10)
    ledger = await entries(client, workspace, account_id)
    assert ledger[-1]["available_change"] == 0
    assert ledger[-1]["pending_change"] == -40
    await check_invariants(owner_engine, workspace)


async def test_pending_points_are_released_once_by_the_sweep(
    client: httpx.AsyncClient,
    workspace: WorkspaceHandle,
    owner_engine: AsyncEngine,
    database: Database,
) -> None:
    _, member_account, contact_id = await member(client, workspace, pending_days=14)
    account_id = member_account["id"]
    await purchase_now(client, workspace, contact_id, thb("500.00"))
    assert await run_sweep(database, workspace) == 0
    await backdate(
        owner_engine,
        "UPDATE loyalty_lots SET available_at = now() - interval '1 minute' WHERE account_id = :a",
        a=uuid.UUID(account_id),
    )
    assert await run_sweep(database, workspace) == 1
    assert await run_sweep(database, workspace) == 0
    state = await account(client, workspace, account_id)
    assert (state["available"], state["pending"]) == (20, 0)
    kinds = [e["kind"] for e in await entries(client, workspace, account_id)]
    assert kinds == ["earn", "release"]
    await check_invariants(owner_engine, workspace)


async def _spent_then_refunded(
    client: httpx.AsyncClient, ws: WorkspaceHandle, policy: str
) -> tuple[str, str]:
    _, member_account, contact_id = await member(client, ws, clawback_policy=policy)
    account_id = member_account["id"]
    purchase = await purchase_now(client, ws, contact_id, thb("1000.00"))
    assert (await redeem(client, ws, account_id, points=40)).status_code == 201
    assert (await refund(client, ws, purchase["id"], amount=thb("1000.00"))).status_code == 201
    return account_id, contact_id


async def test_cap_at_zero_forgives_points_already_spent(
    client: httpx.AsyncClient, workspace: WorkspaceHandle, owner_engine: AsyncEngine
) -> None:
    account_id, _ = await _spent_then_refunded(client, workspace, "cap_at_zero")
    state = await account(client, workspace, account_id)
    assert (state["available"], state["balance"]) == (0, 0)
    last = (await entries(client, workspace, account_id))[-1]
    assert (last["amount"], last["details"]["forgiven"]) == (0, 40)
    await check_invariants(owner_engine, workspace)


async def test_allow_negative_keeps_a_debt_that_later_points_repay(
    client: httpx.AsyncClient, workspace: WorkspaceHandle, owner_engine: AsyncEngine
) -> None:
    account_id, contact_id = await _spent_then_refunded(client, workspace, "allow_negative")
    state = await account(client, workspace, account_id)
    assert (state["available"], state["balance"]) == (-40, -40)
    assert (await redeem(client, workspace, account_id, points=1)).status_code == 409
    await purchase_now(client, workspace, contact_id, thb("2500.00"))
    state = await account(client, workspace, account_id)
    assert (state["available"], state["balance"]) == (60, 60)
    assert (await redeem(client, workspace, account_id, points=60)).status_code == 201
    await check_invariants(owner_engine, workspace)


async def test_cancelling_or_deleting_a_purchase_takes_its_points_back(
    client: httpx.AsyncClient, workspace: WorkspaceHandle, owner_engine: AsyncEngine
) -> None:
    _, member_account, contact_id = await member(client, workspace)
    cancelled = await purchase_now(client, workspace, contact_id, thb("250.00"))
    deleted = await purchase_now(client, workspace, contact_id, thb("500.00"))
    assert (await account(client, workspace, member_account["id"]))["available"] == 30
    patch = await client.patch(
        f"/v1/purchases/{cancelled['id']}", headers=workspace.headers, json={"status": "cancelled"}
    )
    assert patch.status_code == 200, patch.text
    assert (await account(client, workspace, member_account["id"]))["available"] == 20
    gone = await client.delete(f"/v1/purchases/{deleted['id']}", headers=workspace.headers)
    assert gone.status_code == 204
    assert (await account(client, workspace, member_account["id"]))["available"] == 0
    await check_invariants(owner_engine, workspace)


TIERS: list[dict[str, Any]] = [
    {"name": "Silver", "threshold": 100, "benefits": "Free delivery"},
    {"name": "Gold", "threshold": 500, "earn_multiplier": "1.25"},
    {"name": "Platinum", "threshold": 2000, "earn_multiplier": "1.5"},
]


async def test_tier_follows_the_ledger_and_the_window(
    client: httpx.AsyncClient,
    workspace: WorkspaceHandle,
    owner_engine: AsyncEngine,
    database: Database,
) -> None:
    _, member_account, contact_id = await member(
        client, workspace, tiers=TIERS, tier_window_months=12
    )
    account_id = member_account["id"]
    await purchase_now(client, workspace, contact_id, thb("3000.00"))
    state = await account(client, workspace, account_id)
    assert state["tier"]["name"] == "Silver"
    assert state["progress"]["qualifying"] == 120
    assert state["progress"]["next_tier"]["name"] == "Gold"
    assert state["progress"]["needed"] == 380
    # Redeeming does not lower the tier: it counts what was earned.
    await redeem(client, workspace, account_id, points=100)
    assert (await account(client, workspace, account_id))["tier"]["name"] == "Silver"
    await purchase_now(client, workspace, contact_id, thb("10000.00"))
    assert (await account(client, workspace, account_id))["tier"]["name"] == "Gold"
    # A year on, the window has moved past all of it: the sweep downgrades, once.
    await age_entries(owner_engine, account_id, 13)
    assert await run_sweep(database, workspace) == 1
    assert await run_sweep(database, workspace) == 0
    state = await account(client, workspace, account_id)
    assert state["tier"] is None
    assert state["available"] == 420
    changes = [
        event.data["to_tier_id"]
        for event in await events(owner_engine, workspace, "loyalty_account")
        if event.type == "loyalty.tier_changed"
    ]
    assert len(changes) == 3
    assert changes[-1] is None
    await check_invariants(owner_engine, workspace)


async def test_a_refund_lowers_the_tier_it_earned(
    client: httpx.AsyncClient, workspace: WorkspaceHandle, owner_engine: AsyncEngine
) -> None:
    _, member_account, contact_id = await member(client, workspace, tiers=TIERS)
    purchase = await purchase_now(client, workspace, contact_id, thb("2500.00"))
    assert (await account(client, workspace, member_account["id"]))["tier"]["name"] == "Silver"
    await refund(client, workspace, purchase["id"], amount=thb("100.00"))
    assert (await account(client, workspace, member_account["id"]))["tier"] is None
    await check_invariants(owner_engine, workspace)


async def test_spend_tiers_count_spend_in_their_currency(
    client: httpx.AsyncClient, workspace: WorkspaceHandle, owner_engine: AsyncEngine
) -> None:
    _, member_account, contact_id = await member(
        client,
        workspace,
        tier_basis="spend",
        tier_currency="THB",
        tiers=[{"name": "VIP", "threshold": 500000}],
    )
    await purchase_now(client, workspace, contact_id, thb("4000.00"))
    await purchase_now(client, workspace, contact_id, vnd("9000000"))
    state = await account(client, workspace, member_account["id"])
    assert state["tier"] is None
    assert state["progress"]["qualifying"] == 400000
    await purchase_now(client, workspace, contact_id, thb("1000.00"))
    assert (await account(client, workspace, member_account["id"]))["tier"]["name"] == "VIP"
    await check_invariants(owner_engine, workspace)


async def test_changing_a_tier_rederives_members_at_once(
    client: httpx.AsyncClient, workspace: WorkspaceHandle, owner_engine: AsyncEngine
) -> None:
    program, member_account, _ = await member(client, workspace, tiers=TIERS)
    await earn(client, workspace, member_account["id"], 150)
    assert (await account(client, workspace, member_account["id"]))["tier"]["name"] == "Silver"
    silver = program["tiers"][0]
    response = await client.patch(
        f"/v1/loyalty/programs/{program['id']}/tiers/{silver['id']}",
        headers=workspace.headers,
        json={"threshold": 200},
    )
    assert response.status_code == 200, response.text
    assert (await account(client, workspace, member_account["id"]))["tier"] is None
    added = await client.post(
        f"/v1/loyalty/programs/{program['id']}/tiers",
        headers=workspace.headers,
        json={"name": "Bronze", "threshold": 0},
    )
    assert added.status_code == 201, added.text
    assert (await account(client, workspace, member_account["id"]))["tier"]["name"] == "Bronze"
    await check_invariants(owner_engine, workspace)


async def test_bonuses_first_purchase_and_birthday_month(
    client: httpx.AsyncClient, workspace: WorkspaceHandle
) -> None:
    program = await new_program(
        client, workspace, first_purchase_bonus=100, birthday_multiplier="2"
    )
    today = datetime.now(UTC)
    response = await client.post(
        "/v1/contacts",
        headers=workspace.headers,
        json={"given_name": "Lan", "birthday": f"1990-{today.month:02d}-05"},
    )
    contact_id = response.json()["id"]
    member_account = await enrol(client, workspace, program["id"], contact_id)
    # In the birthday month 250.00 / 25 = 10 doubles to 20, plus the first purchase's 100.
    await purchase_now(client, workspace, contact_id, thb("250.00"))
    assert (await account(client, workspace, member_account["id"]))["available"] == 120
    await purchase_now(
        client, workspace, contact_id, thb("250.00"), occurred_at=moments_ago(40 * 86400)
    )
    assert (await account(client, workspace, member_account["id"]))["available"] == 130
    earned = await entries(client, workspace, member_account["id"])
    assert [e["details"]["bonus_points"] for e in earned] == [100, 0]


async def test_a_late_purchase_counts_its_pending_period_and_expiry_from_its_own_time(
    client: httpx.AsyncClient, workspace: WorkspaceHandle, owner_engine: AsyncEngine
) -> None:
    _, member_account, contact_id = await member(
        client, workspace, pending_days=14, expiry_months=12
    )
    account_id = member_account["id"]
    await purchase_now(
        client, workspace, contact_id, thb("250.00"), occurred_at=moments_ago(20 * 86400)
    )
    state = await account(client, workspace, account_id)
    assert (state["available"], state["pending"]) == (10, 0)
    await purchase_now(
        client, workspace, contact_id, thb("500.00"), occurred_at=moments_ago(400 * 86400)
    )
    state = await account(client, workspace, account_id)
    assert (state["available"], state["expired"], state["lifetime_earned"]) == (10, 20, 30)
    kinds = [e["kind"] for e in await entries(client, workspace, account_id)]
    assert kinds == ["earn", "earn", "expire"]
    await check_invariants(owner_engine, workspace)
