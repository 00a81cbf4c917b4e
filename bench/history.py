"""Contact history: batch interaction ingest throughput, and timeline and 360 latency.

    .venv/bin/python -m bench.history                       # defaults: 50,000 / 1,000 / 10,000
    .venv/bin/python -m bench.history --code worktree       # measure the work tree, not HEAD
    .venv/bin/python -m bench.history --data-dir <dir>      # build the history there and keep it
    .venv/bin/python -m bench.history --data-dir <dir>      # again: reads only, on that history

In one run, against ``crm serve`` (one worker) on an embedded PostgreSQL of its own:

1. ``bench.seed`` loads ``--contacts`` + 1 contacts by COPY (their names and contact points do
   not matter here, only that they exist as the service stores them); ``crm serve`` and the
   Starlette + asyncpg primary-key read of ``bench.baselines`` start on the same database;
2. ingest: ``--interactions`` interactions spread over ``--contacts`` contacts (a few contacts
   with many, most with a few) go through ``POST /v1/interactions/batch`` in batches of
   ``--batch-size`` (at most 1,000), ``--ingest-connections`` requests in flight, bodies encoded
   beforehand. Items look like what a helpdesk, a PBX, LINE chat and the shops send: Thai and
   Vietnamese subjects and bodies, chat / phone / e-mail / store and a few other channels,
   partner ids on most (ingest is idempotent by external id), feedback on some. Rows/s is items
   created over the client's wall time from the first request sent to the last answer read.
   Then batches regrouped from already ingested items that carry external ids are sent again:
   every item must come back ``existing``;
3. history: one more contact gets ``--events`` timeline entries: 5 % purchases
   (``POST /v1/purchases``, lines adding up to the total), 20 refunds by amount
   (``POST /v1/purchases/{id}/refunds``), the rest interactions through the batch endpoint;
   the whole timeline is then walked once by ``next_cursor`` and checked (every entry once,
   newest first);
4. latency at concurrency 1, after a warm-up, in ``--rounds`` interleaved rounds, each round
   also reading the baseline: ``GET /v1/contacts/{id}/timeline?limit=50`` (first page), pages
   2..``--pages`` by following ``next_cursor``, the first page with
   ``kind=interaction&channel=chat``, and ``GET /v1/contacts/{id}/360``; at least
   ``--samples`` of each;
5. SQL statements per request of each kind: ``pg_stat_statements`` reset, a few requests,
   the service role's ``calls`` summed (the API-key usage flush, every 30 s, may add one);
6. ``<out>/history-<ts>.md`` and ``.json``.

Every throughput and latency is also given as a ratio to the baseline measured in the same run
(a closed loop on it for throughput, the same HTTP client at concurrency 1 for latency): client,
service and PostgreSQL share the machine's cores, so absolute figures move from run to run.

The service runs from a snapshot of ``--code-ref`` (``git archive`` of app/ and migrations/),
or from the work tree with ``--code worktree``, as in ``bench.search``. With ``--data-dir``,
the seeded contacts and history stay there (with ``bench-history.json`` naming them); a later
run on that directory skips steps 1-3 and measures the reads again. Everything started is
stopped, and the temporary directory removed, on success, failure and Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import platform
import signal
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from random import Random
from typing import Any

import asyncpg
import httpx
import psutil

from app.db.embedded import EmbeddedPostgres

# The parent / child split, the code snapshot, the service and baseline start-up, the
# statement reset and the percentile table are bench.search's. Its environment variable names
# are reused too (its private helpers read them): only one of the two runs in a process.
from bench import loadgen, search
from bench.foundation import BenchError, CpuSampler, Processes, Server, _cpu_model, plain_dsn
from bench.search import (
    _CHILD,
    _CODE,
    _interrupt,
    _reset_statements,
    _resolve,
    _say,
    _start_baseline,
    _start_service,
    stats,
)
from bench.seed import SEED_FILE

PROJECT_ROOT = Path(__file__).resolve().parent.parent
HISTORY_FILE = "bench-history.json"
TARGET_ROWS_PER_S = 5_000.0
BUDGET_MS = 30.0
PAGE_LIMIT = 50
MAX_BATCH = 1_000
REFUNDS = 20
ANOMALIES_KEPT = 20
ICT = timezone(timedelta(hours=7))  # Bangkok and Ho Chi Minh City: UTC+7 all year
YEARS = 3

# -- realistic items -------------------------------------------------------------------------

SUBJECTS = {
    "th": (
        "สอบถามสถานะการจัดส่ง", "ขอเปลี่ยนไซซ์สินค้า", "แจ้งปัญหาการชำระเงิน",
        "สอบถามโปรโมชั่นเดือนนี้", "ขอใบกำกับภาษีเต็มรูป", "สินค้าชำรุดเสียหาย",
        "นัดรับสินค้าที่สาขา", "สมัครสมาชิกบัตรสะสมแต้ม", "ติดตามคำสั่งซื้อ",
        "ขอบคุณสำหรับบริการที่ดี", "ขอคืนเงิน", "เปลี่ยนที่อยู่จัดส่ง",
    ),
    "vi": (
        "Hỏi về tình trạng giao hàng", "Yêu cầu đổi size sản phẩm", "Lỗi thanh toán bằng thẻ",
        "Hỏi chương trình khuyến mãi tháng này", "Yêu cầu xuất hóa đơn VAT",
        "Sản phẩm bị lỗi khi nhận hàng", "Đặt lịch nhận hàng tại cửa hàng",
        "Đăng ký thẻ thành viên", "Theo dõi đơn hàng", "Cảm ơn vì dịch vụ tốt",
        "Yêu cầu hoàn tiền", "Đổi địa chỉ giao hàng",
    ),
}  # fmt: skip
LINES = {
    "th": (
        "สวัสดีค่ะ สั่งของไปเมื่อวันจันทร์ ยังไม่ได้รับเลยค่ะ เลขพัสดุคืออะไรคะ",
        "ขอบคุณครับ ได้รับของแล้ว แพ็คมาดีมาก",
        "อยากเปลี่ยนจากไซซ์ M เป็น L ได้ไหมคะ",
        "ชำระเงินผ่านพร้อมเพย์แล้วแต่ระบบยังขึ้นว่ารอชำระ",
        "มีสาขาที่เชียงใหม่ไหมครับ",
        "สินค้าที่ได้รับมีรอยขีดข่วนที่ด้านข้าง ขอเปลี่ยนชิ้นใหม่ได้ไหมคะ",
        "รบกวนออกใบกำกับภาษีในนามบริษัทด้วยครับ",
        "แต้มสะสมของเดือนที่แล้วยังไม่เข้าบัญชีค่ะ",
    ),
    "vi": (
        "Chào shop, mình đặt hàng từ thứ Hai mà chưa nhận được, cho mình xin mã vận đơn nhé.",
        "Cảm ơn shop, hàng đóng gói rất cẩn thận.",
        "Mình muốn đổi từ size M sang size L được không ạ?",
        "Mình đã chuyển khoản rồi nhưng hệ thống vẫn báo chờ thanh toán.",
        "Shop có chi nhánh ở Đà Nẵng không ạ?",
        "Sản phẩm nhận được bị trầy ở cạnh bên, cho mình đổi cái mới được không?",
        "Nhờ shop xuất hóa đơn VAT theo tên công ty giúp mình.",
        "Điểm tích lũy tháng trước vẫn chưa được cộng vào tài khoản.",
    ),
}  # fmt: skip
NOTES = {
    "phone": {
        "th": "ลูกค้าโทรมาสอบถามเรื่องคำสั่งซื้อ แจ้งว่าจะติดต่อกลับภายในวันนี้",
        "vi": "Khách gọi hỏi về đơn hàng, đã hẹn gọi lại trong ngày.",
    },
    "store": {
        "th": "ลูกค้าเข้ามาลองสินค้าที่สาขา สนใจคอลเลกชันใหม่",
        "vi": "Khách đến cửa hàng xem sản phẩm mới, quan tâm bộ sưu tập mùa này.",
    },
}
SIGNATURE = {"th": "ขอแสดงความนับถือ", "vi": "Trân trọng"}
TOPICS = ("delivery", "payment", "product_quality", "staff", "returns", "loyalty")
# (channel, weight, types, share with a partner id, partner system)
CHANNELS = (
    ("chat", 35, ("message", "message", "inquiry", "complaint", "compliment"), 1.0, "line"),
    ("phone", 22, ("call",), 0.9, "pbx"),
    ("email", 20, ("email", "inquiry", "complaint"), 0.75, "zendesk"),
    ("store", 15, ("visit",), 0.3, "pos"),
    ("sms", 3, ("notification",), 1.0, "sms-gw"),
    ("social", 3, ("message", "feedback"), 1.0, "facebook"),
    ("web", 2, ("web_event", "survey_response"), 0.0, ""),
)
PRODUCTS = (
    ("TS-001", "เสื้อยืดคอกลม", "apparel", "199.00"),
    ("JN-014", "กางเกงยีนส์ขาตรง", "apparel", "890.00"),
    ("SN-220", "รองเท้าผ้าใบ", "footwear", "1290.00"),
    ("BG-031", "กระเป๋าสะพายข้าง", "bags", "590.00"),
    ("SC-050", "ครีมกันแดด SPF50", "beauty", "329.50"),
    ("MC-007", "ชาเขียวมัทฉะ", "grocery", "89.75"),
    ("CP-102", "Mũ lưỡi trai", "accessories", "250.00"),
    ("AO-310", "Áo sơ mi linen", "apparel", "1150.00"),
)
STORES = ("BKK-SIAM", "BKK-ARI", "CNX-NIMMAN", "HKT-CENTRAL", "online")


def _iso(moment: datetime) -> str:
    return moment.astimezone(ICT).isoformat(timespec="seconds")


@dataclass
class Generator:
    """Deterministic item bodies; partner ids are unique within the run."""

    rng: Random
    now: datetime
    tag: str
    counter: int = 0

    def moment(self, min_age_days: float = 0.0) -> datetime:
        span = YEARS * 365 * 86_400
        age = min_age_days * 86_400 + self.rng.random() * (span - min_age_days * 86_400)
        return self.now - timedelta(seconds=age)

    def interaction(self, contact_id: str, language: str) -> dict[str, Any]:
        rng = self.rng
        self.counter += 1
        channel, _w, types, with_id, system = rng.choices(
            CHANNELS, weights=[c[1] for c in CHANNELS]
        )[0]
        kind = rng.choice(types)
        item: dict[str, Any] = {
            "contact_id": contact_id,
            "channel": channel,
            "direction": "outbound" if channel == "sms" or rng.random() < 0.25 else "inbound",
            "type": kind,
            "occurred_at": _iso(self.moment()),
            "subject": rng.choice(SUBJECTS[language]),
        }
        if channel == "email":
            sentences = rng.sample(LINES[language], rng.randint(2, 4))
            item["body"] = "\n\n".join([*sentences, SIGNATURE[language]])
        elif channel in NOTES:
            item["body"] = NOTES[channel][language]
        else:
            item["body"] = rng.choice(LINES[language])
        if channel == "phone":
            item["duration_seconds"] = rng.randint(20, 1_200)
        if channel != "web" and rng.random() < 0.7:
            item["agent_id"] = f"agent-{rng.randint(1, 40):02d}"
        item["attributes"] = {"language": language, "queue": rng.choice(("sales", "care"))}
        if with_id and rng.random() < with_id:
            item["external_ids"] = {system: f"{system.upper()}-{self.tag}-{self.counter:08d}"}
        if kind in ("survey_response", "feedback", "complaint", "compliment") or (
            rng.random() < 0.08
        ):
            item["feedback"] = self.feedback(kind)
        return item

    def feedback(self, kind: str) -> dict[str, Any]:
        rng = self.rng
        if kind == "survey_response":
            scale = rng.choice(("nps", "csat", "ces"))
            low, high = {"nps": (0, 10), "csat": (1, 5), "ces": (1, 7)}[scale]
            return {"kind": "direct", "scale": scale, "score": rng.randint(low, high)}
        sentiment = {"complaint": "negative", "compliment": "positive"}.get(
            kind, rng.choice(("positive", "neutral", "negative", "mixed"))
        )
        feedback = {"kind": "indirect", "sentiment": sentiment, "topic": rng.choice(TOPICS)}
        if sentiment == "negative" and rng.random() < 0.3:
            feedback["urgency"] = "high"
        return feedback

    def purchase(self, contact_id: str) -> dict[str, Any]:
        rng = self.rng
        self.counter += 1
        lines = []
        total = Decimal(0)
        for sku, name, category, price in rng.sample(PRODUCTS, rng.randint(1, 4)):
            quantity = rng.randint(1, 3)
            lines.append(
                {
                    "sku": sku,
                    "name": name,
                    "category": category,
                    "quantity": quantity,
                    "unit_price": {"amount": price, "currency": "THB"},
                }
            )
            total += Decimal(price) * quantity
        store = rng.choice(STORES)
        body: dict[str, Any] = {
            "contact_id": contact_id,
            # Refunds are dated after their purchase, and not in the future.
            "occurred_at": _iso(self.moment(min_age_days=30)),
            "channel": "web" if store == "online" else "store",
            "store_id": store,
            "total": {"amount": f"{total:.2f}", "currency": "THB"},
            "items": lines,
        }
        if rng.random() < 0.6:
            body["external_ids"] = {"pos": f"R-{self.tag}-{self.counter:08d}"}
        return body


def contact_weights(count: int) -> list[float]:
    """A few contacts with many interactions, most with a few (Zipf-like, exponent 0.7)."""
    return [1.0 / (rank + 1) ** 0.7 for rank in range(count)]


def batches_of(items: Sequence[dict[str, Any]], size: int) -> list[list[dict[str, Any]]]:
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


def encode(items: Sequence[dict[str, Any]]) -> bytes:
    return json.dumps({"items": list(items), "all_or_none": False}, ensure_ascii=False).encode()


def encode_fitting(
    batches: Sequence[Sequence[dict[str, Any]]], max_bytes: int
) -> tuple[list[bytes], list[int]]:
    """Each batch encoded, halved until it fits the service's body limit; and the item counts."""
    bodies: list[bytes] = []
    counts: list[int] = []
    pending = [list(batch) for batch in batches]
    while pending:
        batch = pending.pop(0)
        body = encode(batch)
        if len(body) > max_bytes and len(batch) > 1:
            half = len(batch) // 2
            pending[:0] = [batch[:half], batch[half:]]
            continue
        bodies.append(body)
        counts.append(len(batch))
    return bodies, counts


# -- HTTP ------------------------------------------------------------------------------------


@dataclass
class Anomalies:
    """Responses the benchmark did not expect, kept with their requests for the report."""

    seen: int = 0
    kept: list[dict[str, Any]] = field(default_factory=list)

    def add(self, method: str, path: str, body: bytes | None, response: httpx.Response) -> None:
        self.seen += 1
        if len(self.kept) < ANOMALIES_KEPT:
            self.kept.append(
                {
                    "request": f"{method} {path}",
                    "request_body": (body or b"")[:1500].decode(errors="replace"),
                    "status": response.status_code,
                    "response_body": response.text[:1500],
                }
            )


@dataclass
class Timed:
    ms: float
    status: int
    size: int
    response: httpx.Response


async def timed(client: httpx.AsyncClient, method: str, path: str, body: bytes | None) -> Timed:
    headers = {"Content-Type": "application/json"} if body is not None else None
    started = time.perf_counter()
    response = await client.request(method, path, content=body, headers=headers)
    ms = (time.perf_counter() - started) * 1000
    return Timed(ms, response.status_code, len(response.content), response)


@dataclass
class BatchOutcome:
    ms: float
    status: int
    items: int
    created: int = 0
    existing: int = 0
    errors: int = 0


async def send_batches(
    client: httpx.AsyncClient,
    bodies: Sequence[bytes],
    counts: Sequence[int],
    connections: int,
    anomalies: Anomalies,
    error_samples: list[dict[str, Any]],
) -> tuple[list[BatchOutcome], float]:
    """Every body through POST /v1/interactions/batch, ``connections`` at a time; the outcomes
    and the wall time from the first request to the last response."""
    path = "/v1/interactions/batch"
    outcomes: list[BatchOutcome] = []
    next_index = iter(range(len(bodies)))

    async def worker() -> None:
        for index in next_index:
            result = await timed(client, "POST", path, bodies[index])
            outcome = BatchOutcome(result.ms, result.status, counts[index])
            if result.status == 200:
                data = result.response.json()
                outcome.created = int(data["created"])
                outcome.existing = int(data["existing"])
                outcome.errors = int(data["errors"])
                if outcome.errors and len(error_samples) < ANOMALIES_KEPT:
                    items = json.loads(bodies[index])["items"]
                    for row in data["results"]:
                        if row["status"] == "error" and len(error_samples) < ANOMALIES_KEPT:
                            error_samples.append(
                                {"item": items[row["index"]], "error": row["error"]}
                            )
            else:
                anomalies.add("POST", path, bodies[index], result.response)
                if result.status in (404, 405):
                    raise BenchError(
                        "POST /v1/interactions/batch answered 404: the code measured has no "
                        "batch ingest (the default is a snapshot of HEAD; try --code worktree)"
                    )
            outcomes.append(outcome)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    return outcomes, time.perf_counter() - started


def ingest_figures(
    outcomes: Sequence[BatchOutcome], wall_s: float, cores: dict[str, float | None]
) -> dict[str, Any]:
    items = sum(o.items for o in outcomes)
    created = sum(o.created for o in outcomes)
    latencies = stats([o.ms for o in outcomes])
    return {
        "requests": len(outcomes),
        "items": items,
        "created": created,
        "existing": sum(o.existing for o in outcomes),
        "errors": sum(o.errors for o in outcomes),
        "non_200": sum(1 for o in outcomes if o.status != 200),
        "wall_s": wall_s,
        "items_per_s": items / wall_s if wall_s else 0.0,
        "created_per_s": created / wall_s if wall_s else 0.0,
        "request_ms": latencies,
        "cpu_cores": cores,
    }


async def ingest_window(
    client: httpx.AsyncClient,
    bodies: Sequence[bytes],
    counts: Sequence[int],
    connections: int,
    sampler: CpuSampler,
    anomalies: Anomalies,
    error_samples: list[dict[str, Any]],
    dsn: str,
) -> dict[str, Any]:
    """The batches sent, with the CPU of each party and the service's statements by server
    time (pg_stat_statements, reset just before) over the window."""
    await _reset_statements(dsn)
    sampler.start()
    cpu_before = time.process_time()
    outcomes, wall = await send_batches(
        client, bodies, counts, connections, anomalies, error_samples
    )
    client_cores = (time.process_time() - cpu_before) / wall if wall else None
    sampler.stop()
    figures = ingest_figures(outcomes, wall, sampler.cores(client_cores))
    rows = await _service_statements(dsn)
    figures["statements_exec_s"] = sum(float(row["total_exec_time"]) for row in rows) / 1000
    figures["statements"] = sorted(rows, key=lambda row: -float(row["total_exec_time"]))[:8]
    return figures


# -- the history of one contact ----------------------------------------------------------------


async def build_history(
    client: httpx.AsyncClient,
    generator: Generator,
    contact_id: str,
    events: int,
    args: argparse.Namespace,
    max_body: int,
    sampler: CpuSampler,
    anomalies: Anomalies,
    dsn: str,
) -> dict[str, Any]:
    purchases_wanted = max(1, round(events * 0.05))
    refunds_wanted = min(REFUNDS, purchases_wanted)
    interactions = events - purchases_wanted - refunds_wanted
    language = "th"

    _say(f"history: {purchases_wanted} purchases for the contact ...")
    purchase_ms: list[float] = []
    purchases: list[tuple[str, dict[str, Any]]] = []
    for _ in range(purchases_wanted):
        body = generator.purchase(contact_id)
        raw = json.dumps(body, ensure_ascii=False).encode()
        result = await timed(client, "POST", "/v1/purchases", raw)
        if result.status == 201:
            purchase_ms.append(result.ms)
            purchases.append((str(result.response.json()["id"]), body))
        else:
            anomalies.add("POST", "/v1/purchases", raw, result.response)

    _say(f"history: {refunds_wanted} refunds ...")
    refund_ms: list[float] = []
    refunds = 0
    for purchase_id, body in generator.rng.sample(purchases, min(refunds_wanted, len(purchases))):
        line = body["items"][0]
        amount = Decimal(line["unit_price"]["amount"])  # one unit of the first line back
        when = datetime.fromisoformat(body["occurred_at"]) + timedelta(days=3)
        refund = {
            "amount": {"amount": f"{amount:.2f}", "currency": "THB"},
            "reason": "สินค้าชำรุด / hàng bị lỗi",
            "occurred_at": _iso(when),
        }
        raw = json.dumps(refund, ensure_ascii=False).encode()
        path = f"/v1/purchases/{purchase_id}/refunds"
        result = await timed(client, "POST", path, raw)
        if result.status == 201:
            refund_ms.append(result.ms)
            refunds += 1
        else:
            anomalies.add("POST", path, raw, result.response)

    _say(f"history: {interactions:,} interactions for the contact through the batch ...")
    items = [generator.interaction(contact_id, language) for _ in range(interactions)]
    bodies, counts = encode_fitting(batches_of(items, args.batch_size), max_body)
    error_samples: list[dict[str, Any]] = []
    ingest = await ingest_window(
        client, bodies, counts, args.ingest_connections, sampler, anomalies, error_samples, dsn
    )
    return {
        "events_wanted": events,
        "purchases": len(purchases),
        "refunds": refunds,
        "interactions": ingest["created"],
        "purchase_create_ms": stats(purchase_ms),
        "refund_create_ms": stats(refund_ms),
        "ingest": ingest,
        "ingest_error_samples": error_samples,
    }


async def walk_all(
    client: httpx.AsyncClient, contact_id: str, anomalies: Anomalies
) -> dict[str, Any]:
    """The whole timeline by next_cursor: every entry once, newest first; each page's time."""
    path = f"/v1/contacts/{contact_id}/timeline?limit={PAGE_LIMIT}"
    cursor: str | None = None
    seen: set[tuple[str, str]] = set()
    duplicates = 0
    out_of_order = 0
    previous: tuple[str, str] | None = None
    kinds: dict[str, int] = {}
    page_ms: list[float] = []
    while True:
        url = path + (f"&cursor={cursor}" if cursor else "")
        result = await timed(client, "GET", url, None)
        if result.status != 200:
            anomalies.add("GET", url, None, result.response)
            break
        page_ms.append(result.ms)
        data = result.response.json()
        for entry in data["data"]:
            key = (entry["kind"], entry["id"])
            duplicates += key in seen
            seen.add(key)
            kinds[entry["kind"]] = kinds.get(entry["kind"], 0) + 1
            order = (entry["occurred_at"], entry["id"])
            # Same instant: ties are broken by id; compare instants as datetimes.
            if previous is not None and _later(order, previous):
                out_of_order += 1
            previous = order
        cursor = data.get("next_cursor")
        if not cursor:
            break
    return {
        "pages": len(page_ms),
        "entries": len(seen),
        "duplicates": duplicates,
        "out_of_order": out_of_order,
        "by_kind": kinds,
        "page_ms": page_ms,
    }


def _later(a: tuple[str, str], b: tuple[str, str]) -> bool:
    """Whether entry ``a`` sorts after (newer than) ``b`` in (occurred_at, id) order."""
    at_a, at_b = datetime.fromisoformat(a[0]), datetime.fromisoformat(b[0])
    return at_a > at_b or (at_a == at_b and uuid.UUID(a[1]) > uuid.UUID(b[1]))


# -- latency at concurrency 1 ------------------------------------------------------------------


@dataclass
class Probe:
    key: str
    label: str
    request: Callable[[], Awaitable[Timed]]
    samples: list[float] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)


async def latency_rounds(
    service: httpx.AsyncClient,
    baseline: httpx.AsyncClient,
    contact_id: str,
    args: argparse.Namespace,
    anomalies: Anomalies,
) -> dict[str, Any]:
    first = f"/v1/contacts/{contact_id}/timeline?limit={PAGE_LIMIT}"
    filtered = first + "&kind=interaction&channel=chat"
    view = f"/v1/contacts/{contact_id}/360"

    def get(client: httpx.AsyncClient, path: str) -> Callable[[], Awaitable[Timed]]:
        async def call() -> Timed:
            result = await timed(client, "GET", path, None)
            if result.status != 200:
                anomalies.add("GET", path, None, result.response)
            return result

        return call

    probes = [
        Probe("baseline", "baseline: Starlette + asyncpg PK read", get(baseline, "/")),
        Probe("timeline_first", "timeline, first page", get(service, first)),
        Probe("timeline_filtered", "timeline, kind=interaction&channel=chat",
              get(service, filtered)),
        Probe("view_360", "GET /360", get(service, view)),
    ]  # fmt: skip
    deep: dict[int, list[float]] = {}
    deep_sizes: list[int] = []

    async def walk(*, record: bool = True) -> None:
        cursor: str | None = None
        for page in range(1, args.pages + 1):
            path = first + (f"&cursor={cursor}" if cursor else "")
            result = await timed(service, "GET", path, None)
            if result.status != 200:
                anomalies.add("GET", path, None, result.response)
                return
            if page > 1 and record:
                deep.setdefault(page, []).append(result.ms)
                deep_sizes.append(result.size)
            cursor = result.response.json().get("next_cursor")
            if not cursor:
                return

    _say(f"latency: warm-up ({args.warmup_requests} of each) ...")
    for probe in probes:
        for _ in range(args.warmup_requests):
            await probe.request()
    await walk(record=False)
    walks = max(1, math.ceil(args.samples / max(1, args.pages - 1)))
    rounds = max(args.rounds, walks)
    per_round = math.ceil(args.samples / rounds)
    _say(f"latency: {rounds} rounds of {per_round} requests of each kind + one deep walk ...")
    for number in range(rounds):
        # Each round in a rotated order, so a slow spell of the machine lands on all kinds.
        order = probes[number % len(probes) :] + probes[: number % len(probes)]
        for probe in order:
            for _ in range(per_round):
                result = await probe.request()
                if result.status == 200:
                    probe.samples.append(result.ms)
                    probe.sizes.append(result.size)
        if number < walks:
            await walk()
    rows: dict[str, Any] = {}
    for probe in probes:
        rows[probe.key] = {
            "label": probe.label,
            **stats(probe.samples),
            "mean_bytes": sum(probe.sizes) / len(probe.sizes) if probe.sizes else 0,
        }
    all_deep = [ms for values in deep.values() for ms in values]
    rows["timeline_deep"] = {
        "label": f"timeline, pages 2-{args.pages} by next_cursor",
        **stats(all_deep),
        "mean_bytes": sum(deep_sizes) / len(deep_sizes) if deep_sizes else 0,
    }
    buckets: dict[str, list[float]] = {}
    for page, values in deep.items():
        name = "2-10" if page <= 10 else "11-25" if page <= 25 else f"26-{args.pages}"
        buckets.setdefault(name, []).extend(values)
    return {
        "rows": rows,
        "deep_by_pages": {name: stats(values) for name, values in buckets.items()},
        "rounds": rounds,
        "walks": walks,
    }


# -- SQL statements per request ------------------------------------------------------------------


async def statements_per_request(
    service: httpx.AsyncClient,
    dsn: str,
    contact_id: str,
    requests: int,
    sampler: Callable[[], CpuSampler],
) -> dict[str, Any]:
    """For each kind of read: pg_stat_statements reset, ``requests`` requests, and the calls
    of every role but the superuser (the service's) summed and divided; with the CPU the
    service process and PostgreSQL used per request over the same window."""
    first = f"/v1/contacts/{contact_id}/timeline?limit={PAGE_LIMIT}"
    cursors: list[str] = []
    cursor = None
    for _ in range(min(requests, 10)):  # cursors of pages 2..11, read before the window
        path = first + (f"&cursor={cursor}" if cursor else "")
        cursor = (await service.get(path)).json().get("next_cursor")
        if not cursor:
            break
        cursors.append(cursor)
    kinds = {
        "timeline_first": [first],
        "timeline_deep": [f"{first}&cursor={c}" for c in cursors] or [first],
        "timeline_filtered": [first + "&kind=interaction&channel=chat"],
        "view_360": [f"/v1/contacts/{contact_id}/360"],
    }
    out: dict[str, Any] = {}
    for key, paths in kinds.items():
        await _reset_statements(dsn)
        cpu = sampler()
        cpu.start()
        began = time.perf_counter()
        for number in range(requests):
            await service.get(paths[number % len(paths)])
        wall = time.perf_counter() - began
        cpu.stop()
        cores = cpu.cores(None)
        rows = await _service_statements(dsn)
        calls = sum(int(row["calls"]) for row in rows)
        out[key] = {
            "requests": requests,
            "server_cpu_ms_per_request": (cores.get("server") or 0.0) * wall * 1000 / requests,
            "postgres_cpu_ms_per_request": (cores.get("postgres") or 0.0) * wall * 1000 / requests,
            "wall_ms_per_request": wall * 1000 / requests,
            "statements_per_request": calls / requests,
            "exec_ms_per_request": sum(float(row["total_exec_time"]) for row in rows) / requests,
            "top": [{**row, "calls_per_request": int(row["calls"]) / requests} for row in rows],
        }
    return out


async def _analyze(dsn: str) -> None:
    connection = await asyncpg.connect(dsn)
    try:
        for table in ("interactions", "interaction_external_ids", "purchases", "purchase_items",
                      "purchase_refunds", "outbox_events"):  # fmt: skip
            await connection.execute(f"ANALYZE {table}")
    finally:
        await connection.close()


async def _service_statements(dsn: str) -> list[dict[str, Any]]:
    connection = await asyncpg.connect(dsn)
    try:
        rows = await connection.fetch(
            """
            SELECT s.calls, s.total_exec_time, s.mean_exec_time, s.rows, r.rolname AS role,
                   left(regexp_replace(s.query, '\\s+', ' ', 'g'), 200) AS query
            FROM pg_stat_statements s JOIN pg_roles r ON r.oid = s.userid
            WHERE s.dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
              AND r.rolname <> current_user
            ORDER BY s.calls DESC, s.total_exec_time DESC
            """
        )
    finally:
        await connection.close()
    return [dict(row) for row in rows]


# -- the run -----------------------------------------------------------------------------------


async def _database_setup(dsn: str, workspace_id: str, count: int) -> dict[str, Any]:
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        ids = await connection.fetch(
            "SELECT id FROM contacts WHERE workspace_id = $1 ORDER BY id LIMIT $2",
            workspace_id,
            count,
        )
        return {
            "server_version": await connection.fetchval("SHOW server_version"),
            "contact_ids": [str(row["id"]) for row in ids],
        }
    finally:
        await connection.close()


async def _table_facts(dsn: str, workspace_id: str, contact_id: str) -> dict[str, Any]:
    connection = await asyncpg.connect(dsn)
    try:
        counts = {}
        for table in ("interactions", "purchases", "purchase_refunds"):
            with contextlib.suppress(asyncpg.PostgresError):
                counts[table] = await connection.fetchval(
                    f"SELECT count(*) FROM {table} WHERE workspace_id = $1", workspace_id
                )
        sizes = {
            row["relname"]: row["size"]
            for row in await connection.fetch(
                "SELECT relname, pg_total_relation_size(oid) AS size FROM pg_class "
                "WHERE relkind = 'r' AND relname IN ('interactions', 'purchases', "
                "'purchase_items', 'purchase_refunds', 'contacts')"
            )
        }
        interactions_of_contact = await connection.fetchval(
            "SELECT count(*) FROM interactions WHERE workspace_id = $1 AND contact_id = $2",
            workspace_id,
            uuid.UUID(contact_id),
        )
    finally:
        await connection.close()
    return {
        "rows": counts,
        "total_bytes": sizes,
        "history_contact_interactions": interactions_of_contact,
    }


async def baseline_throughput(server: Server, connections: int, duration: float) -> dict[str, Any]:
    target = loadgen.build_target(server.url("/"))
    result = await loadgen.run_load(target, connections=connections, duration=duration, warmup=1)
    return result.as_dict()


def _client(port: int, headers: dict[str, str], connections: int) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}",
        headers=headers,
        http2=False,
        timeout=httpx.Timeout(300.0),
        limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
    )


async def measure(
    args: argparse.Namespace,
    service: Server,
    baseline: Server,
    data_dir: Path,
    info: dict[str, Any],
    contact_ids: list[str],
) -> dict[str, Any]:
    from app.config import Settings

    max_body = Settings().max_body_bytes
    dsn = plain_dsn(EmbeddedPostgres(data_dir).superuser_dsn())
    pgdata = EmbeddedPostgres(data_dir).layout.pgdata
    auth = {"Authorization": f"Bearer {info['api_key']}"}
    anomalies = Anomalies()
    report: dict[str, Any] = {}
    history_contact = str(info.get("history_contact") or contact_ids[-1])
    connections = args.ingest_connections
    async with (
        _client(service.port, auth, connections + 1) as client,
        _client(baseline.port, {}, 1) as base_client,
    ):
        if not info.get("history_built"):
            rng = Random(args.seed)
            generator = Generator(rng, datetime.now(UTC), args.timestamp)
            ingest_contacts = contact_ids[: args.contacts]
            weights = contact_weights(len(ingest_contacts))
            rng.shuffle(ingest_contacts)
            language = {c: "th" if rng.random() < 0.6 else "vi" for c in ingest_contacts}
            _say(f"generating {args.interactions:,} interactions ...")
            chosen = rng.choices(ingest_contacts, weights=weights, k=args.interactions)
            items = [generator.interaction(c, language[c]) for c in chosen]
            bodies, counts = encode_fitting(batches_of(items, args.batch_size), max_body)
            _say(f"baseline throughput at {connections} connection(s) ...")
            report["baseline_ingest_concurrency"] = await baseline_throughput(
                baseline, connections, args.baseline_duration
            )
            _say(
                f"ingest: {len(items):,} interactions in {len(bodies)} requests, "
                f"{connections} in flight ..."
            )
            error_samples: list[dict[str, Any]] = []
            first = await ingest_window(
                client,
                bodies,
                counts,
                connections,
                CpuSampler(service.pid, pgdata),
                anomalies,
                error_samples,
                dsn,
            )
            first["request_bytes_mean"] = sum(map(len, bodies)) / len(bodies)
            first["request_bytes_max"] = max(map(len, bodies))
            _say(f"  {first['created_per_s']:,.0f} rows/s created, {first['errors']} errors")
            report["ingest"] = first
            report["ingest_error_samples"] = error_samples

            with_ids = [item for item in items if item.get("external_ids")]
            again = rng.sample(with_ids, min(len(with_ids), args.resend))
            bodies, counts = encode_fitting(batches_of(again, args.batch_size), max_body)
            _say(f"re-send: {len(again):,} interactions already stored ...")
            report["resend"] = await ingest_window(
                client,
                bodies,
                counts,
                connections,
                CpuSampler(service.pid, pgdata),
                anomalies,
                error_samples,
                dsn,
            )
            _say(f"  {report['resend']['items_per_s']:,.0f} items/s, all existing expected")
            report["history"] = await build_history(
                client,
                generator,
                history_contact,
                args.events,
                args,
                max_body,
                CpuSampler(service.pid, pgdata),
                anomalies,
                dsn,
            )
            info["history_contact"] = history_contact
            info["history_built"] = {
                "at": args.timestamp,
                "ingest": report["ingest"],
                "resend": report["resend"],
                "history": report["history"],
                "baseline_ingest_concurrency": report["baseline_ingest_concurrency"],
            }
            (data_dir / HISTORY_FILE).write_text(json.dumps(info, indent=2) + "\n", "utf-8")
        else:
            _say("the history was built by an earlier run: reads only")
            for key in ("ingest", "resend", "history", "baseline_ingest_concurrency"):
                report[key] = info["history_built"][key]
            report["built_earlier"] = info["history_built"]["at"]

        # Fresh statistics, as autovacuum would have gathered after such a load: with the
        # seed's statistics the planner believes the tables are tiny and picks range scans.
        await _analyze(dsn)
        _say("walking the whole timeline once (checks every entry comes once, newest first) ...")
        report["walk"] = await walk_all(client, history_contact, anomalies)
        walk = report["walk"]
        _say(
            f"  {walk['entries']:,} entries in {walk['pages']} pages, "
            f"{walk['duplicates']} duplicates, {walk['out_of_order']} out of order"
        )
        report["latency"] = await latency_rounds(
            client, base_client, history_contact, args, anomalies
        )
        _say("SQL statements per request (pg_stat_statements) ...")
        report["statements"] = await statements_per_request(
            client,
            dsn,
            history_contact,
            args.statement_requests,
            lambda: CpuSampler(service.pid, pgdata),
        )
    report["tables"] = await _table_facts(dsn, str(info["workspace_id"]), history_contact)
    report["anomalies"] = {"seen": anomalies.seen, "kept": anomalies.kept}
    report["history_contact"] = history_contact
    report["service_rss_bytes"] = psutil.Process(service.pid).memory_info().rss
    return report


def run(args: argparse.Namespace, processes: Processes, temp: Path) -> dict[str, Any]:
    data_dir = _resolve(args.data_dir) or temp / "data"
    if EmbeddedPostgres(data_dir)._someone_serving():
        raise BenchError(f"a crm serve is running on {data_dir}: stop it first")
    history_file = data_dir / HISTORY_FILE
    seeding: dict[str, Any] | None = None
    if history_file.exists():
        info: dict[str, Any] = json.loads(history_file.read_text(encoding="utf-8"))
    elif (data_dir / SEED_FILE).exists():
        raise BenchError(f"{data_dir} was seeded by another benchmark: use a directory of its own")
    else:
        from bench.seed import seed

        _say(f"seeding {args.contacts + 1:,} contacts into {data_dir} ...")
        seeding = seed(
            data_dir, contacts=args.contacts + 1, keep_running=True, seed_value=args.seed
        )
        seeded = json.loads((data_dir / SEED_FILE).read_text(encoding="utf-8"))
        info = {"workspace_id": seeded["workspace_id"], "api_key": seeded["api_key"]}
        info["contacts"] = args.contacts
    if info.get("history_built") is None:
        info.pop("history_contact", None)
    dsn = plain_dsn(EmbeddedPostgres(data_dir).superuser_dsn())

    _say("starting crm serve (1 worker) and the baseline ...")
    service = _start_service(processes, data_dir)
    setup = asyncio.run(_database_setup(dsn, str(info["workspace_id"]), args.contacts + 1))
    if len(setup["contact_ids"]) < args.contacts + 1 and not info.get("history_built"):
        raise BenchError(f"only {len(setup['contact_ids'])} contacts in the workspace")
    baseline = _start_baseline(processes, dsn, str(info["workspace_id"]))
    runner = loadgen.event_loop_runner()
    report: dict[str, Any] = runner(
        measure(args, service, baseline, data_dir, info, setup["contact_ids"])
    )
    report["meta"] = {
        "timestamp": args.timestamp,
        "cpu_count": psutil.cpu_count(),
        "cpu_model": _cpu_model(),
        "python": platform.python_version(),
        "postgres": setup["server_version"],
        "code": json.loads(os.environ.get(_CODE, "{}")),
        "data_dir": str(data_dir) if args.data_dir else None,
        "interactions": args.interactions,
        "contacts": info.get("contacts", args.contacts),
        "events": args.events,
        "batch_size": args.batch_size,
        "ingest_connections": args.ingest_connections,
        "samples": args.samples,
        "pages": args.pages,
        "budget_ms": args.budget_ms,
        "target_rows_per_s": args.target_rows_per_s,
        "page_limit": PAGE_LIMIT,
        "http_client": f"httpx {httpx.__version__}, HTTP/1.1 keep-alive",
    }
    report["seeding"] = seeding
    return report


# -- the report --------------------------------------------------------------------------------


def _f(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}"


def _ratio(value: float | None, base: float | None, digits: int = 1) -> str:
    if value is None or not base:
        return "n/a"
    return f"{value / base:,.{digits}f}x"


def render_markdown(report: dict[str, Any]) -> str:
    meta = report["meta"]
    code = meta["code"]
    out: list[str] = []
    add = out.append
    budget = meta["budget_ms"]
    target = meta["target_rows_per_s"]
    add(f"# Contact history benchmark, {meta['timestamp']}")
    add("")
    add(
        f"{meta['cpu_count']} cores ({meta['cpu_model']}), Python {meta['python']}, PostgreSQL "
        f"{meta['postgres']}. Code: {code.get('kind')} of {str(code.get('commit', '?'))[:12]}"
        f"{' (dirty)' if code.get('dirty') else ''}. `crm serve` with 1 worker; client: "
        f"{meta['http_client']}."
    )
    add("")
    add(
        "**Machine caveat**: the client, the service, the baseline and PostgreSQL share these "
        "cores (a shared, noisy machine), so absolute figures move from run to run; the ratios "
        "to the baseline, measured in the same run, move less. Baseline: plain Starlette + "
        "asyncpg reading one row by primary key from the same PostgreSQL."
    )
    add("")
    if report.get("built_earlier"):
        add(
            f"Ingest figures and the history come from the run of {report['built_earlier']} on "
            "the same data directory; the reads were measured now."
        )
        add("")
    base_tp = report["baseline_ingest_concurrency"]
    add(f"## Batch ingest (`POST /v1/interactions/batch`, {meta['ingest_connections']} in flight)")
    add("")
    add(
        f"{meta['interactions']:,} interactions over {meta['contacts']:,} contacts, batches of "
        f"{meta['batch_size']:,}; mean request body "
        f"{report['ingest'].get('request_bytes_mean', 0) / 1024:,.0f} KiB. Rows/s = rows "
        "the server reports created (or found, for the re-send) / client wall time. Baseline "
        f"closed loop at the same concurrency: {base_tp['rps']:,.0f} req/s, p50 "
        f"{base_tp['p50_ms']:.2f} ms."
    )
    add("")
    add(
        "| workload | items | requests | wall s | rows/s | ÷ baseline req/s | req p50 ms | "
        "req p95 ms | p50 ÷ baseline p50 | created | existing | errors | non-200 | "
        "CPU cores: server / PG / client / other / machine |"
    )
    add("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    history = report["history"]
    workloads = (
        ("ingest over contacts", report["ingest"], "created_per_s"),
        ("re-send, all stored already", report["resend"], "items_per_s"),
        ("one contact's history (interactions)", history["ingest"], "created_per_s"),
    )
    for label, row, rate in workloads:
        cpu = row["cpu_cores"]
        add(
            f"| {label} | {row['items']:,} | {row['requests']} | {row['wall_s']:.1f} | "
            f"**{row[rate]:,.0f}** | {_ratio(row[rate], base_tp['rps'], 2)} | "
            f"{row['request_ms']['p50_ms']:.0f} | {row['request_ms']['p95_ms']:.0f} | "
            f"{_ratio(row['request_ms']['p50_ms'], base_tp['p50_ms'], 0)} | {row['created']:,} | "
            f"{row['existing']:,} | {row['errors']} | {row['non_200']} | "
            + " / ".join(
                _f(cpu.get(k), 2) for k in ("server", "postgres", "client", "other", "machine")
            )
            + " |"
        )
    rate = report["ingest"]["created_per_s"]
    add("")
    add(
        f"Target ≥ {target:,.0f} rows/s: **{'met' if rate >= target else 'not met'}** "
        f"({rate:,.0f} rows/s, {rate / target:.2f}x the target). 'other' is CPU used outside "
        "this benchmark's processes during the window."
    )
    add("")
    add("Server time by statement during each ingest window (pg_stat_statements, service role):")
    add("")
    add("| workload | calls | total s | share of wall | mean ms | rows | statement |")
    add("|---|---:|---:|---:|---:|---:|---|")
    for label, row, _rate in workloads:
        for item in row.get("statements", [])[:4]:
            query = item["query"][:110].replace("|", "/")
            add(
                f"| {label} | {item['calls']:,} | {item['total_exec_time'] / 1000:,.2f} | "
                f"{item['total_exec_time'] / 1000 / row['wall_s']:.0%} | "
                f"{item['mean_exec_time']:,.1f} | {item['rows']:,} | `{query}` |"
            )
    add("")
    add(f"## One contact with {history['events_wanted']:,} timeline entries")
    add("")
    walk = report["walk"]
    add(
        f"Built with {history['interactions']:,} interactions (batch), {history['purchases']} "
        f"purchases (`POST /v1/purchases`: p50 {_f(history['purchase_create_ms']['p50_ms'])}, "
        f"p95 {_f(history['purchase_create_ms']['p95_ms'])} ms) and {history['refunds']} refunds "
        f"(p50 {_f(history['refund_create_ms']['p50_ms'])} ms). Walking the whole timeline by "
        f"`next_cursor` (limit {meta['page_limit']}): {walk['entries']:,} entries in "
        f"{walk['pages']} pages ("
        + ", ".join(f"{k} {v:,}" for k, v in sorted(walk["by_kind"].items()))
        + f"), {walk['duplicates']} duplicates, {walk['out_of_order']} out of order; page p50 "
        f"{_f(stats(walk['page_ms'])['p50_ms'])} ms, last 20 pages p50 "
        f"{_f(stats(walk['page_ms'][-20:])['p50_ms'])} ms."
    )
    add("")
    latency = report["latency"]
    rows = latency["rows"]
    base = rows["baseline"]
    statements = report["statements"]
    add(f"## Latency at concurrency 1 (ms; {latency['rounds']} interleaved rounds after a warm-up)")
    add("")
    add(
        "| request | n | p50 | p95 | p99 | max | p50 ÷ base | p95 ÷ base | p99 ÷ base | "
        f"p95 ≤ {budget:.0f} ms | SQL statements / request | KiB |"
    )
    add("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|")
    for key in ("baseline", "timeline_first", "timeline_deep", "timeline_filtered", "view_360"):
        row = rows[key]
        per = statements.get(key, {}).get("statements_per_request")
        within = "" if key == "baseline" else ("yes" if row["p95_ms"] <= budget else "**no**")
        add(
            f"| {row['label']} | {row['n']} | {_f(row['p50_ms'], 2)} | {_f(row['p95_ms'], 2)} | "
            f"{_f(row['p99_ms'], 2)} | {_f(row['max_ms'], 1)} | "
            f"{_ratio(row['p50_ms'], base['p50_ms'])} | {_ratio(row['p95_ms'], base['p95_ms'])} | "
            f"{_ratio(row['p99_ms'], base['p99_ms'])} | {within} | {_f(per, 1)} | "
            f"{row['mean_bytes'] / 1024:,.1f} |"
        )
    add("")
    add(
        f"The budget (p95 ≤ {budget:.0f} ms) is for the timeline page; the 360 view is shown "
        "against it for comparison. Deep pages by page number:"
    )
    add("")
    add("| pages | n | p50 | p95 | p99 |")
    add("|---|---:|---:|---:|---:|")
    for name, row in latency["deep_by_pages"].items():
        add(
            f"| {name} | {row['n']} | {_f(row['p50_ms'], 2)} | {_f(row['p95_ms'], 2)} | "
            f"{_f(row['p99_ms'], 2)} |"
        )
    add("")
    add("## SQL statements per request (pg_stat_statements, service role)")
    add("")
    add(
        "Per request, over a window of requests of one kind at concurrency 1: statements and "
        "their execution time in PostgreSQL, and the CPU time the service process and "
        "PostgreSQL spent (process CPU clocks: coarse, 10 ms ticks over the window)."
    )
    add("")
    add(
        "| request | statements | SQL exec ms | service CPU ms | PostgreSQL CPU ms | wall ms "
        "| costliest statements (calls / request, mean ms) |"
    )
    add("|---|---:|---:|---:|---:|---:|---|")
    for key, row in statements.items():
        costly = sorted(row["top"], key=lambda item: -float(item["total_exec_time"]))[:3]
        top = "; ".join(
            f"{item['calls_per_request']:.1f} x {item['mean_exec_time']:.2f} ms "
            f"`{item['query'][:60].replace('|', '/')}`"
            for item in costly
        )
        add(
            f"| {key} | {row['statements_per_request']:.1f} | "
            f"{row['exec_ms_per_request']:.2f} | {_f(row.get('server_cpu_ms_per_request'))} | "
            f"{_f(row.get('postgres_cpu_ms_per_request'))} | "
            f"{_f(row.get('wall_ms_per_request'))} | {top} |"
        )
    add("")
    tables = report["tables"]
    add(
        "Tables after the run: "
        + ", ".join(f"{k} {v:,} rows" for k, v in tables["rows"].items())
        + "; sizes "
        + ", ".join(f"{k} {v / 1048576:,.1f} MiB" for k, v in tables["total_bytes"].items())
        + f". Service RSS {report['service_rss_bytes'] / 1048576:,.0f} MiB."
    )
    anomalies = report["anomalies"]
    problems = report.get("ingest_error_samples") or history.get("ingest_error_samples")
    if anomalies["seen"] or problems:
        add("")
        add(f"## Unexpected responses ({anomalies['seen']})")
        for item in anomalies["kept"][:5]:
            add("")
            add(f"`{item['request']}` → {item['status']}")
            add("")
            add("```")
            add(item["request_body"][:600])
            add(item["response_body"][:600])
            add("```")
        for sample in (problems or [])[:3]:
            add("")
            add("Batch item reported `error`:")
            add("")
            add("```")
            add(json.dumps(sample, ensure_ascii=False)[:900])
            add("```")
    add("")
    return "\n".join(out)


def write_report(report: dict[str, Any], out: Path) -> tuple[Path, Path, str]:
    out.mkdir(parents=True, exist_ok=True)
    stem = f"history-{report['meta']['timestamp']}"
    markdown = render_markdown(report)
    json_path, md_path = out / f"{stem}.json", out / f"{stem}.md"
    json_path.write_text(
        json.dumps(report, indent=2, default=str, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    md_path.write_text(markdown, encoding="utf-8")
    return json_path, md_path, markdown


# -- processes: the parent (code snapshot) and the child (the run) -----------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.history",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = parser.add_argument
    add("--interactions", type=int, default=50_000, help="ingested over --contacts contacts")
    add("--contacts", type=int, default=1_000)
    add("--events", type=int, default=10_000, help="timeline entries of the one contact")
    add("--batch-size", type=int, default=MAX_BATCH, help=f"items per request, <= {MAX_BATCH}")
    add("--ingest-connections", type=int, default=1, help="batch requests in flight")
    add("--resend", type=int, default=10_000, help="stored interactions sent again")
    add("--samples", type=int, default=200, help="latency samples of each request, at least")
    add("--pages", type=int, default=50, help="deepest page of the cursor walks")
    add("--rounds", type=int, default=5, help="interleaved latency rounds, at least")
    add("--warmup-requests", type=int, default=20)
    add("--statement-requests", type=int, default=50, help="per pg_stat_statements window")
    add("--baseline-duration", type=float, default=5.0, help="baseline closed loop, s")
    add("--budget-ms", type=float, default=BUDGET_MS, help="timeline page p95 budget")
    add("--target-rows-per-s", type=float, default=TARGET_ROWS_PER_S)
    add("--seed", type=int, default=42, help="seed of the generated data")
    add("--data-dir", type=Path, help="embedded data directory (kept; reused when built)")
    add("--keep-data", action="store_true", help="keep the temporary data directory")
    add("--code", choices=["head", "worktree"], default="head")
    add("--code-ref", default="HEAD", help="with --code head: what to run")
    add("--out", default=str(PROJECT_ROOT / "bench" / "results"))
    add("--timestamp", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if not 1 <= args.batch_size <= MAX_BATCH:
        parser.error(f"--batch-size must be 1 to {MAX_BATCH}")
    if min(args.interactions, args.contacts, args.samples, args.ingest_connections) < 1:
        parser.error("--interactions, --contacts, --samples, --ingest-connections: at least 1")
    if args.events < 3 or args.pages < 2:
        parser.error("--events must be at least 3 and --pages at least 2")
    args.timestamp = args.timestamp or datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return args


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    if os.environ.get(_CHILD):
        sys.exit(search.child_main(args, run, write_report))
    signal.signal(signal.SIGTERM, _interrupt)
    sys.exit(search.parent_main(args, argv, module="bench.history", data_file=HISTORY_FILE))


if __name__ == "__main__":
    main()
