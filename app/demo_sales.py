"""The demo's sales: a wholesale pipeline next to the default one, a few dozen opportunities
in every stage with their stage histories, leads, a quarterly target per salesperson and a
commission rule.

Everything goes through the services like any client's data; the stage histories are then
spread over the past months (the database clock would otherwise stamp every move with the
moment of loading), so analytics and forecasts have something to show.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import Date, cast, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.dependencies import AuthContext
from app.kit.schemas import parse_input
from app.lead.schemas import LeadConvert, LeadCreate
from app.lead.service import lead as lead_service
from app.opportunity import schemas
from app.opportunity.pipelines import pipeline as pipeline_service
from app.opportunity.service import opportunity as opportunity_service
from app.opportunity.targets import commission as commission_service
from app.opportunity.targets import sales_target as target_service

OPPORTUNITIES = 36
_OWNERS = {"TH": ("sales.ploy", "sales.krit"), "VN": ("sales.hoa", "sales.tuan")}
_CURRENCY = {"TH": "THB", "VN": "VND"}
_WHOLESALE_STAGES = [
    {"name": "Enquiry", "probability": 10},
    {"name": "Samples sent", "probability": 30},
    {"name": "Quotation", "probability": 50},
    {"name": "Negotiation", "probability": 75},
    {"name": "Order confirmed", "type": "won"},
    {"name": "Lost", "type": "lost"},
]
_DEALS = {
    "TH": ("Office coffee supply", "Hotel amenities", "Festival gift baskets",
           "Restaurant rice contract", "Staff canteen snacks", "Spa herbal products"),
    "VN": ("Cung cấp cà phê văn phòng", "Quà Tết doanh nghiệp", "Hợp đồng gạo nhà hàng",
           "Nước mắm cho chuỗi quán phở", "Trà sen cho khách sạn"),
}  # fmt: skip
_COMPETITORS = {
    "TH": ("Makro", "Lotus's", "CP Foods"),
    "VN": ("Bách Hóa Xanh", "Vinamilk", "Co.opmart"),
}
_LOSS_REASONS = ("Price too high", "Chose a competitor", "No budget", "Timing")
_SOURCES = ("referral", "web form", "trade fair", "LINE OA", "Zalo OA", "cold call")
# (amount range in major units) per currency.
_AMOUNTS = {"THB": (8_000, 450_000), "VND": (15_000_000, 600_000_000)}


@dataclass(frozen=True)
class SalesCounts:
    opportunities: int
    leads: int


async def load_sales(
    session: AsyncSession,
    auth: AuthContext,
    contact_ids: Sequence[uuid.UUID],
    countries: Sequence[str],
    seed: int = 5,
) -> SalesCounts:
    """Load the demo's sales for the given contacts (same order as their countries)."""
    rng = random.Random(seed)  # noqa: S311
    today: date = (
        await session.execute(select(cast(func.timezone("Asia/Bangkok", func.now()), Date)))
    ).scalar_one()
    now: datetime = (await session.execute(select(func.now()))).scalar_one()
    default = (await pipeline_service.list(session, auth))[0]
    wholesale = await pipeline_service.create(
        session,
        auth,
        parse_input(schemas.PipelineCreate, {"name": "Wholesale", "stages": _WHOLESALE_STAGES}),
    )
    pipelines = [default, wholesale]
    count = min(OPPORTUNITIES, len(contact_ids))
    for index in range(count):
        country = countries[index]
        currency = _CURRENCY[country]
        pipeline = pipelines[index % 2]
        stages = sorted(pipeline.stages, key=lambda stage: stage.position)
        progress = [stage for stage in stages if stage.type == "open"]
        won = next(stage for stage in stages if stage.type == "won")
        lost = next(stage for stage in stages if stage.type == "lost")
        low, high = _AMOUNTS[currency]
        amount = rng.randrange(low, high, 1000 if currency == "THB" else 500_000)
        rivals = rng.sample(_COMPETITORS[country], rng.choice((0, 0, 1, 2)))
        body = {
            "name": rng.choice(_DEALS[country]),
            "contact_id": str(contact_ids[index]),
            "pipeline_id": str(pipeline.id),
            "amount": {"amount": str(amount), "currency": currency},
            "expected_close_date": (today + timedelta(days=rng.randrange(7, 120))).isoformat(),
            "owner": rng.choice(_OWNERS[country]),
            "source": rng.choice(_SOURCES),
            "competitors": [
                {"name": name, "status": rng.choice(("active", "eliminated"))} for name in rivals
            ],
        }
        created = await opportunity_service.create(
            session, auth, parse_input(schemas.OpportunityCreate, body)
        )
        # Where it ends: a third won, a fifth lost, the rest open somewhere in the pipeline.
        roll = rng.random()
        reached = rng.randrange(1, len(progress) + 1)
        path = progress[1:reached]
        if roll < 0.33:
            path = [*path, won]
        elif roll < 0.53:
            path = [*path, lost]
        for stage in path:
            reason = rng.choice(_LOSS_REASONS) if stage.type == "lost" else None
            move = schemas.StageMove(stage_id=stage.id, loss_reason=reason)
            await opportunity_service.move_stage(session, auth, created.id, move)
        await _spread_history(session, created.id, rng, now)

    leads = 0
    for index, (name, company, email, status) in enumerate(
        (
            ("Kanya Srisuk", "Chiang Mai Coffee Roasters", "kanya@cmroasters.example", "new"),
            ("Trần Thị Mai", "Hội An Crafts", "mai@hoiancrafts.example", "working"),
            ("Anan Wongsa", "Phuket Resorts", "anan@phuketresorts.example", "qualified"),
            ("Lê Minh Khoa", None, "khoa.le@gmail.com", "new"),
            ("Pim Chaiyaporn", "Isan Rice Mill", "pim@isanrice.example", "disqualified"),
            ("Phạm Quốc Bảo", "Đà Nẵng Seafood", "bao@dnseafood.example", "qualified"),
        )
    ):
        data = {
            "name": name,
            "email": email,
            "status": status,
            "source": _SOURCES[index % len(_SOURCES)],
            "score": 20 + 12 * index,
            "owner": _OWNERS["TH" if index % 2 == 0 else "VN"][0],
        }
        if company is not None:
            data["company"] = company
        if status == "disqualified":
            data["disqualified_reason"] = "Outside our delivery area"
        created_lead = await lead_service.create(session, auth, parse_input(LeadCreate, data))
        leads += 1
        if index == 3:
            # Khoa turns out to be a customer already: the lead is linked, nothing duplicated.
            conversion = {
                "contact_id": str(contact_ids[-1]),
                "opportunity": {
                    "amount": {"amount": "250000000", "currency": "VND"},
                    "expected_close_date": (today + timedelta(days=45)).isoformat(),
                },
            }
            await lead_service.convert(
                session, auth, created_lead.id, parse_input(LeadConvert, conversion)
            )

    quarter_start = date(today.year, 3 * ((today.month - 1) // 3) + 1, 1)
    quarter_end = date(
        quarter_start.year + (quarter_start.month + 3 > 12), (quarter_start.month + 2) % 12 + 1, 1
    ) - timedelta(days=1)
    for owners, quota, currency in (
        (_OWNERS["TH"], "1500000.00", "THB"),
        (_OWNERS["VN"], "2000000000", "VND"),
    ):
        for owner in owners:
            target = {
                "owner": owner,
                "period_start": quarter_start.isoformat(),
                "period_end": quarter_end.isoformat(),
                "amount": {"amount": quota, "currency": currency},
            }
            await target_service.create(
                session, auth, parse_input(schemas.SalesTargetCreate, target)
            )
    await commission_service.create_rule(
        session,
        auth,
        parse_input(
            schemas.CommissionRuleCreate,
            {
                "name": "Standard",
                "rate_bp": 500,
                "tiers": [{"above_percent": 100, "rate_bp": 800}],
            },
        ),
    )
    return SalesCounts(opportunities=count + 1, leads=leads)


async def _spread_history(
    session: AsyncSession, opportunity_id: uuid.UUID, rng: random.Random, now: datetime
) -> None:
    """Give the opportunity's moves plausible past times: days to weeks in each stage."""
    changes = (
        await session.execute(
            text(
                "SELECT id FROM opportunity_stage_changes WHERE opportunity_id = :o "
                "ORDER BY changed_at, id"
            ),
            {"o": opportunity_id},
        )
    ).all()
    stays = [rng.randrange(2 * 86400, 21 * 86400) for _ in changes[1:]]
    moment = now - timedelta(seconds=sum(stays) + rng.randrange(0, 10 * 86400))
    created_at = moment
    for position, (change_id,) in enumerate(changes):
        stay = stays[position - 1] if position else None
        if stay is not None:
            moment += timedelta(seconds=stay)
        await session.execute(
            text(
                "UPDATE opportunity_stage_changes SET changed_at = :at, "
                "seconds_in_previous_stage = :stay WHERE id = :id"
            ),
            {"at": moment, "stay": stay, "id": change_id},
        )
    await session.execute(
        text(
            "UPDATE opportunities SET created_at = :created, stage_entered_at = :entered, "
            "closed_at = CASE WHEN status = 'open' THEN NULL "
            "ELSE CAST(:entered AS timestamptz) END "
            "WHERE id = :o"
        ),
        {"created": created_at, "entered": moment, "o": opportunity_id},
    )
