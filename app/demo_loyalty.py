"""Demo loyalty: a points programme with three tiers and a rewards catalogue, most contacts
enrolled before their purchase history is loaded (so every purchase earns through the same
listener as in production, with pending periods and expiry counted from its own time), then a
few redemptions and one reversal.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.dependencies import AuthContext
from app.kit.errors import CRMError
from app.kit.schemas import parse_input
from app.loyalty import schemas
from app.loyalty.service import loyalty as loyalty_service

ENROLLED_SHARE = 0.85
PROGRAMME = {
    "name": "Siam & Saigon Rewards",
    "point_name": "stars",
    "earn_rates": [
        {"spend": {"amount": "25.00", "currency": "THB"}, "points": 1},
        {"spend": {"amount": "10000", "currency": "VND"}, "points": 1},
    ],
    "category_multipliers": {"beverages": "2", "produce": "1.5"},
    "first_purchase_bonus": 50,
    "birthday_multiplier": "2",
    "pending_days": 14,
    "expiry_months": 12,
    "clawback_policy": "cap_at_zero",
    "tier_window_months": 12,
    "tiers": [
        {"name": "Silver", "threshold": 100, "benefits": "Free delivery over 500 THB"},
        {"name": "Gold", "threshold": 400, "earn_multiplier": "1.25",
         "benefits": "Birthday gift; priority line"},
        {"name": "Platinum", "threshold": 1200, "earn_multiplier": "1.5",
         "benefits": "Personal shopper; lounge access"},
    ],
}  # fmt: skip
REWARDS = (
    ("Thai tea voucher / Phiếu trà sữa", 40, None, None),
    ("Mango sticky rice set", 120, 200, None),
    ("Tote bag ผ้าฝ้าย", 250, 50, "Silver"),
    ("Weekend spa voucher", 900, 10, "Gold"),
)


@dataclass
class LoyaltyDemo:
    program_id: uuid.UUID
    accounts: list[uuid.UUID] = field(default_factory=list)
    redemptions: int = 0


async def enrol_members(
    session: AsyncSession, auth: AuthContext, contact_ids: list[uuid.UUID], seed: int
) -> LoyaltyDemo:
    """The programme, its rewards, and most contacts enrolled (the same ones for a seed)."""
    rng = random.Random(f"loyalty:{seed}")  # noqa: S311 (demo data, not secrets)
    program, tiers = await loyalty_service.create_program(
        session, auth, parse_input(schemas.ProgramCreate, PROGRAMME)
    )
    tier_ids = {tier.name: str(tier.id) for tier in tiers}
    for name, cost, stock, tier in REWARDS:
        body = {"program_id": str(program.id), "name": name, "cost_points": cost, "stock": stock,
                "min_tier_id": tier_ids[tier] if tier else None}  # fmt: skip
        await loyalty_service.create_reward(session, auth, parse_input(schemas.RewardCreate, body))
    demo = LoyaltyDemo(program_id=program.id)
    for contact_id in contact_ids:
        if rng.random() < ENROLLED_SHARE:
            account = await loyalty_service.enrol(
                session, auth, schemas.AccountCreate(program_id=program.id, contact_id=contact_id)
            )
            demo.accounts.append(account.id)
    return demo


async def redeem_some(
    session: AsyncSession, auth: AuthContext, demo: LoyaltyDemo, seed: int
) -> LoyaltyDemo:
    """Members with enough stars buy a reward or spend some; one redemption is reversed."""
    rng = random.Random(f"loyalty-redeem:{seed}")  # noqa: S311 (demo data, not secrets)
    rewards, _ = await loyalty_service.find_rewards(
        session, auth, program_id=demo.program_id, limit=10, cursor=None
    )
    last = None
    for account_id in demo.accounts:
        if rng.random() > 0.5:
            continue
        reward = rng.choice(rewards)
        request = (
            {"reward_id": str(reward.id)} if rng.random() < 0.7 else {"points": rng.randint(5, 60)}
        )
        try:
            async with session.begin_nested():
                redemption, _, _ = await loyalty_service.redeem(
                    session, auth, account_id, parse_input(schemas.RedemptionCreate, request)
                )
        except CRMError:
            # Not enough stars, out of stock, or the tier is too low: the member passes by.
            continue
        demo.redemptions += 1
        last = (account_id, redemption.id)
    if last is not None:
        await loyalty_service.reverse_redemption(
            session, auth, last[0], last[1], schemas.RedemptionReverse(reason="returned at store")
        )
    return demo
