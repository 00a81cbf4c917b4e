"""The rest of a realistic workspace around seeded contacts, fast, with PostgreSQL COPY:
accounts (Thai and Vietnamese companies) with contacts attached to them, relationships between
contacts, opportunities with their stage histories, cases with their status histories and SLA
clocks, and a loyalty programme whose members have ledgers.

As in ``bench.seed_history``, every record starts as an API body parsed by the service's own
input schema, and becomes rows through the service's own code where it has a row builder:

- opportunities: ``OpportunityCreate``, the service's amount and competitor rules, and
  ``enter_first_stage`` / ``move`` of ``app.opportunity.moves`` for every history row (the
  database clock they ask for is replaced by the moment of the move);
- cases: ``CaseCreate`` / ``CommentCreate`` / ``TransitionCreate``, ``choose_policy`` and
  ``recompute`` of ``app.case.sla`` for the SLA clock, the service's history row builder, and
  the outbound interactions a public comment and a resolution write; numbers come from the
  workspace's case counter; the SLA sweep's stamps and its closing of resolved cases whose
  reopen window has passed are applied at the moments the sweep would have applied them;
- loyalty: the programme and its rewards through the service (``crm demo``'s programme), and
  each member's history run through ``app.loyalty.ledger.Ledger`` itself (earns, redemptions
  FIFO by expiry, a few reversals, expiries when the sweep would make them) against an
  in-memory stand-in for its session and lot reads; tiers are then derived by the service's
  own query. The ledger invariants of the test suite are checked on the loaded workspace, and
  the seed fails if any is violated.

Calendars, SLA policies and queues are created through the service-desk setup service (no
routing rules: cases opened by the workloads keep being created without routing).

Rows are written by ``COPY`` as the superuser, one transaction per table chunk.
"""

from __future__ import annotations

import bisect
import contextlib
import json
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache
from itertools import accumulate
from random import Random
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.sql import ClauseElement

from app.account import schemas as account_schemas
from app.auth.dependencies import AuthContext
from app.auth.scopes import Scope
from app.case import schemas as case_schemas
from app.case.business_time import business_minutes_between
from app.case.service import TRANSITIONS, CaseService, format_number
from app.case.sla import PAUSED_STATUSES, PolicyClock, choose_policy, clock_of, recompute
from app.contact.relationship_schemas import RelationshipCreate
from app.db.session import bind_workspace
from app.demo_cases import QUEUES, TARGETS, set_up_desk
from app.demo_loyalty import PROGRAMME, REWARDS
from app.interaction import schemas as interaction_schemas
from app.interaction.service import _Pending, _row
from app.kit.collation import sort_key
from app.kit.ids import uuid7
from app.kit.schemas import parse_input
from app.loyalty import schemas as loyalty_schemas
from app.loyalty.invariants import broken_invariants
from app.loyalty.ledger import Ledger
from app.loyalty.repository import LoyaltyRepository
from app.loyalty.service import loyalty as loyalty_service
from app.models import (
    Case,
    LoyaltyAccount,
    LoyaltyAllocation,
    LoyaltyEntry,
    LoyaltyLot,
    LoyaltyRedemption,
    Opportunity,
    PipelineStage,
    SlaPolicy,
)
from app.models.contact_relationship import RELATIONSHIP_INVERSES
from app.opportunity import schemas as opportunity_schemas
from app.opportunity.moves import check_loss_reason, enter_first_stage, move
from app.opportunity.service import OpportunityService, _minor_of
from bench.seed import _uuid7

CHUNK = 20_000
# COPY time of the current seeding, for its report.
COPY_SECONDS = [0.0]
# Tables the current seeding copies without foreign-key checks (see ``seed_workspace``).
_UNCHECKED: set[str] = set()
# Counts reported next to the tables' rows that are not rows written.
NOT_ROWS = frozenset({"contacts_linked", "relationship_pairs", "loyalty_tiers_derived"})
BANGKOK = ZoneInfo("Asia/Bangkok")

# -- names ------------------------------------------------------------------------------------

# (native, romanised) parts of company names.
TH_WORDS = (
    ("สยาม", "siam"), ("รุ่งเรือง", "rungruang"), ("ทองคำ", "thongkham"), ("เจริญผล", "charoenphon"),
    ("ศรีสุข", "srisuk"), ("มั่งมี", "mangmee"), ("อุดมสุข", "udomsuk"), ("พัฒนกิจ", "phatthanakit"),
    ("ไทยรุ่ง", "thairung"), ("เพชรเกษม", "phetkasem"), ("ลานนา", "lanna"), ("อันดามัน", "andaman"),
    ("อีสานทอง", "isanthong"), ("เจ้าพระยา", "chaophraya"), ("ชัยมงคล", "chaimongkol"),
    ("บางกอก", "bangkok"), ("กรุงไทย", "krungthai"), ("ศิริวัฒน์", "siriwat"), ("ธนากร", "thanakorn"),
    ("วัฒนา", "watthana"), ("นครพิงค์", "nakhonping"), ("สุวรรณภูมิ", "suvarnabhumi"),
)  # fmt: skip
TH_TRADES = (
    ("ฟู้ด", "food", "Food & beverage"), ("เทรดดิ้ง", "trading", "Wholesale"),
    ("โลจิสติกส์", "logistics", "Logistics"), ("คอนสตรัคชั่น", "construction", "Construction"),
    ("เทคโนโลยี", "tech", "Technology"), ("การเกษตร", "agro", "Agriculture"),
    ("ฟาร์มา", "pharma", "Healthcare"), ("รีเทล", "retail", "Retail"),
    ("โฮเต็ล", "hotel", "Hospitality"), ("ออโต้พาร์ท", "autoparts", "Automotive"),
)  # fmt: skip
TH_FORMS = ("บริษัท {} {} จำกัด", "บริษัท {} {} จำกัด (มหาชน)", "ห้างหุ้นส่วนจำกัด {} {}",
            "{} {} Co., Ltd.")  # fmt: skip
VN_WORDS = (
    ("Phú Thịnh", "phuthinh"), ("Hưng Thịnh", "hungthinh"), ("Minh Phát", "minhphat"),
    ("Thành Công", "thanhcong"), ("Sài Gòn", "saigon"), ("Hà Nội", "hanoi"),
    ("Đại Việt", "daiviet"), ("Hoàng Long", "hoanglong"), ("An Khang", "ankhang"),
    ("Tân Phát", "tanphat"), ("Việt Tiến", "viettien"), ("Bình Minh", "binhminh"),
    ("Kim Long", "kimlong"), ("Mê Kông", "mekong"), ("Đông Á", "donga"),
    ("Trường Sơn", "truongson"), ("Phương Nam", "phuongnam"), ("Hồng Hà", "hongha"),
    ("Sông Hàn", "songhan"),
)  # fmt: skip
VN_TRADES = (
    ("Thực phẩm", "food", "Food & beverage"), ("Thương mại", "trading", "Wholesale"),
    ("Logistics", "logistics", "Logistics"), ("Xây dựng", "xaydung", "Construction"),
    ("Công nghệ", "tech", "Technology"), ("Nông sản", "nongsan", "Agriculture"),
    ("Dược phẩm", "duocpham", "Healthcare"), ("Dệt may", "detmay", "Textiles"),
    ("Du lịch", "dulich", "Hospitality"), ("Bán lẻ", "banle", "Retail"),
)  # fmt: skip
VN_FORMS = ("Công ty TNHH {1} {0}", "Công ty Cổ phần {1} {0}", "Tập đoàn {0}",
            "Công ty TNHH MTV {1} {0}")  # fmt: skip
ACCOUNT_TYPES = (("customer", 70), ("prospect", 12), ("retailer", 6), ("partner", 5),
                 ("distributor", 5), ("supplier", 2))  # fmt: skip
ACCOUNT_SIZES = (("micro", 20), ("small", 40), ("medium", 25), ("large", 12), ("enterprise", 3))
OWNERS = tuple(f"rep-{n:02d}" for n in range(1, 26))

RELATIONSHIP_MIX = (("colleague", 35), ("referred_by", 30), ("household", 15), ("spouse", 10),
                    ("parent", 5), ("advocate_of", 5))  # fmt: skip
RELATIONSHIP_NOTES = ("แนะนำโดยเพื่อน", "Giới thiệu qua Zalo", "Same office", "ครอบครัวเดียวกัน",
                      None, None, None)  # fmt: skip

DEALS = {
    "TH": ("Office coffee supply", "Hotel amenities", "Festival gift baskets",
           "Restaurant rice contract", "Staff canteen snacks", "Spa herbal products",
           "สัญญาจัดส่งข้าวหอมมะลิ", "ชุดของขวัญปีใหม่", "อุปกรณ์สำนักงาน"),
    "VN": ("Cung cấp cà phê văn phòng", "Quà Tết doanh nghiệp", "Hợp đồng gạo nhà hàng",
           "Nước mắm cho chuỗi quán phở", "Trà sen cho khách sạn", "Văn phòng phẩm"),
}  # fmt: skip
COMPETITORS = {"TH": ("Makro", "Lotus's", "CP Foods", "Big C"),
               "VN": ("Bách Hóa Xanh", "Vinamilk", "Co.opmart", "WinMart")}  # fmt: skip
LOSS_REASONS = ("Price too high", "Chose a competitor", "No budget", "Timing", "ราคาสูงเกินไป",
                "Khách hàng chọn đối thủ")  # fmt: skip
DEAL_SOURCES = ("referral", "web form", "trade fair", "LINE OA", "Zalo OA", "cold call")
# Amount ranges in major units, and the step amounts are rounded to.
AMOUNTS = {"THB": (8_000, 450_000, 500), "VND": (15_000_000, 600_000_000, 500_000)}

CASE_SUBJECTS = (
    ("ขอคืนเงินค่าสินค้า", "billing"), ("Refund not received", "billing"),
    ("Yêu cầu hoàn tiền", "billing"), ("พัสดุยังไม่ได้รับ", "delivery"),
    ("Giao hàng trễ", "delivery"), ("Parcel arrived damaged", "delivery"),
    ("แต้มสะสมไม่เข้า", "loyalty"), ("Cannot log in to the app", "app"),
    ("สินค้าชำรุด ขอเปลี่ยน", "product"), ("Sản phẩm bị lỗi", "product"),
    ("Wrong item in my order", "product"), ("เปลี่ยนที่อยู่จัดส่ง", "account"),
)  # fmt: skip
CASE_CHANNELS = (("email", 30), ("phone", 25), ("chat", 20), ("social", 10), ("web", 10),
                 ("store", 5))  # fmt: skip
PRIORITIES = (("low", 2), ("normal", 5), ("high", 2), ("urgent", 1))
REPLIES = ("ขอบคุณที่แจ้งค่ะ ทางเรากำลังตรวจสอบให้",
           "We are looking into it and will update you shortly.",
           "Chúng tôi đang kiểm tra và sẽ phản hồi sớm.")  # fmt: skip
QUEUE_OF_CATEGORY = {"billing": "billing", "delivery": "delivery"}
PARTNER_TYPES = frozenset({"distributor", "retailer", "partner"})

EARN_REASONS = ("In-store purchase", "ซื้อสินค้าที่สาขา", "Mua hàng tại cửa hàng", "Online order")
# Of redemptions, the share reversed within three days (returned at the store).
REVERSED_SHARE = 0.03
REDEEM_REASONS = ("Coffee voucher", "แลกส่วนลด", "Đổi quà", None)


# -- columns -----------------------------------------------------------------------------------

ACCOUNT_COLUMNS = (
    "workspace_id", "id", "name", "type", "domain", "industry", "size", "parent_account_id",
    "owner_id", "attributes", "search_text", "name_sort_key", "created_at", "updated_at",
    "version",
)  # fmt: skip
ACCOUNT_ID_COLUMNS = ("workspace_id", "system", "value", "account_id")
RELATIONSHIP_COLUMNS = ("workspace_id", "id", "contact_id", "related_contact_id", "type",
                        "pair_id", "note", "created_at")  # fmt: skip
OPPORTUNITY_COLUMNS = (
    "workspace_id", "id", "name", "contact_id", "account_id", "pipeline_id", "stage_id",
    "status", "currency", "amount_minor", "expected_close_date", "owner", "source",
    "next_step", "loss_reason", "closed_at", "stage_entered_at", "attributes", "created_at",
    "updated_at", "version",
)  # fmt: skip
STAGE_CHANGE_COLUMNS = (
    "workspace_id", "id", "opportunity_id", "pipeline_id", "from_stage_id", "from_stage_name",
    "from_status", "to_stage_id", "to_stage_name", "to_status", "changed_at", "changed_by",
    "seconds_in_previous_stage", "loss_reason",
)  # fmt: skip
COMPETITOR_COLUMNS = ("workspace_id", "opportunity_id", "position", "name", "notes", "status")
CASE_COLUMNS = (
    "workspace_id", "id", "number", "subject", "description", "contact_id", "account_id",
    "channel", "category", "priority", "status", "pending_reason", "queue_id", "assignee",
    "source_interaction_id", "routing_rule_id", "attributes", "first_response_at",
    "resolved_at", "closed_at", "reopen_count", "sla_policy_id", "paused_minutes",
    "paused_since", "first_response_due_at", "first_response_warn_at", "next_response_due_at",
    "resolution_due_at", "resolution_warn_at", "first_response_warned_at",
    "first_response_breached_at", "resolution_warned_at", "resolution_breached_at",
    "created_at", "updated_at", "version",
)  # fmt: skip
CASE_HISTORY_COLUMNS = ("workspace_id", "id", "case_id", "field", "from_value", "to_value",
                        "reason", "api_key_id", "at")  # fmt: skip
CASE_COMMENT_COLUMNS = ("workspace_id", "id", "case_id", "body", "public", "author",
                        "api_key_id", "interaction_id", "created_at")  # fmt: skip
INTERACTION_COLUMNS = (
    "workspace_id", "id", "contact_id", "channel", "direction", "type", "occurred_at",
    "subject", "body", "agent_id", "duration_seconds", "attributes", "feedback_kind",
    "sentiment", "score", "score_scale", "topic", "urgency", "needs_attention",
    "attention_resolved_at", "case_id", "opportunity_id", "campaign_id", "created_at",
    "updated_at",
)  # fmt: skip
# Named one by one: a column added later keeps its database default.
LOYALTY_ACCOUNT_COLUMNS = (
    "workspace_id", "id", "program_id", "contact_id", "tier_id", "allow_negative", "available",
    "pending", "debt", "balance", "lifetime_earned", "redeemed", "expired", "version",
    "next_due_at", "created_at", "updated_at",
)  # fmt: skip
LOYALTY_ENTRY_COLUMNS = (
    "workspace_id", "id", "account_id", "program_id", "seq", "kind", "amount",
    "available_change", "pending_change", "balance_after", "available_after", "pending_after",
    "reference", "reverses_entry_id", "clawback_of_entry_id", "redemption_id", "reason",
    "qualifying_points", "qualifying_spend_minor", "qualifies_at", "effective_at",
    "recorded_at", "api_key_id", "details",
)  # fmt: skip
LOYALTY_LOT_COLUMNS = ("workspace_id", "id", "account_id", "entry_id", "original", "remaining",
                       "state", "available_at", "expires_at", "release_entry_id",
                       "created_at")  # fmt: skip
LOYALTY_ALLOCATION_COLUMNS = ("workspace_id", "id", "entry_id", "lot_id", "amount")
LOYALTY_REDEMPTION_COLUMNS = ("workspace_id", "id", "account_id", "reward_id", "points",
                              "status", "entry_id", "reversal_entry_id", "reference", "reason",
                              "created_at", "reversed_at")  # fmt: skip


# -- helpers -----------------------------------------------------------------------------------


class SeedCheckFailed(RuntimeError):
    """The loaded data breaks an invariant the service guarantees."""


@dataclass(frozen=True)
class Sizes:
    accounts: int
    relationships: int  # pairs: each is two rows, one per direction
    opportunities: int
    cases: int
    members: int

    @classmethod
    def for_contacts(cls, contacts: int) -> Sizes:
        """Proportions of a retail / B2B2C workspace: one company per 20 contacts, one
        relationship and one opportunity per 10, one case per 5, half the contacts members."""
        return cls(
            accounts=max(1, contacts // 20),
            relationships=contacts // 10,
            opportunities=contacts // 5,
            cases=contacts // 5,
            members=contacts // 2,
        )


class _Weighted:
    def __init__(self, pairs: Sequence[tuple[Any, float]]) -> None:
        self.items = [item for item, _ in pairs]
        self.cumulative = list(accumulate(weight for _, weight in pairs))

    def draw(self, rng: Random) -> Any:
        return self.items[bisect.bisect_right(self.cumulative, rng.random() * self.cumulative[-1])]


@cache
def _plain(model: type[Any]) -> type[Any]:
    """A plain record with ``model``'s columns (unset ones None) and its constructor.

    The services build rows as model instances; thousands of them per second here would
    spend most of the time in the ORM's attribute instrumentation, which a record bound for
    COPY never needs. The services' code runs unchanged on these (``_plain_models``).
    """

    def __init__(self: Any, **values: Any) -> None:
        self.__dict__.update(values)

    defaults: dict[str, Any] = {column.key: None for column in model.__table__.columns}
    return type(model.__name__, (), {**defaults, "__init__": __init__, "__module__": __name__})


@contextlib.contextmanager
def _plain_models() -> Iterator[None]:
    """While seeding, the model classes the ledger, the opportunity moves and the case
    history builder instantiate are plain records (see ``_plain``); restored afterwards."""
    from app.case import service as case_service_module
    from app.loyalty import ledger as ledger_module
    from app.opportunity import moves as moves_module
    from app.opportunity import service as opportunity_service_module

    targets = [
        (ledger_module, "LoyaltyEntry"), (ledger_module, "LoyaltyLot"),
        (ledger_module, "LoyaltyAllocation"), (moves_module, "OpportunityStageChange"),
        (opportunity_service_module, "OpportunityCompetitor"),
        (case_service_module, "CaseHistory"),
    ]  # fmt: skip
    saved = [(module, name, getattr(module, name)) for module, name in targets]
    try:
        for module, name, model in saved:
            setattr(module, name, _plain(model))
        yield
    finally:
        for module, name, model in saved:
            setattr(module, name, model)


def _at(value: Any, moment: datetime) -> Any:
    """A value the service leaves to the database clock (``func.now()``), at ``moment``."""
    return moment if isinstance(value, ClauseElement) else value


def _uuid_at(moment: datetime, rng: Random) -> uuid.UUID:
    """A UUIDv7 carrying ``moment``, so ids sort as the records were created."""
    return uuid.UUID(_uuid7(int(moment.timestamp() * 1000), rng))


def _between(rng: Random, start: datetime, end: datetime) -> datetime:
    if end <= start:
        return start
    return start + (end - start) * rng.random()


def _recent(rng: Random, start: datetime, end: datetime) -> datetime:
    """A moment in [start, end], more likely late: activity grows with the customer base."""
    if end <= start:
        return start
    return start + (end - start) * (rng.random() ** 0.6)


class _Rows:
    """Rows by table, copied and cleared whenever a table reaches ``CHUNK`` rows."""

    def __init__(self, connection: asyncpg.Connection, columns: dict[str, Sequence[str]]) -> None:
        self.connection = connection
        self.columns = columns
        self.pending: dict[str, list[tuple[Any, ...]]] = {table: [] for table in columns}
        self.counts: dict[str, int] = dict.fromkeys(columns, 0)
        # Time spent waiting for COPY (PostgreSQL's share), by all tables together.
        self.copy_s = 0.0

    async def add(self, table: str, row: tuple[Any, ...]) -> None:
        rows = self.pending[table]
        rows.append(row)
        if len(rows) >= CHUNK:
            await self.flush()

    async def flush(self) -> None:
        """Every table's pending rows, in the order the tables were named (parents first)."""
        began = time.perf_counter()
        async with self.connection.transaction():
            for table, rows in self.pending.items():
                if rows:
                    # Foreign keys are checked by system triggers, which "replica" skips.
                    role = "replica" if table in _UNCHECKED else "origin"
                    await self.connection.execute(f"SET LOCAL session_replication_role = {role}")
                    await self.connection.copy_records_to_table(
                        table, records=rows, columns=list(self.columns[table])
                    )
                    self.counts[table] += len(rows)
                    rows.clear()
        self.copy_s += time.perf_counter() - began
        COPY_SECONDS[0] += time.perf_counter() - began


@dataclass
class _Contact:
    id: uuid.UUID
    created_at: datetime
    country: str
    family_name: str | None
    lifecycle_stage: str
    account: _Account | None = None


@dataclass
class _Account:
    id: uuid.UUID
    country: str
    type: str
    created_at: datetime
    contacts: list[_Contact] = field(default_factory=list)


# -- accounts ----------------------------------------------------------------------------------


def _account_body(
    rng: Random, ordinal: int, country: str, parent: _Account | None
) -> dict[str, Any]:
    if country == "TH":
        word, roman = rng.choice(TH_WORDS)
        trade, trade_roman, industry = rng.choice(TH_TRADES)
        name = rng.choice(TH_FORMS).format(word, trade)
        domain = f"www.{roman}-{trade_roman}-{ordinal}.example.co.th"
    else:
        word, roman = rng.choice(VN_WORDS)
        trade, trade_roman, industry = rng.choice(VN_TRADES)
        name = rng.choice(VN_FORMS).format(word, trade)
        domain = f"https://{roman}{trade_roman}{ordinal}.example.vn/"
    body: dict[str, Any] = {
        "name": name,
        "type": _Weighted(ACCOUNT_TYPES).draw(rng),
        "industry": industry,
        "size": _Weighted(ACCOUNT_SIZES).draw(rng),
        "owner_id": rng.choice(OWNERS),
        "attributes": {"country": country, "tax_id": f"{rng.randrange(10**12, 10**13)}"},
    }
    if rng.random() < 0.85:
        body["domain"] = domain
    if rng.random() < 0.6:
        body["external_ids"] = {"erp": f"ACC-{ordinal:07d}"}
    if parent is not None:
        body["parent_account_id"] = str(parent.id)
    return body


async def _seed_accounts(
    connection: asyncpg.Connection,
    workspace: uuid.UUID,
    contacts: list[_Contact],
    count: int,
    rng: Random,
    now: datetime,
) -> tuple[list[_Account], dict[str, int]]:
    """Accounts, and about a third of the contacts attached to one (a few big accounts with
    many contacts, most with a handful). An account exists before its first contact."""
    if count == 0 or not contacts:
        return [], {}
    pool: dict[str, list[_Contact]] = {"TH": [], "VN": []}
    for contact in contacts:
        pool[contact.country].append(contact)
    vn_share = len(pool["VN"]) / len(contacts)
    earliest = min(contact.created_at for contact in contacts)
    accounts = [
        _Account(uuid.UUID(int=0), "VN" if rng.random() < vn_share else "TH", "", earliest)
        for _ in range(count)
    ]
    for members in pool.values():
        rng.shuffle(members)

    def attach(account: _Account) -> bool:
        members = pool[account.country]
        if not members:
            return False
        contact = members.pop()
        account.contacts.append(contact)
        contact.account = account
        return True

    budget = min(len(contacts), len(contacts) // 3 + count)
    for account in accounts:
        if budget > 0 and attach(account):
            budget -= 1
    # Zipf-like sizes: a few accounts with many contacts, most with a handful.
    weights = [1.0 / (rank + 1) ** 0.8 for rank in range(count)]
    for index in rng.choices(range(count), weights=weights, k=budget):
        attach(accounts[index])
    for account in accounts:
        if account.contacts:
            first = min(contact.created_at for contact in account.contacts)
            account.created_at = first - timedelta(seconds=rng.randrange(0, 60 * 86_400))
        else:
            account.created_at = _recent(rng, earliest, now)
    accounts.sort(key=lambda account: account.created_at)
    for account in accounts:
        account.id = _uuid_at(account.created_at, rng)

    parsed: list[account_schemas.AccountCreate] = []
    for ordinal, account in enumerate(accounts, start=1):
        earlier = [a for a in accounts[max(0, ordinal - 60) : ordinal - 1]
                   if a.country == account.country]  # fmt: skip
        parent = rng.choice(earlier) if earlier and rng.random() < 0.05 else None
        data = account_schemas.AccountCreate.model_validate(
            _account_body(rng, ordinal, account.country, parent)
        )
        account.type = data.type
        parsed.append(data)
    # The service's search source (name and domain), keyed by crm_search_key as it does.
    keys = await connection.fetch(
        "SELECT crm_search_key(s) AS key FROM unnest($1::text[]) WITH ORDINALITY AS t(s, n) "
        "ORDER BY n",
        [" ".join(part for part in (data.name, data.domain) if part) for data in parsed],
    )
    rows = _Rows(connection, {"accounts": ACCOUNT_COLUMNS,
                              "account_external_ids": ACCOUNT_ID_COLUMNS})  # fmt: skip
    for account, data, key in zip(accounts, parsed, keys, strict=True):
        await rows.add("accounts", (
            workspace, account.id, data.name, data.type, data.domain, data.industry, data.size,
            data.parent_account_id, data.owner_id,
            json.dumps(dict(data.attributes), ensure_ascii=False), key["key"],
            sort_key(data.name), account.created_at, account.created_at, 1,
        ))  # fmt: skip
        for system, value in sorted(data.external_ids.items()):
            await rows.add("account_external_ids", (workspace, system, value, account.id))
    await rows.flush()
    links = [(contact.id, account.id) for account in accounts for contact in account.contacts]
    async with connection.transaction():
        await connection.execute(
            "CREATE TEMP TABLE seed_account_links (contact_id uuid, account_id uuid) ON COMMIT DROP"
        )
        await connection.copy_records_to_table(
            "seed_account_links", records=links, columns=["contact_id", "account_id"]
        )
        # As if each contact had been created with its account: no new version.
        await connection.execute(
            "UPDATE contacts c SET account_id = l.account_id FROM seed_account_links l "
            "WHERE c.workspace_id = $1 AND c.id = l.contact_id",
            workspace,
        )
    counts = dict(rows.counts)
    counts["contacts_linked"] = len(links)
    return accounts, counts


# -- relationships -----------------------------------------------------------------------------


async def _seed_relationships(
    connection: asyncpg.Connection,
    workspace: uuid.UUID,
    contacts: list[_Contact],
    accounts: list[_Account],
    pairs: int,
    rng: Random,
    now: datetime,
) -> dict[str, int]:
    """Typed links, both directions as the service writes them: colleagues within an account,
    households and spouses sharing a family name, referrals and advocates anywhere."""
    if pairs == 0 or len(contacts) < 2:
        return {}
    by_family: dict[str, list[_Contact]] = {}
    for contact in contacts:
        if contact.family_name:
            by_family.setdefault(contact.family_name, []).append(contact)
    families = [group for group in by_family.values() if len(group) > 1]
    offices = [account.contacts for account in accounts if len(account.contacts) > 1]
    mix = _Weighted(RELATIONSHIP_MIX)
    taken: set[tuple[uuid.UUID, uuid.UUID, str]] = set()
    rows = _Rows(connection, {"contact_relationships": RELATIONSHIP_COLUMNS})
    made = attempts = 0
    while made < pairs and attempts < pairs * 5:
        attempts += 1
        kind = mix.draw(rng)
        if kind == "colleague" and offices:
            first, second = rng.sample(rng.choice(offices), 2)
        elif kind in ("household", "spouse", "parent") and families:
            first, second = rng.sample(rng.choice(families), 2)
        else:
            first, second = rng.sample(contacts, 2)
        data = RelationshipCreate.model_validate(
            {
                "related_contact_id": str(second.id),
                "type": kind,
                "note": rng.choice(RELATIONSHIP_NOTES),
            }
        )
        inverse = RELATIONSHIP_INVERSES[data.type]
        forward_key = (first.id, data.related_contact_id, data.type)
        inverse_key = (data.related_contact_id, first.id, inverse)
        if forward_key in taken or inverse_key in taken:
            continue
        taken.update((forward_key, inverse_key))
        at = _between(rng, max(first.created_at, second.created_at), now)
        pair_id = _uuid_at(at, rng)
        for contact_id, related_id, type_ in (
            (first.id, data.related_contact_id, data.type),
            (data.related_contact_id, first.id, inverse),
        ):
            await rows.add("contact_relationships", (
                workspace, _uuid_at(at, rng), contact_id, related_id, type_, pair_id,
                data.note, at,
            ))  # fmt: skip
        made += 1
    await rows.flush()
    return {**rows.counts, "relationship_pairs": made}


# -- opportunities -----------------------------------------------------------------------------


class _Collector:
    """Stands in for the session where the service only adds rows to it."""

    def __init__(self) -> None:
        self.added: list[Any] = []

    def add(self, row: Any) -> None:
        self.added.append(row)


async def _default_stages(
    connection: asyncpg.Connection, workspace: uuid.UUID
) -> list[PipelineStage]:
    rows = await connection.fetch(
        "SELECT s.id, s.pipeline_id, s.name, s.position, s.probability, s.type "
        "FROM pipelines p JOIN pipeline_stages s "
        "ON s.workspace_id = p.workspace_id AND s.pipeline_id = p.id "
        "WHERE p.workspace_id = $1 AND p.is_default ORDER BY s.position",
        workspace,
    )
    if not rows:
        raise SeedCheckFailed("the workspace has no default pipeline")
    return [PipelineStage(workspace_id=workspace, **dict(row)) for row in rows]


def _opportunity_body(
    rng: Random, contact: _Contact | None, account: _Account | None, created: datetime
) -> dict[str, Any]:
    country = (contact or account).country  # type: ignore[union-attr]
    currency = "THB" if country == "TH" else "VND"
    low, high, step = AMOUNTS[currency]
    amount = rng.randrange(low, high, step)
    rivals = rng.sample(COMPETITORS[country], rng.choice((0, 0, 0, 1, 2)))
    body: dict[str, Any] = {
        "name": rng.choice(DEALS[country]),
        "amount": {"amount": str(amount), "currency": currency},
        "expected_close_date": (
            created.astimezone(BANGKOK).date() + timedelta(days=rng.randrange(14, 120))
        ).isoformat(),
        "owner": rng.choice(OWNERS),
        "source": rng.choice(DEAL_SOURCES),
        "competitors": [
            {"name": name, "status": rng.choice(("active", "eliminated"))} for name in rivals
        ],
    }
    if contact is not None:
        body["contact_id"] = str(contact.id)
    if account is not None:
        body["account_id"] = str(account.id)
    if rng.random() < 0.3:
        body["next_step"] = rng.choice(("Send quotation", "นัดประชุมลูกค้า", "Gửi báo giá"))
    return body


async def _seed_opportunities(
    connection: asyncpg.Connection,
    workspace: uuid.UUID,
    auth: AuthContext,
    contacts: list[_Contact],
    accounts: list[_Account],
    count: int,
    rng: Random,
    now: datetime,
) -> dict[str, int]:
    """Deals in the default pipeline, created in its first stage and moved stage by stage
    (days to weeks in each) to where they stand: most old ones won or lost, recent ones open."""
    if count == 0 or not contacts:
        return {}
    stages = await _default_stages(connection, workspace)
    progress = [stage for stage in stages if stage.type == "open"]
    won = next(stage for stage in stages if stage.type == "won")
    lost = next(stage for stage in stages if stage.type == "lost")
    staffed = [account for account in accounts if account.contacts]
    rows = _Rows(connection, {
        "opportunities": OPPORTUNITY_COLUMNS,
        "opportunity_stage_changes": STAGE_CHANGE_COLUMNS,
        "opportunity_competitors": COMPETITOR_COLUMNS,
    })  # fmt: skip
    for _ in range(count):
        roll = rng.random()
        contact: _Contact | None
        account: _Account | None
        if staffed and roll < 0.45:
            account = rng.choice(staffed)
            contact = rng.choice(account.contacts)
        elif staffed and roll < 0.6:
            account, contact = rng.choice(staffed), None
        else:
            contact = rng.choice(contacts)
            account = contact.account
        born = max(party.created_at for party in (contact, account) if party is not None)
        created = _recent(rng, born, now - timedelta(hours=1))
        data = opportunity_schemas.OpportunityCreate.model_validate(
            _opportunity_body(rng, contact, account, created)
        )
        stage = progress[0]
        check_loss_reason(stage, data.loss_reason, field="loss_reason")
        opportunity = _plain(Opportunity)(
            workspace_id=workspace, id=_uuid_at(created, rng), name=data.name,
            contact_id=data.contact_id, account_id=data.account_id,
            pipeline_id=stage.pipeline_id, stage_id=stage.id, status=stage.type,
            currency=data.amount.currency, amount_minor=_minor_of(data.amount, "amount"),
            expected_close_date=data.expected_close_date, owner=data.owner, source=data.source,
            next_step=data.next_step, loss_reason=data.loss_reason, attributes=data.attributes,
            version=1,
        )  # fmt: skip
        OpportunityService._set_competitors(opportunity, data.competitors)
        first = enter_first_stage(auth, opportunity, stage)
        opportunity.stage_entered_at = _at(opportunity.stage_entered_at, created)
        opportunity.closed_at = _at(opportunity.closed_at, created)
        first.changed_at = created
        changes = [first]
        # Where it ends: old deals are mostly decided, recent ones mostly still open.
        age_days = (now - created).days
        closed_share = 0.85 if age_days > 120 else 0.3 + 0.5 * age_days / 120
        reached = rng.randrange(1, len(progress) + 1)
        path: list[PipelineStage] = progress[1:reached]
        if rng.random() < closed_share:
            path.append(won if rng.random() < 0.45 else lost)
        moment, current = created, stage
        for target in path:
            moment = moment + timedelta(seconds=rng.randrange(2 * 86_400, 21 * 86_400))
            if moment >= now:
                break
            reason = rng.choice(LOSS_REASONS) if target.type == "lost" else None
            data_move = opportunity_schemas.StageMove(stage_id=target.id, loss_reason=reason)
            check_loss_reason(target, data_move.loss_reason, field="loss_reason")
            entered = opportunity.stage_entered_at
            collector = _Collector()
            change = await move(
                collector,  # type: ignore[arg-type]
                auth,
                opportunity,
                current,
                target,
                data_move.loss_reason,
            )
            change.changed_at = moment
            change.seconds_in_previous_stage = max(0, int((moment - entered).total_seconds()))
            opportunity.stage_entered_at = _at(opportunity.stage_entered_at, moment)
            opportunity.closed_at = _at(opportunity.closed_at, moment)
            opportunity.version += 1
            changes.append(change)
            current = target
        updated = changes[-1].changed_at
        await rows.add("opportunities", (
            workspace, opportunity.id, opportunity.name, opportunity.contact_id,
            opportunity.account_id, opportunity.pipeline_id, opportunity.stage_id,
            opportunity.status, opportunity.currency, opportunity.amount_minor,
            opportunity.expected_close_date, opportunity.owner, opportunity.source,
            opportunity.next_step, opportunity.loss_reason, opportunity.closed_at,
            opportunity.stage_entered_at, json.dumps(opportunity.attributes), created, updated,
            opportunity.version,
        ))  # fmt: skip
        for change in changes:
            await rows.add("opportunity_stage_changes", tuple(
                getattr(change, column) for column in STAGE_CHANGE_COLUMNS
            ))  # fmt: skip
        for competitor in opportunity.competitors:
            await rows.add("opportunity_competitors", tuple(
                getattr(competitor, column) for column in COMPETITOR_COLUMNS
            ))  # fmt: skip
    await rows.flush()
    return rows.counts


# -- cases -------------------------------------------------------------------------------------


@dataclass
class _Desk:
    policies: dict[str, list[SlaPolicy]]  # by priority, in the order the service reads them
    clocks: dict[uuid.UUID, PolicyClock]
    queues: dict[str, tuple[uuid.UUID, list[str]]]


async def _set_up_desk(session: AsyncSession, auth: AuthContext) -> _Desk:
    """The demo's service desk (``app.demo_cases.set_up_desk``) without its routing rules,
    and the policies and clocks the case service would read."""
    from app.case.repository import CaseRepository

    ids = await set_up_desk(session, auth, routing_rules=False)
    queues = {key: (ids[key], list(members)) for key, (_, members) in QUEUES.items()}
    repository = CaseRepository(session)
    policies = {priority: await repository.policies_for(auth.workspace_id, priority)
                for priority, *_ in TARGETS}  # fmt: skip
    found = await repository.policies_with_calendars(
        auth.workspace_id, [p.id for group in policies.values() for p in group]
    )
    clocks = {policy.id: clock_of(policy, calendar) for policy, calendar in found}
    return _Desk(policies, clocks, queues)


class _CaseRun:
    """One case's life, written as the case service writes it at each step."""

    def __init__(
        self, auth: AuthContext, case: Case, clock: PolicyClock | None, rows: _CaseRows
    ) -> None:
        self.auth = auth
        self.case = case
        self.clock = clock
        self.rows = rows
        self.history = _Collector()

    def sweep(self, until: datetime) -> None:
        """The SLA sweep's stamps for targets that came due while the clock ran (the sweep
        runs every 30 seconds: at the due time, near enough)."""
        from app.case.tasks import CHECKS

        case = self.case
        if case.sla_policy_id is None or case.status not in ("new", "open"):
            return
        for stamp, due_column, _event, target in CHECKS:
            due = getattr(case, due_column)
            if getattr(case, stamp) is not None or due is None or due > until:
                continue
            if target == "first_response" and case.first_response_at is not None:
                continue
            setattr(case, stamp, due)

    def status(
        self,
        to: str,
        at: datetime,
        *,
        reason: str | None = None,
        note: str | None = None,
        by_system: bool = False,
    ) -> None:
        """The case service's status change (``_apply_status``), at ``at``."""
        case, clock = self.case, self.clock
        if to not in TRANSITIONS[case.status]:
            raise SeedCheckFailed(f"a case cannot go from {case.status} to {to}")
        self.sweep(at)
        old = case.status
        if to in PAUSED_STATUSES and old not in PAUSED_STATUSES:
            case.paused_since = at
        elif to not in PAUSED_STATUSES and old in PAUSED_STATUSES:
            if clock is not None and case.paused_since is not None:
                case.paused_minutes += max(
                    0.0, business_minutes_between(clock.calendar, case.paused_since, at)
                )
            case.paused_since = None
        reopened = old == "resolved" and to == "open"
        case.status = to
        case.pending_reason = reason if to == "pending" else None
        if to == "resolved":
            case.resolved_at = at
        if reopened:
            case.resolved_at = None
            case.reopen_count += 1
        if to == "closed":
            case.closed_at = at
        recompute(case, clock)
        case.updated_at = at
        case.version += 1
        CaseService._log(
            self.history,  # type: ignore[arg-type]
            self.auth, case, "status", old, to, at, reason=note or reason, by_system=by_system,
        )  # fmt: skip
        if to == "resolved":
            self.rows.interaction({
                "contact_id": case.contact_id, "channel": case.channel,
                "direction": "outbound", "type": "notification", "occurred_at": at,
                "subject": f"[{format_number(case.number)}] resolved: {case.subject}"[:500],
                "body": note or "Your request has been resolved.", "case_id": case.id,
            })  # fmt: skip

    def reply(self, body: str, author: str | None, at: datetime) -> None:
        """A public comment (``CaseService.comment``): sent to the customer, the first
        response, and it opens a new case."""
        case = self.case
        self.sweep(at)
        data = case_schemas.CommentCreate.model_validate(
            {"body": body, "public": True, "author": author}
        )
        interaction_id = self.rows.interaction({
            "contact_id": case.contact_id, "channel": case.channel, "direction": "outbound",
            "type": "email" if case.channel == "email" else "message", "occurred_at": at,
            "subject": f"Re: [{format_number(case.number)}] {case.subject}"[:500],
            "body": data.body, "agent_id": data.author, "case_id": case.id,
        })  # fmt: skip
        self.rows.comments.append((
            self.auth.workspace_id, _uuid_at(at, self.rows.rng), case.id, data.body,
            data.public, data.author, self.auth.api_key_id, interaction_id, at,
        ))  # fmt: skip
        if case.first_response_at is None:
            case.first_response_at = at
        case.next_response_due_at = None
        if case.status == "new":
            self.status("open", at, note="first response")
        else:
            case.updated_at = at
            case.version += 1


@dataclass
class _CaseRows:
    workspace: uuid.UUID
    rng: Random
    interactions: list[tuple[Any, ...]] = field(default_factory=list)
    comments: list[tuple[Any, ...]] = field(default_factory=list)

    def interaction(self, body: dict[str, Any]) -> uuid.UUID:
        data = interaction_schemas.InteractionCreate.model_validate(body)
        row = _row(_Pending(index=0, data=data))
        row["attributes"] = json.dumps(row["attributes"], ensure_ascii=False)
        at = data.occurred_at
        values = {**row, "workspace_id": self.workspace, "created_at": at, "updated_at": at}
        self.interactions.append(tuple(values[column] for column in INTERACTION_COLUMNS))
        return uuid.UUID(str(row["id"]))


async def _seed_cases(
    connection: asyncpg.Connection,
    workspace: uuid.UUID,
    auth: AuthContext,
    desk: _Desk,
    contacts: list[_Contact],
    count: int,
    rng: Random,
    now: datetime,
) -> dict[str, int]:
    """Cases walked the way agents work them: a first public reply, sometimes a wait on the
    customer, resolution (the customer is notified), a few reopened, and closed by the sweep
    once the reopen window has passed; recent ones are still in progress."""
    if count == 0 or not contacts:
        return {}
    started = [(_recent(rng, contact.created_at, now - timedelta(minutes=10)), contact)
               for contact in rng.choices(contacts, k=count)]  # fmt: skip
    started.sort(key=lambda pair: pair[0])
    last = await connection.fetchval(
        "SELECT last_number FROM case_counters WHERE workspace_id = $1", workspace
    )
    first_number = (last or 0) + 1
    rows = _Rows(connection, {
        "cases": CASE_COLUMNS, "interactions": INTERACTION_COLUMNS,
        "case_history": CASE_HISTORY_COLUMNS, "case_comments": CASE_COMMENT_COLUMNS,
    })  # fmt: skip
    channels, priorities = _Weighted(CASE_CHANNELS), _Weighted(PRIORITIES)
    for offset, (opened, contact) in enumerate(started):
        subject, category = rng.choice(CASE_SUBJECTS)
        account = contact.account
        queue_key = ("vip" if account is not None and account.type in PARTNER_TYPES
                     else QUEUE_OF_CATEGORY.get(category, "care"))  # fmt: skip
        queue_id, members = desk.queues[queue_key]
        body: dict[str, Any] = {
            "contact_id": str(contact.id), "subject": subject, "channel": channels.draw(rng),
            "category": category, "priority": priorities.draw(rng), "queue_id": str(queue_id),
            "description": "Customer wrote in; details in the thread.",
        }  # fmt: skip
        if rng.random() < 0.8:
            body["assignee"] = rng.choice(members)
        data = case_schemas.CaseCreate.model_validate(body)
        account_id = data.account_id if data.account_id is not None else (
            account.id if account is not None else None)  # fmt: skip
        case = _plain(Case)(
            workspace_id=workspace, id=_uuid_at(opened, rng), number=first_number + offset,
            subject=data.subject, description=data.description, contact_id=data.contact_id,
            account_id=account_id, channel=data.channel or "other", category=data.category,
            priority=data.priority, status="new", pending_reason=None, queue_id=data.queue_id,
            assignee=data.assignee, source_interaction_id=None, routing_rule_id=None,
            attributes=dict(data.attributes), first_response_at=None, resolved_at=None,
            closed_at=None, reopen_count=0, paused_minutes=0.0, paused_since=None,
            next_response_due_at=None, first_response_warned_at=None,
            first_response_breached_at=None, resolution_warned_at=None,
            resolution_breached_at=None, created_at=opened, updated_at=opened, version=1,
        )  # fmt: skip
        policy = choose_policy(
            desk.policies[case.priority], case.category,
            account.type if account is not None and account_id is not None else None,
        )  # fmt: skip
        case.sla_policy_id = policy.id if policy is not None else None
        clock = desk.clocks[policy.id] if policy is not None else None
        recompute(case, clock)
        run = _CaseRun(auth, case, clock, _CaseRows(workspace, rng))
        CaseService._log(run.history, auth, case, "status", None, "new", opened)  # type: ignore[arg-type]
        CaseService._log(run.history, auth, case, "queue", None, str(case.queue_id), opened)  # type: ignore[arg-type]
        if case.assignee is not None:
            CaseService._log(run.history, auth, case, "assignee", None, case.assignee, opened)  # type: ignore[arg-type]
        _play(run, rng, opened, now, policy)
        run.sweep(now)
        await rows.add("cases", tuple(
            json.dumps(case.attributes) if column == "attributes" else getattr(case, column)
            for column in CASE_COLUMNS
        ))  # fmt: skip
        for row in run.rows.interactions:
            await rows.add("interactions", row)
        for change in run.history.added:
            await rows.add("case_history", tuple(
                getattr(change, column) for column in CASE_HISTORY_COLUMNS
            ))  # fmt: skip
        for comment in run.rows.comments:
            await rows.add("case_comments", comment)
    await rows.flush()
    await connection.execute(
        "INSERT INTO case_counters (workspace_id, last_number) VALUES ($1, $2) "
        "ON CONFLICT (workspace_id) DO UPDATE SET last_number = EXCLUDED.last_number",
        workspace,
        first_number + count - 1,
    )
    return rows.counts


def _play(
    run: _CaseRun, rng: Random, opened: datetime, now: datetime, policy: SlaPolicy | None
) -> None:
    """Walk the case forward from ``opened``; every step that would lie after ``now`` has not
    happened yet."""
    case = run.case
    agent = case.assignee
    at = opened + timedelta(minutes=min(rng.expovariate(1 / 180), 4_000))
    if at >= now:
        return
    run.reply(rng.choice(REPLIES), agent, at)
    if rng.random() < 0.4:
        at += timedelta(minutes=rng.randrange(30, 2 * 1440))
        if at >= now:
            return
        run.status("pending", at, reason=rng.choice(("waiting_on_customer",
                                                     "waiting_on_third_party")))  # fmt: skip
    at += timedelta(minutes=rng.randrange(30, 5 * 1440))
    if at >= now:
        return
    run.status("resolved", at, note="Solved: thank you for your patience.")
    if rng.random() < 0.1:
        at += timedelta(minutes=rng.randrange(60, 3 * 1440))
        if at >= now:
            return
        run.status("open", at)
        at += timedelta(minutes=rng.randrange(30, 2 * 1440))
        if at >= now:
            return
        run.status("resolved", at, note="Solved again after the customer's follow-up.")
    if rng.random() < 0.15:
        at += timedelta(minutes=rng.randrange(30, 2 * 1440))
        if at < now:
            run.status("closed", at)
        return
    window = timedelta(hours=policy.reopen_window_hours if policy is not None else 168)
    assert case.resolved_at is not None  # noqa: S101 - just resolved
    closes = case.resolved_at + window
    if closes < now:
        run.status("closed", closes, note="reopen window passed", by_system=True)


# -- loyalty -----------------------------------------------------------------------------------


class _LedgerMemory:
    """One member's rows in memory, standing in for the session and the lot reads of the
    ledger (``LoyaltyRepository``), with the same filters and consumption order."""

    def __init__(self) -> None:
        self.entries: list[LoyaltyEntry] = []
        self.lots: list[LoyaltyLot] = []
        self.allocations: list[LoyaltyAllocation] = []

    def add(self, row: Any) -> None:
        if isinstance(row, _plain(LoyaltyEntry)):
            self.entries.append(row)
        elif isinstance(row, _plain(LoyaltyLot)):
            self.lots.append(row)
        elif isinstance(row, _plain(LoyaltyAllocation)):
            self.allocations.append(row)
        else:
            raise TypeError(f"the ledger added a {type(row).__name__}")

    async def flush(self) -> None:
        return None

    @staticmethod
    def _order(lot: LoyaltyLot) -> tuple[Any, ...]:
        # ORDER BY expires_at NULLS LAST, available_at, id
        return (lot.expires_at is None, lot.expires_at or lot.available_at, lot.available_at,
                lot.id)  # fmt: skip

    async def spendable_lots(
        self,
        workspace_id: uuid.UUID,
        account_id: uuid.UUID,
        *,
        exclude: uuid.UUID | None = None,
        offset: int = 0,
        limit: int | None = None,
    ) -> list[LoyaltyLot]:
        lots = sorted(
            (lot for lot in self.lots
             if lot.state == "available" and lot.remaining > 0 and lot.id != exclude),
            key=self._order,
        )  # fmt: skip
        return lots[offset : None if limit is None else offset + limit]

    async def lots_due(
        self, workspace_id: uuid.UUID, account_id: uuid.UUID, now: datetime
    ) -> list[LoyaltyLot]:
        due = [
            lot for lot in self.lots
            if (lot.state == "pending" and lot.available_at <= now)
            or (lot.state in ("pending", "available") and lot.remaining > 0
                and lot.expires_at is not None and lot.expires_at <= now)
        ]  # fmt: skip
        return sorted(due, key=self._order)

    async def lot_of_entry(self, workspace_id: uuid.UUID, entry_id: uuid.UUID) -> LoyaltyLot | None:
        return next((lot for lot in self.lots if lot.entry_id == entry_id), None)

    async def lots_by_id(
        self, workspace_id: uuid.UUID, lot_ids: Sequence[uuid.UUID]
    ) -> list[LoyaltyLot]:
        wanted = set(lot_ids)
        return sorted((lot for lot in self.lots if lot.id in wanted), key=lambda lot: lot.id)

    async def allocations_of(self, entry_id: uuid.UUID) -> list[LoyaltyAllocation]:
        return sorted((a for a in self.allocations if a.entry_id == entry_id),
                      key=lambda a: a.id)  # fmt: skip

    def next_due(self) -> datetime | None:
        """When the sweep would next find something to release or expire."""
        times = [lot.available_at for lot in self.lots if lot.state == "pending"]
        times += [lot.expires_at for lot in self.lots
                  if lot.state == "available" and lot.remaining > 0 and lot.expires_at]  # fmt: skip
        return min(times) if times else None


class _MemoryRepository:
    """The lot reads of ``LoyaltyRepository`` the ledger makes, answered from memory."""

    def __init__(self, memory: _LedgerMemory) -> None:
        self.memory = memory
        self.spendable_lots = memory.spendable_lots
        self.lots_due = memory.lots_due
        self.lot_of_entry = memory.lot_of_entry
        self.lots = memory.lots_by_id

    async def allocations(
        self, workspace_id: uuid.UUID, entry_id: uuid.UUID
    ) -> list[LoyaltyAllocation]:
        return await self.memory.allocations_of(entry_id)

    async def next_due(self, workspace_id: uuid.UUID, account_id: uuid.UUID) -> datetime | None:
        return self.memory.next_due()


@dataclass
class _Programme:
    program: Any  # LoyaltyProgram
    rewards: list[Any]  # LoyaltyReward: unlimited stock, any tier


async def _set_up_programme(session: AsyncSession, auth: AuthContext) -> _Programme:
    """``crm demo``'s programme (pending days, 12-month expiry, three tiers) and rewards."""
    program, tiers = await loyalty_service.create_program(
        session, auth, parse_input(loyalty_schemas.ProgramCreate, PROGRAMME)
    )
    tier_ids = {tier.name: str(tier.id) for tier in tiers}
    open_rewards = []
    for name, cost, stock, tier in REWARDS:
        body = {"program_id": str(program.id), "name": name, "cost_points": cost, "stock": stock,
                "min_tier_id": tier_ids[tier] if tier else None}  # fmt: skip
        reward = await loyalty_service.create_reward(
            session, auth, parse_input(loyalty_schemas.RewardCreate, body)
        )
        if stock is None and tier is None:
            open_rewards.append(reward)
    return _Programme(program, open_rewards)


class _Member:
    """One member's history, each step as the loyalty service runs it: the account locked and
    settled at the step's time, then the earn, redemption or reversal through the ledger."""

    def __init__(
        self, workspace: uuid.UUID, key_id: uuid.UUID, programme: _Programme, account: Any
    ) -> None:
        self.workspace = workspace
        self.key_id = key_id
        self.programme = programme
        self.account = account
        self.memory = _LedgerMemory()
        self.redemptions: list[LoyaltyRedemption] = []

    def ledger(self, at: datetime, *, api_key_id: uuid.UUID | None) -> Ledger:
        ledger = Ledger(self.memory, self.workspace, at, api_key_id=api_key_id)  # type: ignore[arg-type]
        ledger.repository = _MemoryRepository(self.memory)  # type: ignore[assignment]
        return ledger

    async def sweep(self, until: datetime) -> None:
        """What the loyalty sweep (every few seconds) did up to ``until``: releases and
        expiries at their due times."""
        while (due := self.memory.next_due()) is not None and due <= until:
            await self.ledger(due, api_key_id=None).settle(self.account)

    async def locked(self, at: datetime) -> Ledger:
        await self.sweep(at)
        ledger = self.ledger(at, api_key_id=self.key_id)
        await ledger.settle(self.account)
        return ledger

    async def earn(self, at: datetime, points: int, reason: str) -> None:
        data = loyalty_schemas.EntryCreate.model_validate(
            {"kind": "earn", "points": points, "reason": reason}
        )
        ledger = await self.locked(at)
        await ledger.earn(
            self.account, self.programme.program, data.points, kind=data.kind, pending=False,
            reference=data.reference, reason=data.reason, qualifying=data.kind == "earn",
            details={"source": "manual"},
        )  # fmt: skip

    async def redeem(self, at: datetime, body: dict[str, Any]) -> LoyaltyRedemption | None:
        data = loyalty_schemas.RedemptionCreate.model_validate(body)
        ledger = await self.locked(at)
        reward = next((r for r in self.programme.rewards if r.id == data.reward_id), None)
        points = reward.cost_points if reward is not None else data.points
        assert points is not None  # noqa: S101 - the schema requires one of the two
        if self.account.available < points:
            return None  # refused (409 insufficient_points): nothing is written
        redemption_id = uuid7()
        entry = await ledger.consume(
            self.account, points, kind="redeem", reference=data.reference, reason=data.reason,
            redemption_id=redemption_id,
            details={"reward_id": str(reward.id)} if reward is not None else {},
        )  # fmt: skip
        redemption = _plain(LoyaltyRedemption)(
            workspace_id=self.workspace, id=redemption_id, account_id=self.account.id,
            reward_id=reward.id if reward is not None else None, points=points,
            status="completed", entry_id=entry.id, reversal_entry_id=None,
            reference=data.reference, reason=data.reason, created_at=at, reversed_at=None,
        )  # fmt: skip
        self.redemptions.append(redemption)
        return redemption

    async def reverse(self, at: datetime, redemption: LoyaltyRedemption, reason: str) -> None:
        data = loyalty_schemas.RedemptionReverse(reason=reason)
        ledger = await self.locked(at)
        original = next(e for e in self.memory.entries if e.id == redemption.entry_id)
        entry = await ledger.restore(
            self.account, original, reason=data.reason, redemption_id=redemption.id
        )
        redemption.status = "reversed"
        redemption.reversal_entry_id = entry.id
        redemption.reversed_at = at
        await ledger.settle(self.account)


async def _seed_loyalty(
    connection: asyncpg.Connection,
    workspace: uuid.UUID,
    key_id: uuid.UUID,
    programme: _Programme,
    contacts: list[_Contact],
    count: int,
    rng: Random,
    now: datetime,
) -> dict[str, int]:
    """Members enrolled after they became contacts, earning a few times (points expire after
    12 months), a third redeeming once or twice, a few redemptions reversed."""
    if count == 0 or not contacts:
        return {}
    program = programme.program
    rows = _Rows(connection, {
        "loyalty_accounts": LOYALTY_ACCOUNT_COLUMNS, "loyalty_entries": LOYALTY_ENTRY_COLUMNS,
        "loyalty_lots": LOYALTY_LOT_COLUMNS, "loyalty_allocations": LOYALTY_ALLOCATION_COLUMNS,
        "loyalty_redemptions": LOYALTY_REDEMPTION_COLUMNS,
    })  # fmt: skip
    chosen = rng.sample(contacts, min(count, len(contacts)))
    chosen.sort(key=lambda contact: contact.created_at)
    for contact in chosen:
        latest = max(contact.created_at, now - timedelta(days=1))
        enrolled = _between(rng, contact.created_at, latest)
        account = _plain(LoyaltyAccount)(
            workspace_id=workspace, id=_uuid_at(enrolled, rng), program_id=program.id,
            contact_id=contact.id, tier_id=None,
            allow_negative=program.clawback_policy == "allow_negative", available=0, pending=0,
            debt=0, balance=0, lifetime_earned=0, redeemed=0, expired=0, version=1,
            next_due_at=None, created_at=enrolled, updated_at=enrolled,
        )  # fmt: skip
        member = _Member(workspace, key_id, programme, account)
        steps: list[tuple[datetime, str]] = [
            (_between(rng, enrolled, now), "earn")
            for _ in range(1 + min(int(rng.expovariate(1 / 2.5)), 15))
        ]
        if rng.random() < 0.35:
            steps += [(_between(rng, enrolled, now), "redeem") for _ in range(rng.randint(1, 2))]
        steps.sort()
        for at, kind in steps:
            if kind == "earn":
                await member.earn(at, rng.randint(2, 200), rng.choice(EARN_REASONS))
                continue
            body: dict[str, Any] = {"reason": rng.choice(REDEEM_REASONS)}
            if programme.rewards and rng.random() < 0.5:
                body["reward_id"] = str(rng.choice(programme.rewards).id)
            else:
                body["points"] = rng.randint(10, 150)
            redemption = await member.redeem(at, body)
            if redemption is not None and rng.random() < REVERSED_SHARE:
                back = at + timedelta(minutes=rng.randrange(10, 3 * 1440))
                later = [moment for moment, _ in steps if moment > at]
                if back < min([now, *later]):
                    await member.reverse(back, redemption, "returned at store")
        await member.sweep(now)
        # What writes consult before settling: a wrong value would let due lots be spent.
        account.next_due_at = member.memory.next_due()
        await rows.add("loyalty_accounts", tuple(
            getattr(account, column) for column in LOYALTY_ACCOUNT_COLUMNS
        ))  # fmt: skip
        for entry in member.memory.entries:
            await rows.add("loyalty_entries", tuple(
                json.dumps(entry.details, ensure_ascii=False) if column == "details"
                else getattr(entry, column) for column in LOYALTY_ENTRY_COLUMNS
            ))  # fmt: skip
        for lot in member.memory.lots:
            await rows.add("loyalty_lots", tuple(
                getattr(lot, column) for column in LOYALTY_LOT_COLUMNS
            ))  # fmt: skip
        for allocation in member.memory.allocations:
            await rows.add("loyalty_allocations", tuple(
                getattr(allocation, column) for column in LOYALTY_ALLOCATION_COLUMNS
            ))  # fmt: skip
        for redemption in member.redemptions:
            await rows.add("loyalty_redemptions", tuple(
                getattr(redemption, column) for column in LOYALTY_REDEMPTION_COLUMNS
            ))  # fmt: skip
    await rows.flush()
    return rows.counts


async def _derive_tiers(session: AsyncSession, workspace: uuid.UUID, program_id: uuid.UUID,
                        now: datetime) -> int:  # fmt: skip
    """Each member's tier as the service derives it from the ledger (its own query)."""
    stale = await LoyaltyRepository(session).derived_tiers(
        workspace, program_id=program_id, only_changed=True
    )
    if stale:
        await session.execute(
            text(
                "UPDATE loyalty_accounts a SET tier_id = d.tier_id, updated_at = :now "
                "FROM unnest(CAST(:ids AS uuid[]), CAST(:tiers AS uuid[])) AS d(id, tier_id) "
                "WHERE a.workspace_id = :w AND a.id = d.id"
            ),
            {
                "ids": [row.id for row in stale],
                "tiers": [row.derived_tier_id for row in stale],
                "w": workspace,
                "now": now,
            },
        )
    return len(stale)


async def check_ledger(session: AsyncSession, workspace: uuid.UUID) -> None:
    """The ledger's invariants (``app.loyalty.invariants``, which the loyalty tests also
    check) over every loyalty account of the workspace.

    Raises:
        SeedCheckFailed: naming each broken invariant and a few of the rows that break it.
    """
    broken = await broken_invariants(session, workspace)
    if broken:
        raise SeedCheckFailed(f"loyalty ledger invariants broken: {broken}")


# -- the whole workspace -----------------------------------------------------------------------


@dataclass(frozen=True)
class _Contacts:
    all: list[_Contact]

    @classmethod
    async def read(cls, connection: asyncpg.Connection, workspace: uuid.UUID) -> _Contacts:
        rows = await connection.fetch(
            "SELECT id, created_at, locale, family_name, lifecycle_stage FROM contacts "
            "WHERE workspace_id = $1 AND merged_into_id IS NULL ORDER BY id",
            workspace,
        )
        return cls([
            _Contact(row["id"], row["created_at"],
                     "VN" if (row["locale"] or "").startswith("vi") else "TH",
                     row["family_name"], row["lifecycle_stage"])
            for row in rows
        ])  # fmt: skip


def _sqlalchemy_url(dsn: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(dsn).set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)


async def _without_insert_triggers(connection: asyncpg.Connection) -> set[str]:
    """The tables this seed writes that have no trigger of their own firing on INSERT."""
    tables = {"accounts", "account_external_ids", "contact_relationships", "opportunities",
              "opportunity_stage_changes", "opportunity_competitors", "cases", "case_history",
              "case_comments", "interactions", "loyalty_accounts", "loyalty_entries",
              "loyalty_lots", "loyalty_allocations", "loyalty_redemptions"}  # fmt: skip
    triggered = await connection.fetch(
        "SELECT DISTINCT c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
        "WHERE NOT t.tgisinternal AND (t.tgtype & 4) <> 0 AND c.relname = ANY($1::text[])",
        sorted(tables),
    )
    return tables - {row["relname"] for row in triggered}


async def seed_workspace(
    dsn: str,
    workspace_id: str | uuid.UUID,
    sizes: Sizes,
    *,
    seed: int = 42,
    check_references: bool = False,
) -> dict[str, Any]:
    """Seed ``sizes`` of each kind around the workspace's contacts; counts and timings.

    ``dsn`` connects as a superuser (or the tables' owner): rows are written past row-level
    security, as a restore would. Unless ``check_references``, tables with no insert trigger
    of their own are copied as a data-only restore does, without foreign-key checks (two
    thirds of the load time otherwise): the rows are built consistent, and the test suite
    seeds with the checks on.

    Raises:
        SeedCheckFailed: the loaded ledger breaks an invariant.
    """
    workspace = uuid.UUID(str(workspace_id))
    timings: dict[str, float] = {}
    counts: dict[str, int] = {}
    connection = await asyncpg.connect(dsn)
    engine = create_async_engine(_sqlalchemy_url(dsn), pool_size=1)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    began = time.perf_counter()

    def step(name: str, since: float, made: dict[str, int]) -> float:
        timings[name] = time.perf_counter() - since
        timings[f"{name}_copy"] = COPY_SECONDS[0]
        COPY_SECONDS[0] = 0.0
        counts.update(made)
        rows = sum(value for key, value in made.items() if key not in NOT_ROWS)
        print(f"  {name}: {rows:,} rows in {timings[name]:.1f} s", file=sys.stderr, flush=True)
        return time.perf_counter()

    try:
        await connection.execute("SET synchronous_commit = off")
        if not check_references:
            _UNCHECKED.update(await _without_insert_triggers(connection))
        now: datetime = await connection.fetchval("SELECT now()")
        key_id = await connection.fetchval(
            "SELECT id FROM api_keys WHERE workspace_id = $1 ORDER BY id LIMIT 1", workspace
        )
        if key_id is None:
            raise SeedCheckFailed(f"workspace {workspace} has no API key")
        auth = AuthContext(workspace_id=workspace, api_key_id=key_id,
                           scopes=frozenset({Scope.admin.value}))  # fmt: skip
        contacts = (await _Contacts.read(connection, workspace)).all
        async with sessions() as session, session.begin():
            await bind_workspace(session, workspace)
            desk = await _set_up_desk(session, auth)
            programme = await _set_up_programme(session, auth)
        mark = time.perf_counter()
        with _plain_models():
            accounts, made = await _seed_accounts(
                connection, workspace, contacts, sizes.accounts, Random(f"{seed}:accounts"), now
            )
            mark = step("accounts", mark, made)
            made = await _seed_relationships(
                connection, workspace, contacts, accounts, sizes.relationships,
                Random(f"{seed}:links"), now,
            )  # fmt: skip
            mark = step("relationships", mark, made)
            made = await _seed_opportunities(
                connection, workspace, auth, contacts, accounts, sizes.opportunities,
                Random(f"{seed}:deals"), now,
            )  # fmt: skip
            mark = step("opportunities", mark, made)
            made = await _seed_cases(connection, workspace, auth, desk, contacts, sizes.cases,
                                     Random(f"{seed}:cases"), now)  # fmt: skip
            mark = step("cases", mark, made)
            made = await _seed_loyalty(connection, workspace, key_id, programme, contacts,
                                       sizes.members, Random(f"{seed}:loyalty"), now)  # fmt: skip
        async with sessions() as session, session.begin():
            await bind_workspace(session, workspace)
            made["loyalty_tiers_derived"] = await _derive_tiers(
                session, workspace, programme.program.id, now
            )
        mark = step("loyalty", mark, made)
        for table in (
            "accounts", "contacts", "contact_relationships", "opportunities",
            "opportunity_stage_changes", "cases", "case_history", "case_comments",
            "interactions", "loyalty_accounts", "loyalty_entries", "loyalty_lots",
            "loyalty_allocations", "loyalty_redemptions",
        ):  # fmt: skip
            await connection.execute(f"VACUUM (ANALYZE) {table}")
        mark = step("vacuum_analyze", mark, {})
        async with sessions() as session:
            await check_ledger(session, workspace)
        step("ledger_checks", mark, {})
    finally:
        _UNCHECKED.clear()
        await connection.close()
        await engine.dispose()
    total_s = time.perf_counter() - began
    rows = sum(value for key, value in counts.items() if key not in NOT_ROWS)
    return {
        "sizes": sizes.__dict__,
        "rows": counts,
        "seconds": total_s,
        "steps_s": timings,
        "rows_per_s": rows / total_s if total_s else None,
    }
