"""The demo's customer history: calls, LINE and Zalo chats, store visits, surveys,
complaints, and purchases in THB and VND with a few refunds.

Generated as offsets before the moment of loading (so a seed gives the same history whenever
it is run, and the history always ends today), then sent through the services like any
partner's data.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.dependencies import AuthContext
from app.interaction.schemas import InteractionBatch
from app.interaction.service import interaction as interaction_service
from app.kit.money import currency_exponent
from app.kit.schemas import parse_input
from app.purchase.schemas import PurchaseCreate, RefundCreate
from app.purchase.service import purchase as purchase_service

HISTORY_DAYS = 540
_BATCH = 500

# (sku, name, category, unit price)
_CATALOGUE: dict[str, tuple[tuple[str, str, str, str], ...]] = {
    "TH": (
        ("TEA-001", "ชาไทย (Thai milk tea)", "beverages", "65.00"),
        ("RICE-5KG", "ข้าวหอมมะลิ 5 กก.", "groceries", "245.00"),
        ("MANGO-1", "มะม่วงน้ำดอกไม้", "produce", "89.50"),
        ("SOAP-01", "สบู่สมุนไพร", "personal_care", "39.00"),
        ("FISH-SAUCE", "น้ำปลา 700 มล.", "groceries", "42.00"),
        ("SNACK-01", "ทุเรียนทอด", "snacks", "120.00"),
        ("TEA-400", "ชาตรามือ 400 ก.", "beverages", "155.00"),
    ),
    "VN": (
        ("CF-SUADA", "Cà phê sữa đá", "beverages", "29000"),
        ("BANHMI", "Bánh mì thịt", "bakery", "25000"),
        ("GAO-ST25", "Gạo ST25 5 kg", "groceries", "185000"),
        ("NUOCMAM", "Nước mắm Phú Quốc 500 ml", "groceries", "65000"),
        ("PHO-KIT", "Bộ phở ăn liền", "groceries", "45000"),
        ("TRA-SEN", "Trà sen Tây Hồ", "beverages", "120000"),
        ("XOAI", "Xoài cát Hòa Lộc 1 kg", "produce", "70000"),
    ),
}
_CURRENCY = {"TH": "THB", "VN": "VND"}
_CHAT_APP = {"TH": "LINE", "VN": "Zalo"}
_AGENTS = {"TH": ("agent.ploy", "agent.krit", "agent.nok"), "VN": ("agent.hoa", "agent.tuan")}
_SUBJECTS = {
    "TH": {
        "chat": ("สอบถามโปรโมชั่น", "ติดตามพัสดุ", "สอบถามเวลาเปิดร้าน"),
        "call": ("สอบถามคะแนนสะสม", "เปลี่ยนที่อยู่จัดส่ง", "สอบถามสินค้า"),
        "complaint": ("สินค้าเสียหาย", "จัดส่งล่าช้า", "พนักงานไม่สุภาพ"),
        "visit": ("เยี่ยมชมสาขา",),
        "newsletter": ("โปรสงกรานต์", "ดีลสุดคุ้มปลายปี"),
    },
    "VN": {
        "chat": ("Hỏi về khuyến mãi", "Theo dõi đơn hàng", "Hỏi giờ mở cửa"),
        "call": ("Hỏi điểm tích lũy", "Đổi địa chỉ giao hàng", "Hỏi về sản phẩm"),
        "complaint": ("Hàng bị hỏng", "Giao hàng trễ", "Nhân viên thiếu lịch sự"),
        "visit": ("Ghé cửa hàng",),
        "newsletter": ("Ưu đãi Tết", "Khuyến mãi cuối năm"),
    },
}


@dataclass(frozen=True)
class HistoryEvent:
    """A request body, less ``contact_id`` and ``occurred_at``, placed before the load."""

    contact: int  # position in DemoData.contacts
    seconds_ago: int
    body: dict[str, Any]


@dataclass(frozen=True)
class PurchaseEvent(HistoryEvent):
    # A RefundCreate body (less occurred_at), given this many seconds after the purchase.
    refund: dict[str, Any] | None = None
    refund_after: int = 0


@dataclass(frozen=True)
class DemoHistory:
    interactions: list[HistoryEvent]
    purchases: list[PurchaseEvent]


@dataclass(frozen=True)
class HistoryCounts:
    interactions: int
    purchases: int
    refunds: int


def _amount(minor: int, currency: str) -> str:
    return format(Decimal(minor).scaleb(-currency_exponent(currency)), "f")


def _minor(amount: str, currency: str) -> int:
    return int(Decimal(amount).scaleb(currency_exponent(currency)))


def _purchase(rng: random.Random, country: str, store: str) -> tuple[dict[str, Any], int]:
    currency = _CURRENCY[country]
    lines = rng.sample(_CATALOGUE[country], k=rng.randint(1, 4))
    items, total = [], 0
    for sku, name, category, price in lines:
        quantity = rng.choice((1, 1, 1, 2, 3))
        items.append(
            {
                "sku": sku,
                "name": name,
                "category": category,
                "quantity": quantity,
                "unit_price": {"amount": price, "currency": currency},
            }
        )
        total += quantity * _minor(price, currency)
    channel = rng.choices(("store", "web", "mobile_app"), weights=(6, 2, 2))[0]
    body: dict[str, Any] = {
        "channel": channel,
        "total": {"amount": _amount(total, currency), "currency": currency},
        "items": items,
    }
    if channel == "store":
        body["store_id"] = store
    return body, total


def _interaction(
    rng: random.Random, country: str, kind: str, attachments: dict[str, Any]
) -> dict[str, Any]:
    subjects = _SUBJECTS[country]
    agent = rng.choice(_AGENTS[country])
    body: dict[str, Any]
    if kind == "chat":
        body = {
            "channel": "chat",
            "direction": "inbound",
            "type": "message",
            "subject": rng.choice(subjects["chat"]),
            "agent_id": agent,
            "attributes": {"app": _CHAT_APP[country]},
        }
    elif kind == "call":
        body = {
            "channel": "phone",
            "direction": rng.choice(("inbound", "inbound", "outbound")),
            "type": "call",
            "subject": rng.choice(subjects["call"]),
            "agent_id": agent,
            "duration_seconds": rng.randint(40, 900),
        }
    elif kind == "visit":
        body = {"channel": "store", "direction": "inbound", "type": "visit", **attachments}
        body["subject"] = rng.choice(subjects["visit"])
    elif kind == "newsletter":
        body = {
            "channel": "email",
            "direction": "outbound",
            "type": "notification",
            "subject": rng.choice(subjects["newsletter"]),
        }
    elif kind == "survey":
        score = rng.choices(range(11), weights=(1, 1, 1, 1, 1, 2, 3, 6, 10, 10, 8))[0]
        sentiment = "positive" if score >= 9 else "neutral" if score >= 7 else "negative"
        body = {
            "channel": rng.choice(("email", "mobile_app")),
            "direction": "inbound",
            "type": "survey_response",
            "feedback": {
                "kind": "direct",
                "sentiment": sentiment,
                "score": score,
                "scale": "nps",
                "topic": "overall",
            },
        }
    else:  # complaint
        body = {
            "channel": rng.choice(("chat", "phone", "email")),
            "direction": "inbound",
            "type": "complaint",
            "subject": rng.choice(subjects["complaint"]),
            "agent_id": agent,
            "feedback": {
                "kind": "direct",
                "sentiment": "negative",
                "topic": "service",
                "urgency": rng.choice(("normal", "high", "high", "critical")),
            },
        }
        if body["channel"] == "chat":
            body["attributes"] = {"app": _CHAT_APP[country]}
    return body


def generate_history(
    seed: int, countries: Sequence[str], stages: Sequence[str], stores: Sequence[str]
) -> DemoHistory:
    """History for contacts of these countries, lifecycle stages and home stores."""
    rng = random.Random(f"history:{seed}")  # noqa: S311 (demo data, not secrets)
    interactions: list[HistoryEvent] = []
    purchases: list[PurchaseEvent] = []
    day = 86_400
    for index, (country, stage, store) in enumerate(zip(countries, stages, stores, strict=True)):
        buyer = stage in ("customer", "advocate", "ambassador", "churned")
        # Churned customers went quiet: their history stops months ago.
        quiet = rng.randint(120, 300) * day if stage == "churned" else 0
        span = HISTORY_DAYS * day - quiet

        def ago(span: int = span, quiet: int = quiet) -> int:
            return quiet + rng.randint(3600, span)

        touches = rng.randint(1, 4) if not buyer else rng.randint(3, 12)
        for _ in range(touches):
            kind = rng.choices(
                ("chat", "call", "visit", "newsletter", "survey", "complaint"),
                weights=(8, 4, 3 if buyer else 0, 3, 2 if buyer else 0, 1 if buyer else 0),
            )[0]
            interactions.append(
                HistoryEvent(
                    index, ago(), _interaction(rng, country, kind, {"attributes": {"store": store}})
                )
            )
        if not buyer:
            continue
        for _ in range(rng.randint(1, 8)):
            body, total = _purchase(rng, country, store)
            refund = None
            if rng.random() < 0.08:
                currency = _CURRENCY[country]
                share = rng.choice((0.25, 0.5, 1.0))
                exponent = currency_exponent(currency)
                # Round the part refunded to whole currency units, as cashiers do.
                minor = max(1, int(total * share) // 10**exponent * 10**exponent) or total
                refund = {
                    "amount": {
                        "amount": _amount(min(minor, total), currency),
                        "currency": currency,
                    },
                    "reason": rng.choice(("damaged", "wrong item", "changed mind")),
                }
            purchases.append(
                PurchaseEvent(
                    index, ago(), body, refund=refund, refund_after=rng.randint(1, 7) * day
                )
            )
    return DemoHistory(interactions=interactions, purchases=purchases)


async def load_history(
    session: AsyncSession, auth: AuthContext, history: DemoHistory, contact_ids: list[uuid.UUID]
) -> HistoryCounts:
    """Send the history through the services, relative to the database's clock.

    Raises:
        CRMError: a record the API would refuse (a problem naming the field).
    """
    now: datetime = (await session.execute(select(func.now()))).scalar_one()
    items = [
        {
            **event.body,
            "contact_id": str(contact_ids[event.contact]),
            "occurred_at": (now - timedelta(seconds=event.seconds_ago)).isoformat(),
        }
        for event in history.interactions
    ]
    for start in range(0, len(items), _BATCH):
        batch = parse_input(
            InteractionBatch, {"items": items[start : start + _BATCH], "all_or_none": True}
        )
        await interaction_service.ingest(session, auth, batch)
    refunds = 0
    for event in history.purchases:
        occurred_at = now - timedelta(seconds=event.seconds_ago)
        body = {
            **event.body,
            "contact_id": str(contact_ids[event.contact]),
            "occurred_at": occurred_at.isoformat(),
        }
        created, _ = await purchase_service.create(session, auth, parse_input(PurchaseCreate, body))
        if event.refund is not None:
            refunded_at = min(now, occurred_at + timedelta(seconds=event.refund_after))
            refund = {**event.refund, "occurred_at": refunded_at.isoformat()}
            await purchase_service.refund(
                session, auth, created.id, parse_input(RefundCreate, refund)
            )
            refunds += 1
    return HistoryCounts(interactions=len(items), purchases=len(history.purchases), refunds=refunds)
