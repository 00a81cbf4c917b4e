"""Workloads that do what the service's real clients do, and a closed-loop driver for them.

A scenario is one visit of a client, several requests in the order that client sends them: a
call-centre agent searches, opens the customer's single view and logs the call; a POS records
a receipt and sometimes a return. Each request's status is checked against what the scenario
expects at that step; anything else is an error, with a sample kept for the report.

The same scenarios run in two places:

- ``bench.workloads`` drives each one at a fixed concurrency against ``crm serve`` for a
  measured period (latency per step, visits and requests per second);
- the test suite runs a few visits of each through the in-process app, as a correctness check
  that every workload still completes with no error (never as a timing assertion).

A scenario needs a ``Dataset`` of ids and search terms from the workspace under load; it is
read through the API itself (``load_dataset``), so it works on any seeded workspace.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from random import Random
from typing import Any

import httpx

# How many error responses each step keeps for the report.
ERROR_SAMPLES = 5


@dataclass
class Dataset:
    """What the scenarios pick from: ids and terms that exist in the workspace."""

    contact_ids: list[str]
    names: list[str]  # single words of display names, as agents type them
    phones: list[str]  # E.164
    purchases: list[dict[str, Any]]  # {"id", "currency", "total"} of refundable purchases
    run_tag: str = field(default_factory=lambda: uuid.uuid4().hex[:10])
    # What scenarios' prepare steps created, by name.
    extra: dict[str, Any] = field(default_factory=dict)

    def contact(self, rng: Random) -> str:
        return rng.choice(self.contact_ids)


@dataclass
class StepStats:
    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    error_samples: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Recorder:
    """Times and checks each request of a visit; records only while ``recording``."""

    steps: dict[str, StepStats] = field(default_factory=dict)
    visits: int = 0
    failed_visits: int = 0
    recording: bool = True
    # Every request, warm-up included: what server-side counters (SQL statements) divide by.
    sent: int = 0

    async def call(
        self,
        step: str,
        request: Awaitable[httpx.Response],
        expect: Collection[int] = (200,),
    ) -> httpx.Response | None:
        """The response when its status is expected; None (an error) otherwise."""
        self.sent += 1
        started = time.perf_counter()
        try:
            response = await request
        except httpx.HTTPError as exc:
            self.error(step, None, f"{exc.__class__.__name__}: {exc}")
            return None
        elapsed_ms = (time.perf_counter() - started) * 1000
        if not self.recording:
            return response if response.status_code in expect else None
        stats = self.steps.setdefault(step, StepStats())
        stats.latencies_ms.append(elapsed_ms)
        stats.statuses[response.status_code] = stats.statuses.get(response.status_code, 0) + 1
        if response.status_code not in expect:
            self.error(step, response.status_code, response.text[:500])
            return None
        return response

    def error(self, step: str, status: int | None, detail: str) -> None:
        """Count an error at ``step``; scenarios call it for failures a status does not show."""
        if not self.recording:
            return
        stats = self.steps.setdefault(step, StepStats())
        stats.errors += 1
        if len(stats.error_samples) < ERROR_SAMPLES:
            stats.error_samples.append({"status": status, "detail": detail})

    @property
    def errors(self) -> int:
        return sum(stats.errors for stats in self.steps.values())

    @property
    def requests(self) -> int:
        return sum(len(stats.latencies_ms) for stats in self.steps.values())


Visit = Callable[[httpx.AsyncClient, Dataset, Random, Recorder], Awaitable[None]]
# Run once before a scenario's visits (not measured): creates what its visits need, e.g. a
# loyalty programme and members, and notes their ids in ``Dataset.extra``.
Prepare = Callable[[httpx.AsyncClient, Dataset], Awaitable[None]]


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    visit: Visit
    # Micro-workloads hit one endpoint; client scenarios mix several.
    micro: bool = False
    prepare: Prepare | None = None
    # Clients in flight when the workload is about contention (one hot record); else the run's.
    concurrency: int | None = None


SCENARIOS: dict[str, Scenario] = {}


def scenario(
    name: str,
    description: str,
    *,
    micro: bool = False,
    prepare: Prepare | None = None,
    concurrency: int | None = None,
) -> Callable[[Visit], Visit]:
    def register(visit: Visit) -> Visit:
        SCENARIOS[name] = Scenario(name, description, visit, micro, prepare, concurrency)
        return visit

    return register


# -- client scenarios --------------------------------------------------------------------------

CALL_SUBJECTS = (
    "สอบถามสถานะคำสั่งซื้อ",
    "ขอเปลี่ยนสินค้า",
    "Hỏi về chương trình khuyến mãi",
    "Khiếu nại giao hàng chậm",
    "Question about my invoice",
)


@scenario(
    "call_centre",
    "search by name or phone, open the first match's 360 view, log the call",
)
async def call_centre(
    client: httpx.AsyncClient, data: Dataset, rng: Random, record: Recorder
) -> None:
    if data.phones and rng.random() < 0.4:
        found = await record.call(
            "search by phone", client.get("/v1/contacts", params={"phone": rng.choice(data.phones)})
        )
    else:
        found = await record.call(
            "search by name", client.get("/v1/contacts", params={"q": rng.choice(data.names)})
        )
    if found is None:
        return
    hits = found.json()["data"]
    contact_id = hits[0]["id"] if hits else data.contact(rng)
    if await record.call("360 view", client.get(f"/v1/contacts/{contact_id}/360")) is None:
        return
    await record.call(
        "log the call",
        client.post(
            "/v1/interactions",
            json={
                "contact_id": contact_id,
                "occurred_at": datetime.now(UTC).isoformat(),
                "channel": "phone",
                "direction": "inbound",
                "type": "call",
                "subject": rng.choice(CALL_SUBJECTS),
                "agent_id": f"agent-{rng.randrange(40):02d}",
                "duration_seconds": rng.randrange(30, 900),
            },
        ),
        expect=(201,),
    )


@scenario(
    "partner_sync",
    "batch upsert of 50 contacts by partner id, then page through recent changes by cursor",
)
async def partner_sync(
    client: httpx.AsyncClient, data: Dataset, rng: Random, record: Recorder
) -> None:
    # Ids from a bounded pool: most batches update contacts an earlier batch created.
    pool = 50_000
    items = []
    for number in rng.sample(range(pool), 50):
        items.append(
            {
                "given_name": rng.choice(data.names).title(),
                "family_name": f"Sync{number}",
                "lifecycle_stage": rng.choice(("lead", "customer", "prospect")),
                "external_ids": {"erp": f"{data.run_tag}-{number}"},
            }
        )
    await record.call("batch upsert 50", client.post("/v1/contacts/batch", json={"items": items}))
    since = (datetime.now(UTC) - timedelta(minutes=10)).isoformat()
    cursor: str | None = None
    for page in range(3):
        params: dict[str, Any] = {"updated_after": since, "limit": 100, "sort": "updated_at"}
        if cursor:
            params["cursor"] = cursor
        listed = await record.call(
            f"changes page {page + 1}", client.get("/v1/contacts", params=params)
        )
        if listed is None:
            return
        cursor = listed.json().get("next_cursor")
        if not cursor:
            return


SKUS = (
    ("TEA-01", "ชาไทย Thai tea set", "beverage", {"THB": 45000, "VND": 12000000}),
    ("RICE-5", "ข้าวหอมมะลิ 5 กก.", "grocery", {"THB": 28900, "VND": 21000000}),
    ("PHO-2", "Phở bò ăn liền", "grocery", {"THB": 5900, "VND": 3500000}),
    ("CAF-1", "Cà phê sữa đá", "beverage", {"THB": 6500, "VND": 2900000}),
    ("SHIRT-M", "เสื้อยืด size M", "apparel", {"THB": 39000, "VND": 25000000}),
)
MINOR_UNITS = {"THB": 2, "VND": 0}


def _amount(minor: int, currency: str) -> dict[str, str]:
    digits = MINOR_UNITS[currency]
    text = str(minor) if digits == 0 else f"{minor / 10**digits:.{digits}f}"
    return {"amount": text, "currency": currency}


# -- loyalty ------------------------------------------------------------------------------------

LOYALTY_MEMBERS = 200
# Enough that no visit runs out: a redemption refused for lack of points would be an error.
MEMBER_FLOAT = 1_000_000


async def prepare_loyalty(client: httpx.AsyncClient, data: Dataset) -> None:
    """Members to earn and redeem on, once per run; later calls reuse them.

    A seeded workspace has a programme with members and their histories: the first
    ``LOYALTY_MEMBERS`` of them are used (earning before redeeming the same points, a visit
    never runs short whatever the member had). Otherwise a programme (1 point per 25 THB or
    10,000 VND, points available at once) and members with a float of points are created."""
    if "loyalty_accounts" in data.extra:
        return
    listed = await client.get("/v1/loyalty/accounts", params={"limit": LOYALTY_MEMBERS})
    listed.raise_for_status()
    seeded = listed.json()["data"]
    if seeded:
        data.extra["loyalty_program"] = seeded[0]["program_id"]
        data.extra["loyalty_accounts"] = {row["contact_id"]: row["id"] for row in seeded}
        return
    created = await client.post(
        "/v1/loyalty/programs",
        json={
            "name": f"Bench {data.run_tag}",
            "earn_rates": [
                {"spend": {"amount": "25.00", "currency": "THB"}, "points": 1},
                {"spend": {"amount": "10000", "currency": "VND"}, "points": 1},
            ],
            "pending_days": 0,
        },
    )
    created.raise_for_status()
    program_id = created.json()["id"]
    accounts: dict[str, str] = {}
    for contact_id in data.contact_ids[:LOYALTY_MEMBERS]:
        enrolled = await client.post(
            "/v1/loyalty/accounts", json={"program_id": program_id, "contact_id": contact_id}
        )
        enrolled.raise_for_status()
        account_id = enrolled.json()["id"]
        funded = await client.post(
            f"/v1/loyalty/accounts/{account_id}/entries",
            json={"kind": "earn", "points": MEMBER_FLOAT, "reason": "benchmark float"},
        )
        funded.raise_for_status()
        accounts[contact_id] = account_id
    data.extra["loyalty_program"] = program_id
    data.extra["loyalty_accounts"] = accounts


def _member_or_any(data: Dataset, rng: Random, share: float) -> str:
    members = list(data.extra.get("loyalty_accounts", {}))
    if members and rng.random() < share:
        return rng.choice(members)
    return data.contact(rng)


async def _earn_and_redeem(
    client: httpx.AsyncClient, account_id: str, rng: Random, record: Recorder
) -> None:
    points = rng.randint(1, 50)
    await record.call(
        "earn",
        client.post(
            f"/v1/loyalty/accounts/{account_id}/entries",
            json={"kind": "earn", "points": points, "reason": "in-store bonus"},
        ),
        expect=(201,),
    )
    await record.call(
        "redeem",
        client.post(
            f"/v1/loyalty/accounts/{account_id}/redemptions",
            json={"points": points, "reason": "coffee voucher"},
        ),
        expect=(201,),
    )


@scenario(
    "loyalty_many_accounts",
    "earn then redeem the same points on one of 200 members' accounts",
    prepare=prepare_loyalty,
)
async def loyalty_many_accounts(
    client: httpx.AsyncClient, data: Dataset, rng: Random, record: Recorder
) -> None:
    account_id = rng.choice(list(data.extra["loyalty_accounts"].values()))
    await _earn_and_redeem(client, account_id, rng, record)


@scenario(
    "loyalty_hot_account",
    "32 clients earning and redeeming on one account: every write queues on its row",
    prepare=prepare_loyalty,
    concurrency=32,
)
async def loyalty_hot_account(
    client: httpx.AsyncClient, data: Dataset, rng: Random, record: Recorder
) -> None:
    account_id = next(iter(data.extra["loyalty_accounts"].values()))
    await _earn_and_redeem(client, account_id, rng, record)


@scenario(
    "pos_partner",
    "record a receipt with items (members earn points from it); one in ten also refunds one",
    prepare=prepare_loyalty,
)
async def pos_partner(
    client: httpx.AsyncClient, data: Dataset, rng: Random, record: Recorder
) -> None:
    currency = "THB" if rng.random() < 0.6 else "VND"
    scale = 100 if currency == "VND" else 1  # VND prices above are in hundredths of a dong
    lines = []
    total = 0
    for sku, name, category, prices in rng.sample(SKUS, rng.randint(1, 3)):
        quantity = rng.randint(1, 3)
        price = prices[currency] // scale
        total += price * quantity
        lines.append(
            {
                "sku": sku,
                "name": name,
                "category": category,
                "quantity": quantity,
                "unit_price": _amount(price, currency),
            }
        )
    created = await record.call(
        "record purchase",
        client.post(
            "/v1/purchases",
            json={
                "contact_id": _member_or_any(data, rng, 0.5),
                "occurred_at": datetime.now(UTC).isoformat(),
                "channel": "store",
                "store_id": rng.choice(("BKK-SIAM", "CNX-01", "HCM-Q1", "HAN-HK")),
                "total": _amount(total, currency),
                "items": lines,
                "external_ids": {"pos": f"{data.run_tag}-{uuid.uuid4().hex}"},
            },
        ),
        expect=(201,),
    )
    if created is None or rng.random() >= 0.1:
        return
    purchase = created.json()
    await record.call(
        "refund",
        client.post(
            f"/v1/purchases/{purchase['id']}/refunds",
            json={"amount": _amount(total // 2 or total, currency), "reason": "damaged"},
        ),
        expect=(201,),
    )


@scenario(
    "mobile_app",
    "the app's home screen: loyalty balance and tier, recent points, recent purchases",
    prepare=prepare_loyalty,
)
async def mobile_app(
    client: httpx.AsyncClient, data: Dataset, rng: Random, record: Recorder
) -> None:
    contact_id = _member_or_any(data, rng, 0.8)
    memberships = await record.call(
        "loyalty balance and tier",
        client.get("/v1/loyalty/accounts", params={"contact_id": contact_id}),
    )
    if memberships is not None and memberships.json()["data"]:
        account_id = memberships.json()["data"][0]["id"]
        await record.call(
            "recent points",
            client.get(f"/v1/loyalty/accounts/{account_id}/entries", params={"limit": 10}),
        )
    await record.call(
        "recent purchases",
        client.get("/v1/purchases", params={"contact_id": contact_id, "limit": 10}),
    )


CASE_SUBJECTS = (
    ("สินค้าชำรุดเสียหาย", "product"),
    ("ขอคืนเงิน", "billing"),
    ("Giao hàng chậm", "delivery"),
    ("Lỗi thanh toán bằng thẻ", "billing"),
    ("Wrong size delivered", "delivery"),
)


@scenario(
    "service_desk",
    "open a case, answer the customer, wait on them, resolve (the customer is told)",
)
async def service_desk(
    client: httpx.AsyncClient, data: Dataset, rng: Random, record: Recorder
) -> None:
    subject, category = rng.choice(CASE_SUBJECTS)
    opened = await record.call(
        "open case",
        client.post(
            "/v1/cases",
            json={
                "contact_id": data.contact(rng),
                "subject": subject,
                "description": "Customer wrote in; details in the e-mail thread.",
                "channel": "email",
                "category": category,
                "priority": rng.choice(("low", "normal", "normal", "high", "urgent")),
            },
        ),
        expect=(201,),
    )
    if opened is None:
        return
    case_id = opened.json()["id"]
    await record.call("queue page", client.get("/v1/cases", params={"limit": 20}))
    await record.call(
        "public reply",
        client.post(
            f"/v1/cases/{case_id}/comments",
            json={"body": "ขอบคุณที่แจ้งค่ะ เรากำลังตรวจสอบให้", "public": True},
        ),
        expect=(201,),
    )
    await record.call(
        "wait on customer",
        client.post(
            f"/v1/cases/{case_id}/transitions",
            json={"to": "pending", "reason": "waiting_on_customer"},
        ),
    )
    await record.call(
        "resolve", client.post(f"/v1/cases/{case_id}/transitions", json={"to": "resolved"})
    )


CONTACT_PAGE = """
query ContactPage($id: UUID!) {
  contact(id: $id) {
    id displayName lifecycleStage tags
    emails { email } phones { number }
    account { id name }
    relationships { type contact { id displayName } }
    interactions(first: 5) { edges { node { id channel subject occurredAt } } }
    purchases(first: 5) { edges { node { id total { amount currency } items { name } } } }
    timeline(first: 10) { edges { node { kind id summary } } pageInfo { hasNextPage } }
    summary {
      interactionCount
      interactionsByChannel { channel count }
      openFeedback { id }
      purchases { lifetimeCount byCurrency { currency lifetimeSpend { amount } } }
    }
  }
}
"""


@scenario("graphql_contact_page", "one nested GraphQL query for a whole contact page")
async def graphql_contact_page(
    client: httpx.AsyncClient, data: Dataset, rng: Random, record: Recorder
) -> None:
    answered = await record.call(
        "contact page",
        client.post(
            "/graphql", json={"query": CONTACT_PAGE, "variables": {"id": data.contact(rng)}}
        ),
    )
    if answered is not None and answered.json().get("errors"):
        record.error("contact page", 200, str(answered.json()["errors"])[:500])


# -- micro-workloads ---------------------------------------------------------------------------


@scenario("get_contact", "GET /v1/contacts/{id}", micro=True)
async def get_contact(
    client: httpx.AsyncClient, data: Dataset, rng: Random, record: Recorder
) -> None:
    await record.call("get contact", client.get(f"/v1/contacts/{data.contact(rng)}"))


@scenario("search", "GET /v1/contacts?q=<a name word>", micro=True)
async def search(client: httpx.AsyncClient, data: Dataset, rng: Random, record: Recorder) -> None:
    await record.call("search", client.get("/v1/contacts", params={"q": rng.choice(data.names)}))


@scenario("timeline_page", "GET /v1/contacts/{id}/timeline?limit=50", micro=True)
async def timeline_page(
    client: httpx.AsyncClient, data: Dataset, rng: Random, record: Recorder
) -> None:
    await record.call(
        "timeline page",
        client.get(f"/v1/contacts/{data.contact(rng)}/timeline", params={"limit": 50}),
    )


# -- the dataset and the driver ----------------------------------------------------------------


async def load_dataset(
    client: httpx.AsyncClient, *, contacts: int = 2_000, purchases: int = 500
) -> Dataset:
    """Ids and terms of the workspace the client's key belongs to, read through the API."""
    contact_ids: list[str] = []
    names: set[str] = set()
    phones: list[str] = []
    cursor: str | None = None
    while len(contact_ids) < contacts:
        params: dict[str, Any] = {"limit": 200}
        if cursor:
            params["cursor"] = cursor
        response = await client.get("/v1/contacts", params=params)
        response.raise_for_status()
        page = response.json()
        for row in page["data"]:
            contact_ids.append(row["id"])
            names.update(word for word in row["display_name"].lower().split() if len(word) > 2)
            phones.extend(phone["number"] for phone in row.get("phones", [])[:1])
        cursor = page.get("next_cursor")
        if not cursor:
            break
    response = await client.get("/v1/purchases", params={"limit": min(purchases, 200)})
    response.raise_for_status()
    sold = [
        {"id": row["id"], "currency": row["total"]["currency"], "total": row["total"]["amount"]}
        for row in response.json()["data"]
        if row.get("status", "completed") == "completed"
    ]
    if not contact_ids:
        raise ValueError("the workspace has no contacts to run scenarios on")
    return Dataset(
        contact_ids=contact_ids,
        names=sorted(names) or ["somchai"],
        phones=phones,
        purchases=sold,
    )


@dataclass
class Outcome:
    scenario: str
    concurrency: int
    seconds: float
    record: Recorder

    @property
    def visits_per_s(self) -> float:
        return self.record.visits / self.seconds if self.seconds else 0.0

    @property
    def requests_per_s(self) -> float:
        return self.record.requests / self.seconds if self.seconds else 0.0


async def drive(
    client: httpx.AsyncClient,
    chosen: Scenario,
    data: Dataset,
    *,
    concurrency: int,
    duration: float | None = None,
    visits: int | None = None,
    warmup: float = 0.0,
    seed: int = 7,
    prepare: bool = True,
) -> Outcome:
    """Run ``chosen`` in a closed loop: ``concurrency`` clients, each starting its next visit
    when the last one ended, for ``duration`` seconds after ``warmup`` (or ``visits`` visits
    in all, without a warm-up). Only what happens after the warm-up is recorded. The
    scenario's prepare step runs first unless ``prepare`` is false (the caller ran it)."""
    if (duration is None) == (visits is None):
        raise ValueError("give a duration or a number of visits")
    if prepare and chosen.prepare is not None:
        await chosen.prepare(client, data)
    record = Recorder(recording=warmup <= 0)
    remaining = [visits if visits is not None else -1]
    started = time.perf_counter()
    measure_from = started + warmup
    stop_at = measure_from + duration if duration is not None else None

    async def client_loop(number: int) -> None:
        rng = Random(seed * 1_000 + number)
        while True:
            now = time.perf_counter()
            if stop_at is not None and now >= stop_at:
                return
            if visits is not None:
                if remaining[0] <= 0:
                    return
                remaining[0] -= 1
            if not record.recording and now >= measure_from:
                record.recording = True
            errors_before = record.errors
            await chosen.visit(client, data, rng, record)
            if record.recording:
                record.visits += 1
                if record.errors > errors_before:
                    record.failed_visits += 1

    await asyncio.gather(*(client_loop(n) for n in range(concurrency)))
    elapsed = time.perf_counter() - max(measure_from, started)
    return Outcome(chosen.name, concurrency, elapsed, record)
