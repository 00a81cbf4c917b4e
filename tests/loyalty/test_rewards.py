"""Rewards: cost, stock, validity and minimum tier; programme input validation."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncEngine

from app.loyalty.earning import PurchaseLine, purchase_points
from tests.conftest import WorkspaceHandle
from tests.loyalty.helpers import account, check_invariants, earn, member, redeem


async def _reward(
    client: httpx.AsyncClient, ws: WorkspaceHandle, program_id: str, **body: Any
) -> dict[str, Any]:
    response = await client.post(
        "/v1/loyalty/rewards",
        headers=ws.headers,
        json={"program_id": program_id, "name": "Reward", "cost_points": 50, **body},
    )
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


async def test_rewards_check_stock_validity_and_tier(
    client: httpx.AsyncClient, workspace: WorkspaceHandle, owner_engine: AsyncEngine
) -> None:
    program, member_account, _ = await member(
        client, workspace, tiers=[{"name": "Gold", "threshold": 1000}]
    )
    account_id = member_account["id"]
    await earn(client, workspace, account_id, 200)
    gold = program["tiers"][0]["id"]
    limited = await _reward(client, workspace, program["id"], stock=1)
    for_gold = await _reward(client, workspace, program["id"], min_tier_id=gold)
    later = await _reward(client, workspace, program["id"], valid_from="2099-01-01T00:00:00Z")
    over = await _reward(
        client, workspace, program["id"], valid_from="2020-01-01T00:00:00Z",
        valid_to="2021-01-01T00:00:00Z",
    )  # fmt: skip
    costly = await _reward(client, workspace, program["id"], cost_points=500)
    outcomes = {}
    for name, reward in (("tier", for_gold), ("later", later), ("over", over),
                         ("costly", costly)):  # fmt: skip
        response = await redeem(client, workspace, account_id, reward_id=reward["id"])
        assert response.status_code == 409, response.text
        outcomes[name] = response.json()["code"]
    assert outcomes == {
        "tier": "tier_too_low",
        "later": "reward_unavailable",
        "over": "reward_unavailable",
        "costly": "insufficient_points",
    }
    bought = await redeem(client, workspace, account_id, reward_id=limited["id"])
    assert bought.status_code == 201, bought.text
    assert bought.json()["points"] == 50
    sold_out = await redeem(client, workspace, account_id, reward_id=limited["id"])
    assert sold_out.status_code == 409
    assert sold_out.json()["code"] == "out_of_stock"
    url = f"/v1/loyalty/accounts/{account_id}/redemptions/{bought.json()['id']}/reverse"
    assert (await client.post(url, headers=workspace.headers)).status_code == 200
    stock = await client.get(f"/v1/loyalty/rewards/{limited['id']}", headers=workspace.headers)
    assert stock.json()["stock"] == 1
    assert (await account(client, workspace, account_id))["available"] == 200
    withdrawn = await client.patch(
        f"/v1/loyalty/rewards/{limited['id']}",
        headers={**workspace.headers, "If-Match": stock.headers["etag"]},
        json={"active": False},
    )
    assert withdrawn.status_code == 200, withdrawn.text
    again = await redeem(client, workspace, account_id, reward_id=limited["id"])
    assert again.json()["code"] == "reward_unavailable"
    await check_invariants(owner_engine, workspace)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"earn_rates": [{"spend": {"amount": "25.001", "currency": "THB"}}]}, "earn_rates"),
        (
            {
                "earn_rates": [
                    {"spend": {"amount": "25", "currency": "THB"}},
                    {"spend": {"amount": "30", "currency": "THB"}},
                ]
            },
            "earn_rates",
        ),
        ({"category_multipliers": {"tea": "1.005"}}, "category_multipliers"),
        ({"category_multipliers": {"tea": 1.5}}, "category_multipliers"),
        ({"tiers": [{"name": "A", "threshold": 1}, {"name": "A", "threshold": 2}]}, "tiers"),
        ({"tier_basis": "spend"}, "body"),
        ({"pending_days": -1}, "pending_days"),
        ({"clawback_policy": "sometimes"}, "clawback_policy"),
        ({"balance": 5}, "balance"),
    ],
)
async def test_invalid_programmes_are_422_naming_the_field(
    client: httpx.AsyncClient, workspace: WorkspaceHandle, body: dict[str, Any], field: str
) -> None:
    response = await client.post(
        "/v1/loyalty/programs", headers=workspace.headers, json={"name": "P", **body}
    )
    assert response.status_code == 422, response.text
    assert any(field in error["field"] for error in response.json()["errors"]), response.text


@given(
    lines=st.lists(
        st.tuples(st.integers(0, 10**9), st.sampled_from([None, "tea", "rice"])), max_size=6
    ),
    spend=st.integers(1, 10**7),
    per=st.integers(1, 100),
    tier=st.integers(100, 300),
    refunded=st.integers(0, 10**9),
)
def test_earning_is_integer_floored_once_and_clawback_keeps_the_floor(
    lines: list[tuple[int, str | None]], spend: int, per: int, tier: int, refunded: int
) -> None:
    multipliers = {"tea": 200, "rice": 50}
    total = sum(amount for amount, _ in lines)
    points, _ = purchase_points(
        spend_minor=spend,
        points_per_spend=per,
        min_spend_minor=0,
        total_minor=total,
        lines=[PurchaseLine(amount, category) for amount, category in lines],
        category_multipliers=multipliers,
        tier_multiplier=tier,
        birthday_multiplier=100,
        first_purchase_bonus=0,
    )
    assert isinstance(points, int)
    weighted = sum(amount * multipliers.get(category or "", 100) for amount, category in lines)
    exact = weighted * tier * per / (100 * 100 * spend) if total else 0
    assert points <= exact < points + 1 or total == 0
    # After refunds a purchase keeps floor(earned x net / total): never more than earned,
    # never negative, all of it back on a full refund.
    if total:
        refunded = min(refunded, total)
        kept = points * (total - refunded) // total
        assert 0 <= kept <= points
        assert (kept == 0) if refunded == total else True
