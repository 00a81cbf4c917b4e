"""The demo's service desk: queues, a Thai business calendar with public holidays, SLA
policies per priority, routing rules, and cases in every state, some opened from complaints.

Loaded through the services like the rest of the demo, so every case is routed, gets its SLA
policy and its history exactly as one opened over the API would.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.dependencies import AuthContext
from app.case import schemas
from app.case.service import case as case_service
from app.case.setup import setup as setup_service
from app.interaction.service import InteractionQuery
from app.interaction.service import interaction as interaction_service
from app.kit.schemas import parse_input
from app.models import BusinessCalendar, CaseQueue, CaseRoutingRule, SlaPolicy

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri")
# Thai public holidays (with the substitution days the cabinet announces when one falls on a
# weekend); the Buddhist ones follow the lunar calendar.
THAI_HOLIDAYS = (
    "2026-01-01", "2026-03-03", "2026-04-06", "2026-04-13", "2026-04-14", "2026-04-15",
    "2026-05-01", "2026-05-04", "2026-06-01", "2026-06-03", "2026-07-28", "2026-07-29",
    "2026-07-30", "2026-08-12", "2026-10-13", "2026-10-23", "2026-12-07", "2026-12-10",
    "2026-12-31",
    "2027-01-01", "2027-02-22", "2027-04-06", "2027-04-13", "2027-04-14", "2027-04-15",
    "2027-05-03", "2027-05-04", "2027-05-20", "2027-06-03", "2027-07-19", "2027-07-28",
    "2027-08-12", "2027-10-13", "2027-10-25", "2027-12-06", "2027-12-10", "2027-12-31",
)  # fmt: skip
# Tết and the other Vietnamese public holidays.
VIETNAM_HOLIDAYS = (
    "2026-01-01", "2026-02-16", "2026-02-17", "2026-02-18", "2026-02-19", "2026-02-20",
    "2026-04-27", "2026-04-30", "2026-05-01", "2026-09-01", "2026-09-02",
    "2027-01-01", "2027-02-05", "2027-02-08", "2027-02-09", "2027-02-10", "2027-02-11",
    "2027-04-16", "2027-04-30", "2027-05-03", "2027-09-01", "2027-09-02",
)  # fmt: skip
# (priority, first response, next response, resolution), business minutes.
TARGETS = (
    ("urgent", 30, 60, 240),
    ("high", 60, 120, 480),
    ("normal", 240, 480, 1440),
    ("low", 480, 960, 2880),
)
QUEUES = {
    "care": ("Customer care / ฝ่ายบริการลูกค้า", ["agent.ploy", "agent.krit", "agent.nok"]),
    "billing": ("Billing & refunds", ["agent.nok"]),
    "delivery": ("Delivery", ["agent.krit", "agent.hoa", "agent.tuan"]),
    "vip": ("Partner desk", ["agent.ploy"]),
}
SUBJECTS = (
    ("ขอคืนเงินค่าสินค้า", "billing", "refund"),
    ("Refund not received", "billing", "refund"),
    ("Yêu cầu hoàn tiền", "billing", "refund"),
    ("พัสดุยังไม่ได้รับ", "delivery", "delivery"),
    ("Giao hàng trễ", "delivery", "delivery"),
    ("Parcel arrived damaged", "delivery", "delivery"),
    ("แต้มสะสมไม่เข้า", "loyalty", None),
    ("Cannot log in to the app", "app", None),
    ("สินค้าชำรุด ขอเปลี่ยน", "product", None),
    ("Sản phẩm bị lỗi", "product", None),
    ("Wrong item in my order", "product", None),
    ("เปลี่ยนที่อยู่จัดส่ง", "account", None),
)
CHANNELS = ("phone", "email", "chat", "social", "web", "store")
# Target shares of the final status.
STATES = (("new", 15), ("open", 25), ("pending", 15), ("resolved", 25), ("closed", 20))
REPLIES = (
    "ขอบคุณที่แจ้งค่ะ ทางเรากำลังตรวจสอบให้",
    "We are looking into it and will update you shortly.",
    "Chúng tôi đang kiểm tra và sẽ phản hồi sớm.",
)


async def set_up_desk(
    session: AsyncSession, auth: AuthContext, *, routing_rules: bool = True
) -> dict[str, uuid.UUID]:
    """The demo's service desk through the setup service: Bangkok and Ho Chi Minh City office
    calendars with public holidays, an SLA policy per priority (and one for partners), the
    queues and, unless asked not to, the routing rules. Ids by key: ``th``, ``vn`` and each
    queue's key of ``QUEUES``."""

    async def make(model: type[Any], schema: type[Any], body: dict[str, Any]) -> uuid.UUID:
        record = await setup_service.create(session, auth, model, parse_input(schema, body))
        return uuid.UUID(str(record.id))

    ids: dict[str, uuid.UUID] = {}
    ids["th"] = await make(BusinessCalendar, schemas.CalendarCreate, {
        "name": "Bangkok office", "time_zone": "Asia/Bangkok",
        "hours": {day: [["08:30", "12:00"], ["13:00", "17:30"]] for day in WEEKDAYS},
        "holidays": list(THAI_HOLIDAYS),
    })  # fmt: skip
    ids["vn"] = await make(BusinessCalendar, schemas.CalendarCreate, {
        "name": "Ho Chi Minh City office", "time_zone": "Asia/Ho_Chi_Minh",
        "hours": {**{day: [["08:00", "12:00"], ["13:30", "17:30"]] for day in WEEKDAYS},
                  "sat": [["08:00", "12:00"]]},
        "holidays": list(VIETNAM_HOLIDAYS),
    })  # fmt: skip
    for priority, first, following, resolution in TARGETS:
        await make(SlaPolicy, schemas.SlaPolicyCreate, {
            "name": f"{priority.capitalize()} (Bangkok hours)", "priority": priority,
            "calendar_id": str(ids["th"]), "first_response_minutes": first,
            "next_response_minutes": following, "resolution_minutes": resolution,
        })  # fmt: skip
    await make(SlaPolicy, schemas.SlaPolicyCreate, {
        "name": "Urgent partner issues", "priority": "urgent", "account_type": "distributor",
        "calendar_id": str(ids["th"]), "first_response_minutes": 15,
        "resolution_minutes": 120, "warning_percent": 50,
    })  # fmt: skip
    for key, (name, members) in QUEUES.items():
        ids[key] = await make(CaseQueue, schemas.QueueCreate, {"name": name, "members": members})
    if not routing_rules:
        return ids
    rules = (
        ("Refunds to billing", 10, {"subject_keywords": ["refund", "คืนเงิน", "hoàn tiền"],
                                    "queue_id": str(ids["billing"]), "assign_mode": "fixed",
                                    "assignee": "agent.nok"}),
        ("Partners to the partner desk", 20,
         {"account_types": ["distributor", "retailer", "partner"],
          "queue_id": str(ids["vip"]), "assign_mode": "round_robin"}),
        ("Delivery problems", 30, {"categories": ["delivery"],
                                   "subject_keywords": [],
                                   "queue_id": str(ids["delivery"]),
                                   "assign_mode": "round_robin"}),
        ("Everything else", 1000, {"queue_id": str(ids["care"]), "assign_mode": "round_robin"}),
    )  # fmt: skip
    for name, position, body in rules:
        await make(CaseRoutingRule, schemas.RoutingRuleCreate,
                   {"name": name, "position": position, **body})  # fmt: skip
    return ids


async def load_cases(
    session: AsyncSession, auth: AuthContext, contact_ids: Sequence[uuid.UUID], seed: int
) -> int:
    """Queues, calendars, policies, rules and a case for two contacts in three (200 for the
    default 300 contacts, enough for the report without slowing the demo); the count of cases.

    Raises:
        CRMError: a record the API would refuse.
    """
    rng = random.Random(seed)  # noqa: S311 - demo data, not secrets
    await set_up_desk(session, auth)
    complaints, _ = await interaction_service.find(
        session, auth, InteractionQuery(types=["complaint"]), limit=50, cursor=None, sort=None
    )
    states = [state for state, weight in STATES for _ in range(weight)]
    made = 0
    chosen = [contact_id for index, contact_id in enumerate(contact_ids) if index % 3 != 2]
    for index, contact_id in enumerate(chosen):
        source = complaints[index] if index < len(complaints) // 2 else None
        subject, category, _ = rng.choice(SUBJECTS)
        body: dict[str, Any] = {
            "priority": rng.choices(("low", "normal", "high", "urgent"), (2, 5, 2, 1))[0],
            "category": category,
            "attributes": {"demo": True},
        }
        if source is not None:
            body["source_interaction_id"] = str(source.id)
        else:
            body.update(contact_id=str(contact_id), subject=subject,
                        channel=rng.choice(CHANNELS))  # fmt: skip
        case = await case_service.create(session, auth, parse_input(schemas.CaseCreate, body))
        made += 1
        await _play(session, auth, case.id, rng.choice(states), rng)
    return made


async def _play(
    session: AsyncSession, auth: AuthContext, case_id: uuid.UUID, final: str, rng: random.Random
) -> None:
    """Walk a case to ``final`` the way agents would: answer, wait, resolve, close."""

    async def comment(public: bool, text: str) -> None:
        data = parse_input(schemas.CommentCreate, {"body": text, "public": public,
                                                   "author": "agent.ploy"})  # fmt: skip
        await case_service.comment(session, auth, case_id, data)

    async def move(to: str, **extra: Any) -> None:
        data = parse_input(schemas.TransitionCreate, {"to": to, **extra})
        await case_service.transition(session, auth, case_id, data)

    if final == "new":
        if rng.random() < 0.5:
            await comment(False, "Checking the order history first.")
        return
    await comment(True, rng.choice(REPLIES))
    if final == "open":
        return
    reason = rng.choice(("waiting_on_customer", "waiting_on_third_party"))
    await move("pending", reason=reason)
    if final == "pending":
        return
    await move("resolved", note="Solved: thank you for your patience.")
    if final == "resolved":
        return
    if rng.random() < 0.2:
        await move("open")
        await move("resolved", note="Solved again after the customer's follow-up.")
    await move("closed")
