"""Load N synthetic contacts into one workspace, fast, with PostgreSQL COPY.

    .venv/bin/python -m bench.seed --contacts 1000000 --data-dir <dir>
    .venv/bin/python -m bench.seed --contacts 50000 --data-dir .crm --workspace <id>

The data is what the service itself would store for the same input:

- display names as ``derive_display_name`` makes them (Thai and Latin: given family;
  Vietnamese, locale vi-VN: family middle given), 5 % of Thai ones with a title as imported
  lists carry it; names from ``bench.names`` (Thai compounds with tone marks, Vietnamese with
  diacritics and real family-name shares, some Latin);
- e-mails lower-cased and unique (each holds the contact's ordinal); phones in E.164, valid
  Thai (+66 8x/9x/6x mobiles, +66 2 Bangkok lines) and Vietnamese (+84 9x/3x/7x/8x) numbers;
  some partner ids (pos, shopify);
- ``search_text`` = ``crm_search_key(search_source(...))``: the source is built in Python
  exactly as ``app.contact.service.search_source`` builds it (checked against that function
  on a sample of every chunk), and ``crm_search_key`` is applied by PostgreSQL on the way from
  a staging table into ``contacts``; ``name_sort_key`` = ``app.kit.collation.sort_key``;
- ids are UUIDv7 carrying their ``created_at`` (spread over three years, inserted in time
  order as a live table would be), lifecycle stages, tags, owners, sources.

Without ``--workspace``, a workspace is created with ``crm workspace create`` (the service's
own command) and its id and admin key are written to ``<data-dir>/bench-seed.json`` with the
timings, for ``bench.search`` to read. The load runs as the embedded server's superuser (no
RLS), in one transaction per chunk; generation runs in worker processes while PostgreSQL
loads the previous chunk. Indexes stay in place (the figure includes maintaining them); at the
end ``VACUUM (ANALYZE)`` merges the GIN pending lists and refreshes statistics, as autovacuum
would after a bulk insert (timed separately).

An embedded PostgreSQL this command had to start is stopped again at the end, unless
``--keep-running``; one that a ``crm serve`` runs is left alone.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import json
import multiprocessing
import os
import subprocess
import sys
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import cache, lru_cache
from itertools import accumulate
from pathlib import Path
from random import Random
from types import SimpleNamespace
from typing import Any

import asyncpg

from app.contact.service import derive_display_name, search_source
from app.db.embedded import EmbeddedPostgres
from app.db.scratch import plain_dsn
from app.kit.collation import sort_key
from app.kit.contact_points import normalize_email, normalize_phone
from bench import names

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SEED_FILE = "bench-seed.json"
YEARS = 3

LANGUAGES = (("th", 0.55), ("vi", 0.35), ("latin", 0.10))
STAGES = (
    ("lead", 40), ("prospect", 15), ("customer", 30), ("advocate", 5), ("ambassador", 2),
    ("churned", 8),
)  # fmt: skip
TAGS = (
    ("vip", 6), ("newsletter", 20), ("line-oa", 15), ("bangkok", 12), ("chiang-mai", 4),
    ("phuket", 3), ("hanoi", 6), ("hcmc", 7), ("da-nang", 2), ("wholesale", 3), ("b2b", 3),
    ("loyalty-silver", 8), ("loyalty-gold", 4), ("loyalty-platinum", 1), ("event-2025", 2),
)  # fmt: skip
SOURCES = ("pos", "shopify", "line", "facebook", "walk-in", "referral", "import")
CHANNELS = ("store", "online", "social", "call-centre", "event")
OWNERS = tuple(f"rep-{n:02d}" for n in range(1, 26))
TH_MOBILE = (*(f"8{d}" for d in range(10)), *(f"9{d}" for d in range(10)), "61", "62", "63", "64")
VN_MOBILE = (
    *(f"9{d}" for d in range(9)), *(f"3{d}" for d in range(2, 10)), "70", "76", "77", "78",
    "79", "81", "83", "85", "86", "88",
)  # fmt: skip
EMAIL_DOMAINS = (
    ("example.com", 30), ("example.co.th", 20), ("example.vn", 12), ("example.net", 10),
    ("example.org", 6), ("mail.example.com", 8), ("inbox.example.co.th", 8),
    ("post.example.vn", 6),
)  # fmt: skip
WORK_DOMAINS = ("corp.example.co.th", "shop.example.com", "company.example.vn", "example.biz")
EXTERNAL_SYSTEMS = (("pos", 0.30), ("shopify", 0.10))
# The ordinal in an e-mail is scrambled (a bijection below this bound) so addresses look
# varied; unique all the same.
_SCRAMBLE_MODULUS = 10_000_000
_SCRAMBLE_FACTOR = 7_919
SAMPLE_CHECKS = 64

CONTACT_COLUMNS = (
    "workspace_id", "id", "given_name", "family_name", "display_name", "locale", "time_zone",
    "birthday", "lifecycle_stage", "owner_id", "tags", "acquisition_source",
    "acquisition_channel", "search_source", "name_sort_key", "created_at", "updated_at",
)  # fmt: skip
EMAIL_COLUMNS = ("workspace_id", "email", "contact_id", "is_primary", "position")
PHONE_COLUMNS = ("workspace_id", "contact_id", "number", "type", "is_primary", "position")
EXTERNAL_ID_COLUMNS = ("workspace_id", "system", "value", "contact_id")

_STAGING = """
CREATE TEMP TABLE IF NOT EXISTS seed_contacts (
  workspace_id uuid, id uuid, given_name varchar(200), family_name varchar(200),
  display_name varchar(300), locale varchar(35), time_zone varchar(64), birthday date,
  lifecycle_stage varchar(20), owner_id varchar(200), tags varchar(64)[],
  acquisition_source varchar(100), acquisition_channel varchar(50), search_source text,
  name_sort_key bytea, created_at timestamptz, updated_at timestamptz
) ON COMMIT DELETE ROWS
"""
_COLUMNS_SQL = ", ".join(CONTACT_COLUMNS[:13])
_FROM_STAGING = f"""
INSERT INTO contacts ({_COLUMNS_SQL}, search_text, name_sort_key, created_at, updated_at,
                      version)
SELECT {_COLUMNS_SQL}, crm_search_key(search_source), name_sort_key, created_at, updated_at, 1
FROM seed_contacts
"""


class SeedError(RuntimeError):
    """The seeding could not run as intended."""


# -- generation (worker processes) -----------------------------------------------------------


@dataclass(frozen=True)
class ChunkSpec:
    index: int
    first: int  # ordinal of the chunk's first contact
    count: int
    start_ts: float  # created_at of the chunk's contacts lie in [start_ts, end_ts)
    end_ts: float
    now_ts: float
    seed: int
    workspace_id: str


@dataclass
class Chunk:
    index: int
    contacts: list[tuple[Any, ...]]
    emails: list[tuple[Any, ...]]
    phones: list[tuple[Any, ...]]
    external_ids: list[tuple[Any, ...]]
    generate_s: float


class _Weighted:
    """Draws from a fixed population by weight (bisect over cumulative weights)."""

    def __init__(self, items: Sequence[Any], weights: Sequence[float]) -> None:
        self.items = list(items)
        self.cumulative = list(accumulate(weights))
        self.total = self.cumulative[-1]

    def draw(self, rng: Random) -> Any:
        return self.items[bisect.bisect_right(self.cumulative, rng.random() * self.total)]


def _zipf(items: Sequence[Any], shuffle_seed: str, exponent: float = 0.9) -> _Weighted:
    """Zipf-like shares in a fixed, shuffled order: a few common parts, a long rare tail."""
    order = list(items)
    Random(shuffle_seed).shuffle(order)
    return _Weighted(order, [1.0 / (rank + 1) ** exponent for rank in range(len(order))])


@dataclass(frozen=True)
class _Tables:
    language: _Weighted
    thai_given: _Weighted
    thai_family: _Weighted
    vi_family: _Weighted
    vi_male_middle: _Weighted
    vi_female_middle: _Weighted
    vi_male_given: _Weighted
    vi_female_given: _Weighted
    latin_given: _Weighted
    latin_family: _Weighted
    stage: _Weighted
    tag: _Weighted
    domain: _Weighted


@lru_cache(maxsize=1)
def _tables() -> _Tables:
    def pairs(values: Sequence[tuple[str, float]]) -> _Weighted:
        return _Weighted([names.nfc(v) for v, _ in values], [w for _, w in values])

    return _Tables(
        language=_Weighted([k for k, _ in LANGUAGES], [w for _, w in LANGUAGES]),
        thai_given=_zipf(names.thai_given_names(), "thai-given"),
        thai_family=_zipf(names.thai_family_names(), "thai-family"),
        vi_family=pairs(names.VIETNAMESE_FAMILIES),
        vi_male_middle=pairs(names.VIETNAMESE_MALE_MIDDLES),
        vi_female_middle=pairs(names.VIETNAMESE_FEMALE_MIDDLES),
        vi_male_given=_zipf([names.nfc(n) for n in names.VIETNAMESE_MALE_GIVEN], "vi-m"),
        vi_female_given=_zipf([names.nfc(n) for n in names.VIETNAMESE_FEMALE_GIVEN], "vi-f"),
        latin_given=_zipf([names.nfc(n) for n in names.LATIN_GIVEN], "latin-given"),
        latin_family=_zipf([names.nfc(n) for n in names.LATIN_FAMILY], "latin-family"),
        stage=_Weighted([s for s, _ in STAGES], [w for _, w in STAGES]),
        tag=_Weighted([t for t, _ in TAGS], [w for _, w in TAGS]),
        domain=_Weighted([d for d, _ in EMAIL_DOMAINS], [w for _, w in EMAIL_DOMAINS]),
    )


@cache
def _sort_key(display_name: str) -> bytes:
    # ~20 µs each in pure Python; names repeat, so most contacts hit the cache.
    return sort_key(display_name)


@cache
def _fold(text: str) -> str:
    return names.ascii_fold(text)


def _uuid7(ms: int, rng: Random) -> str:
    """UUIDv7 with the given Unix milliseconds and random bits from ``rng`` (reproducible)."""
    value = (ms & 0xFFFF_FFFF_FFFF) << 80
    value |= 0x7 << 76 | rng.getrandbits(12) << 64
    value |= 0b10 << 62 | rng.getrandbits(62)
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _national_digits(e164: str) -> str:
    """What ``_phone_digits`` gets from the national format for the numbers made here: the
    trunk prefix 0 and the national number (+66812345678 -> 0812345678)."""
    return "0" + e164[3:]


def _source(
    display_name: str,
    given: str | None,
    family: str | None,
    emails: Sequence[str],
    phones: Sequence[str],
) -> str:
    """``app.contact.service.search_source``, without parsing each phone number again."""
    parts = [display_name, given or "", family or "", *emails]
    for number in phones:
        parts += [number.lstrip("+"), _national_digits(number)]
    return " ".join(part for part in parts if part)


def _digits(rng: Random, count: int) -> str:
    return f"{rng.randrange(10**count):0{count}d}"


def _person(rng: Random, t: _Tables) -> tuple[str, str, str, str | None, str, str, str, str]:
    """(given, family, display, locale, time zone, romanised given, family, country)."""
    language = t.language.draw(rng)
    if language == "th":
        given, given_roman = t.thai_given.draw(rng)
        family, family_roman = t.thai_family.draw(rng)
        display = derive_display_name(given, family, "th-TH", (), (), {})
        if rng.random() < 0.05:
            display = rng.choice(names.THAI_TITLES) + display
        return given, family, display, "th-TH", "Asia/Bangkok", given_roman, family_roman, "TH"
    if language == "vi":
        family = t.vi_family.draw(rng)
        if rng.random() < 0.5:
            middle, first = t.vi_male_middle.draw(rng), t.vi_male_given.draw(rng)
        else:
            middle, first = t.vi_female_middle.draw(rng), t.vi_female_given.draw(rng)
        given = f"{middle} {first}"
        display = derive_display_name(given, family, "vi-VN", (), (), {})
        tz = "Asia/Ho_Chi_Minh"
        return given, family, display, "vi-VN", tz, _fold(first), _fold(family), "VN"
    given, family = t.latin_given.draw(rng), t.latin_family.draw(rng)
    display = derive_display_name(given, family, "en", (), (), {})
    country = "TH" if rng.random() < 0.7 else "VN"
    return given, family, display, "en", "Asia/Bangkok", _fold(given), _fold(family), country


def _emails(rng: Random, t: _Tables, ordinal: int, given: str, family: str) -> list[str]:
    roll = rng.random()
    if roll < 0.12:
        return []
    if ordinal < _SCRAMBLE_MODULUS:
        tag = str(ordinal * _SCRAMBLE_FACTOR % _SCRAMBLE_MODULUS)
    else:
        tag = str(ordinal)
    style = rng.randrange(5)
    if style == 0:
        local = f"{given}.{family}{tag}"
    elif style == 1:
        local = f"{given}{family[:1]}{tag}"
    elif style == 2:
        local = f"{given}_{family}.{tag}"
    elif style == 3:
        local = f"{family}.{given}{tag}"
    else:
        local = f"{given}{tag}"
    found = [f"{local}@{t.domain.draw(rng)}"]
    if roll > 0.80:
        found.append(f"{given[:1]}{family}.{tag}@{rng.choice(WORK_DOMAINS)}")
    return found


def _phones(rng: Random, country: str) -> list[tuple[str, str]]:
    roll = rng.random()
    if roll < 0.10:
        return []
    if country == "TH":
        found = [(f"+66{rng.choice(TH_MOBILE)}{_digits(rng, 7)}", "mobile")]
        if roll > 0.85:
            kind = "home" if rng.random() < 0.5 else "work"
            found.append((f"+662{_digits(rng, 7)}", kind))
    else:
        found = [(f"+84{rng.choice(VN_MOBILE)}{_digits(rng, 7)}", "mobile")]
        if roll > 0.85:
            found.append((f"+84{rng.choice(VN_MOBILE)}{_digits(rng, 7)}", "work"))
    if len(found) == 2 and found[0][0] == found[1][0]:
        found.pop()
    return found


def _tags(rng: Random, t: _Tables) -> list[str]:
    count = rng.choices((0, 1, 2, 3), weights=(45, 30, 17, 8))[0]
    return sorted({t.tag.draw(rng) for _ in range(count)})


def generate_chunk(spec: ChunkSpec) -> Chunk:
    """One chunk of contacts and their child rows, ready for COPY; reproducible from spec."""
    began = time.perf_counter()
    rng = Random(f"{spec.seed}:{spec.index}")
    t = _tables()
    ws = spec.workspace_id
    contacts: list[tuple[Any, ...]] = []
    emails_out: list[tuple[Any, ...]] = []
    phones_out: list[tuple[Any, ...]] = []
    external_out: list[tuple[Any, ...]] = []
    span = spec.end_ts - spec.start_ts
    times = sorted(spec.start_ts + rng.random() * span for _ in range(spec.count))
    checks: list[tuple[str, SimpleNamespace, list[str], list[str]]] = []
    for offset, created_ts in enumerate(times):
        ordinal = spec.first + offset
        given, family, display, locale, tz, given_roman, family_roman, country = _person(rng, t)
        emails = _emails(rng, t, ordinal, given_roman, family_roman)
        phones = _phones(rng, country)
        numbers = [number for number, _ in phones]
        contact_id = _uuid7(int(created_ts * 1000), rng)
        created = datetime.fromtimestamp(created_ts, UTC)
        if rng.random() < 0.6:
            updated = created
        else:
            updated_ts = created_ts + rng.random() * (spec.now_ts - created_ts)
            updated = datetime.fromtimestamp(updated_ts, UTC)
        birthday = (
            date(1950, 1, 1) + timedelta(days=rng.randrange(20_500)) if rng.random() < 0.4 else None
        )
        source = rng.choice(SOURCES) if rng.random() < 0.7 else None
        channel = rng.choice(CHANNELS) if source is not None else None
        owner = rng.choice(OWNERS) if rng.random() < 0.5 else None
        search_src = _source(display, given, family, emails, numbers)
        contacts.append(
            (ws, contact_id, given, family, display, locale, tz, birthday, t.stage.draw(rng),
             owner, _tags(rng, t), source, channel, search_src, _sort_key(display), created,
             updated)
        )  # fmt: skip
        for position, email in enumerate(emails):
            emails_out.append((ws, email, contact_id, position == 0, position))
        for position, (number, kind) in enumerate(phones):
            phones_out.append((ws, contact_id, number, kind, position == 0, position))
        for system, share in EXTERNAL_SYSTEMS:
            if rng.random() < share:
                value = f"P{ordinal:09d}" if system == "pos" else str(7_000_000_000 + ordinal)
                external_out.append((ws, system, value, contact_id))
        if offset < SAMPLE_CHECKS:
            person = SimpleNamespace(display_name=display, given_name=given, family_name=family)
            checks.append((search_src, person, emails, numbers))
    _check(checks)
    return Chunk(
        index=spec.index,
        contacts=contacts,
        emails=emails_out,
        phones=phones_out,
        external_ids=external_out,
        generate_s=time.perf_counter() - began,
    )


def _check(samples: Sequence[tuple[str, SimpleNamespace, list[str], list[str]]]) -> None:
    """The shortcuts above against the service's own functions, on a sample of each chunk."""
    for built, person, emails, numbers in samples:
        expected = search_source(person, emails, numbers)  # type: ignore[arg-type]
        if built != expected:
            raise SeedError(f"search source differs from the service's: {built!r} {expected!r}")
        for email in emails:
            if normalize_email(email) != email:
                raise SeedError(f"{email!r} is not stored that way by the service")
        for number in numbers:
            if normalize_phone(number, "TH") != number:
                raise SeedError(f"{number!r} is not a valid E.164 number")


# -- loading ---------------------------------------------------------------------------------


def crm_command() -> str:
    beside = Path(sys.executable).with_name("crm")
    if not beside.exists():
        raise SeedError("the crm command is not installed beside this Python (pip install -e .)")
    return str(beside)


def crm_environment(data_dir: Path) -> dict[str, str]:
    excluded = {"CRM_DATABASE_URL", "CRM_DATABASE_OWNER_URL", "CRM_DATA_DIR"}
    env = {k: v for k, v in os.environ.items() if k not in excluded}
    env["CRM_DATA_DIR"] = str(data_dir)
    # bench.search runs the service from a snapshot of the code, put first on PYTHONPATH:
    # the workspace (and the migrations) must come from that same code.
    env["PYTHONPATH"] = os.environ.get("PYTHONPATH") or str(PROJECT_ROOT)
    return env


def create_workspace(data_dir: Path, name: str) -> dict[str, Any]:
    completed = subprocess.run(
        [crm_command(), "workspace", "create", name, "--json"],
        env=crm_environment(data_dir),
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if completed.returncode != 0:
        raise SeedError(f"crm workspace create failed: {completed.stderr.strip()}")
    created: dict[str, Any] = json.loads(completed.stdout)
    return created


async def _load_chunk(
    connection: asyncpg.Connection, chunk: Chunk, steps: dict[str, float]
) -> None:
    """One transaction: contacts through the staging table, then their child rows."""

    async def timed(step: str, work: Any) -> None:
        began = time.perf_counter()
        await work
        steps[step] = steps.get(step, 0.0) + time.perf_counter() - began

    async with connection.transaction():
        await timed(
            "copy_staging",
            connection.copy_records_to_table(
                "seed_contacts", records=chunk.contacts, columns=list(CONTACT_COLUMNS)
            ),
        )
        # crm_search_key and the maintenance of every index on contacts happen here.
        await timed("insert_contacts", connection.execute(_FROM_STAGING))
        for step, table, records, columns in (
            ("copy_emails", "contact_emails", chunk.emails, EMAIL_COLUMNS),
            ("copy_phones", "contact_phones", chunk.phones, PHONE_COLUMNS),
            ("copy_external_ids", "contact_external_ids", chunk.external_ids, EXTERNAL_ID_COLUMNS),
        ):
            if records:
                await timed(
                    step,
                    connection.copy_records_to_table(table, records=records, columns=list(columns)),
                )
        began = time.perf_counter()
    steps["commit"] = steps.get("commit", 0.0) + time.perf_counter() - began


def chunk_specs(
    *, contacts: int, chunk_size: int, first: int, seed: int, workspace_id: str, now: float
) -> list[ChunkSpec]:
    count = (contacts + chunk_size - 1) // chunk_size
    start = now - YEARS * 365.25 * 86_400
    slice_s = (now - start) / max(count, 1)
    return [
        ChunkSpec(
            index=index,
            first=first + index * chunk_size,
            count=min(chunk_size, contacts - index * chunk_size),
            start_ts=start + index * slice_s,
            end_ts=start + (index + 1) * slice_s,
            now_ts=now,
            seed=seed,
            workspace_id=workspace_id,
        )
        for index in range(count)
    ]


async def load(
    dsn: str,
    workspace_id: str,
    specs: list[ChunkSpec],
    pool: Any,
    prefetch: int,
) -> dict[str, Any]:
    connection = await asyncpg.connect(dsn)
    counts = {"contacts": 0, "emails": 0, "phones": 0, "external_ids": 0}
    total = sum(spec.count for spec in specs)
    generate_s = 0.0
    steps: dict[str, float] = {}
    try:
        exists = await connection.fetchval("SELECT 1 FROM workspaces WHERE id = $1", workspace_id)
        if not exists:
            raise SeedError(f"no workspace {workspace_id}")
        before = await connection.fetchval(
            "SELECT count(*) FROM contacts WHERE workspace_id = $1", workspace_id
        )
        # Only this session: an unlucky crash loses the last chunks, which is fine for a seed.
        await connection.execute("SET synchronous_commit = off")
        await connection.execute("SET work_mem = '256MB'")
        await connection.execute("SET gin_pending_list_limit = '64MB'")
        await connection.execute(_STAGING)
        pending: deque[Any] = deque()
        queue = iter(specs)

        def submit() -> None:
            spec = next(queue, None)
            if spec is not None:
                pending.append(pool.apply_async(generate_chunk, (spec,)))

        for _ in range(prefetch):
            submit()
        began = time.perf_counter()
        waited = 0.0
        while pending:
            waiting = time.perf_counter()
            chunk: Chunk = await asyncio.to_thread(pending.popleft().get)
            waited += time.perf_counter() - waiting
            submit()
            await _load_chunk(connection, chunk, steps)
            generate_s += chunk.generate_s
            counts["contacts"] += len(chunk.contacts)
            counts["emails"] += len(chunk.emails)
            counts["phones"] += len(chunk.phones)
            counts["external_ids"] += len(chunk.external_ids)
            elapsed = time.perf_counter() - began
            done = counts["contacts"]
            rate = done / elapsed
            eta = (total - done) / rate if rate else 0.0
            print(
                f"  {done:>10,} / {total:,} contacts  {rate:>8,.0f} contacts/s  "
                f"elapsed {elapsed:6.1f} s  eta {eta:5.0f} s",
                file=sys.stderr,
                flush=True,
            )
        load_s = time.perf_counter() - began

        print("VACUUM (ANALYZE) ...", file=sys.stderr, flush=True)
        began = time.perf_counter()
        for table in ("contacts", "contact_emails", "contact_phones", "contact_external_ids"):
            await connection.execute(f"VACUUM (ANALYZE) {table}")
        vacuum_s = time.perf_counter() - began
        after = await connection.fetchval(
            "SELECT count(*) FROM contacts WHERE workspace_id = $1", workspace_id
        )
        sizes = await connection.fetch(
            """
            SELECT c.relname AS name, pg_total_relation_size(c.oid) AS total,
                   pg_relation_size(c.oid) AS heap
            FROM pg_class c
            WHERE c.relname IN ('contacts', 'contact_emails', 'contact_phones',
                                'contact_external_ids', 'ix_contacts_search',
                                'ix_contacts_name_sort', 'ix_contacts_tags')
            ORDER BY c.relname
            """
        )
    finally:
        await connection.close()
    rows = sum(counts.values())
    return {
        "workspace_id": workspace_id,
        "contacts_before": before,
        "contacts_after": after,
        "rows": counts,
        "load_s": load_s,
        "contacts_per_s": counts["contacts"] / load_s if load_s else None,
        "rows_per_s": rows / load_s if load_s else None,
        "generate_cpu_s": generate_s,
        "main_waited_for_generation_s": waited,
        "load_steps_s": steps,
        "vacuum_analyze_s": vacuum_s,
        "sizes_bytes": {row["name"]: row["total"] for row in sizes},
    }


def _read_seed_file(data_dir: Path) -> dict[str, Any]:
    path = data_dir / SEED_FILE
    if path.exists():
        loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return loaded
    return {}


def seed(
    data_dir: Path,
    *,
    contacts: int,
    workspace_id: str | None = None,
    chunk_size: int = 20_000,
    workers: int | None = None,
    seed_value: int = 42,
    keep_running: bool = False,
) -> dict[str, Any]:
    """Seed ``data_dir``'s embedded database; the summary is also written to bench-seed.json."""
    data_dir = data_dir.expanduser().resolve()
    server = EmbeddedPostgres(data_dir)
    server.ensure_running()
    started_here = server.started_here
    try:
        info = _read_seed_file(data_dir)
        began = time.perf_counter()
        if workspace_id is None:
            print("creating a workspace with crm workspace create ...", file=sys.stderr)
            created = create_workspace(data_dir, "Search bench")
            workspace_id = str(created["workspace_id"])
            info = {"workspace_id": workspace_id, "api_key": created["api_key"]}
        elif info.get("workspace_id") != workspace_id:
            info = {"workspace_id": workspace_id}
        workspace_s = time.perf_counter() - began
        workers = workers or max(1, (os.cpu_count() or 2) - 1)
        dsn = plain_dsn(server.superuser_dsn())
        first = int(info.get("contacts_seeded", 0))
        specs = chunk_specs(
            contacts=contacts,
            chunk_size=chunk_size,
            first=first,
            seed=seed_value + first,
            workspace_id=workspace_id,
            now=time.time(),
        )
        print(
            f"seeding {contacts:,} contacts into workspace {workspace_id} "
            f"({len(specs)} chunks of {chunk_size:,}, {workers} generator process(es)) ...",
            file=sys.stderr,
            flush=True,
        )
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            summary = asyncio.run(load(dsn, workspace_id, specs, pool, prefetch=workers + 1))
        summary.update(
            {
                "workspace_create_s": workspace_s,
                "chunk_size": chunk_size,
                "generator_processes": workers,
                "seed": seed_value,
                "seeded_at": datetime.now(UTC).isoformat(timespec="seconds"),
            }
        )
        info["contacts_seeded"] = first + contacts
        info.setdefault("seedings", []).append(summary)
        (data_dir / SEED_FILE).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
        return summary
    finally:
        if started_here and not keep_running:
            with contextlib.suppress(Exception):
                server.stop(only_if_unserved=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.seed",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--contacts", type=int, required=True)
    parser.add_argument("--data-dir", type=Path, required=True, help="embedded data directory")
    parser.add_argument("--workspace", help="seed this existing workspace instead of a new one")
    parser.add_argument("--chunk-size", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=None, help="generator processes")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--keep-running", action="store_true", help="leave the embedded PostgreSQL running"
    )
    args = parser.parse_args(argv)
    if args.contacts < 1 or args.chunk_size < 1:
        parser.error("--contacts and --chunk-size must be at least 1")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    try:
        summary = seed(
            args.data_dir,
            contacts=args.contacts,
            workspace_id=args.workspace,
            chunk_size=args.chunk_size,
            workers=args.workers,
            seed_value=args.seed,
            keep_running=args.keep_running,
        )
    except SeedError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
    rows = summary["rows"]
    print(
        f"loaded {rows['contacts']:,} contacts, {rows['emails']:,} e-mails, "
        f"{rows['phones']:,} phones, {rows['external_ids']:,} external ids in "
        f"{summary['load_s']:.1f} s: {summary['contacts_per_s']:,.0f} contacts/s, "
        f"{summary['rows_per_s']:,.0f} rows/s; VACUUM ANALYZE {summary['vacuum_analyze_s']:.1f} s"
    )
    print(f"workspace {summary['workspace_id']}; details in {args.data_dir / SEED_FILE}")


if __name__ == "__main__":
    main()
