"""Why contact search is slow: the service's search statement against controlled variants.

    .venv/bin/python -m bench.search_diagnose --data-dir <dir>

Run on a data directory seeded by ``bench.seed`` while no ``crm serve`` uses it (some variants
take locks). Every variant runs inside a transaction that is rolled back, so the database is
left as it was; nothing in app/ is touched. The query key and LIKE patterns come from the
service's own ``ContactService._search_terms``; each variant is timed with
``EXPLAIN (ANALYZE, BUFFERS)``, run twice, the second (warm) run kept. "App role" means
``SET LOCAL ROLE crm_app`` plus ``set_config('app.workspace_id', ...)``: RLS applies.

- ``service``: the statement the service issues now (captured through SQLAlchemy's cursor
  events from ``ContactRepository.search``), as the app role;
- ``inline_rls``: the search written inline (``WHERE search_text LIKE ...
  ORDER BY word_similarity ... LIMIT 21``, the service's statement up to a0f6639), app role;
- ``inline_rls_leakproof``: the same after ``ALTER FUNCTION textlike LEAKPROOF``;
- ``owner_ranked``: the inline statement as the owner (RLS bypassed): also what a SECURITY
  DEFINER function costs when it ranks and limits inside instead of returning every match;
- ``owner_unranked``: the owner, ``LIMIT 21`` without ``ORDER BY`` (what ranking costs);
- ``owner_count``: how many rows match (what a function returning every match returns);
- ``owner_rank_first_1000``: ranking only the first 1,000 index candidates;
- ``owner_trgm_only_index``: ``owner_ranked`` with a GIN index on ``search_text`` alone
  instead of ``(workspace_id, search_text)`` (what the workspace_id column costs);
- ``owner_word_prefix``: two-letter words matched as word prefixes (``~ '(^| )an'``, which
  pg_trgm can index) instead of ``LIKE '%an%'`` (which it cannot), ranked;
- ``owner_phone_exact``: a whole phone number looked up in ``contact_phones`` by its E.164
  form (btree) instead of trigram ``LIKE`` over digits.

Writes ``<out>/search-diagnose-<ts>.md`` and ``.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg

from app.db.embedded import EmbeddedPostgres
from bench.foundation import plain_dsn
from bench.search import build_mix

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SEED_FILE = "bench-seed.json"
LIMIT = 20
QUERIES = ("สมชาย", "nguyen van", "nguyen", "an", "สม", "@example.vn", "zqxwv")
SCORE = "round(word_similarity($1, c.search_text)::numeric(10,6), 4)"
VARIANT_ORDER = (
    "service",
    "inline_rls",
    "inline_rls_leakproof",
    "owner_ranked",
    "owner_unranked",
    "owner_count",
    "owner_rank_first_1000",
    "owner_trgm_only_index",
    "owner_word_prefix",
    "owner_phone_exact",
)


def _read_seed(data_dir: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((data_dir / SEED_FILE).read_text(encoding="utf-8"))
    return loaded


async def service_terms(
    data_dir: Path, workspace_id: str, q: str
) -> tuple[str, tuple[Any, ...], str, list[list[str]]]:
    """The service's search statement for ``q`` with its parameters, and its query key and
    pattern groups."""
    from sqlalchemy import event

    from app.config import Settings
    from app.contact.repository import ContactFilters, ContactRepository
    from app.contact.service import ContactService
    from app.db.session import Database, bind_workspace

    settings = Settings()
    database = Database.connect(EmbeddedPostgres(data_dir).app_dsn(settings.app_role), settings)
    captured: list[tuple[str, tuple[Any, ...]]] = []

    def capture(_c: Any, _cur: Any, statement: str, params: Any, _x: Any, _m: bool) -> None:
        captured.append((statement, tuple(params or ())))

    event.listen(database.engine.sync_engine, "before_cursor_execute", capture)
    ws = uuid.UUID(workspace_id)
    try:
        async with database.sessionmaker() as session, session.begin():
            await bind_workspace(session, ws)
            key, patterns = await ContactService()._search_terms(session, q, "TH")
            filters = ContactFilters(search_patterns=patterns)
            await ContactRepository(session).search(ws, filters, key, limit=LIMIT, after=None)
    finally:
        await database.dispose()
    sql, params = next(
        item
        for item in captured
        if "word_similarity(" in item[0] or "crm_search_contacts(" in item[0]
    )
    return sql, params, key, [list(group) for group in patterns]


def _where(
    groups: Sequence[Sequence[str]], first: int, workspace: int = 2
) -> tuple[str, list[str]]:
    """``c.workspace_id = $2 AND ... AND (c.search_text LIKE $n OR ...)`` and its values,
    patterns numbered from ``first``."""
    conditions = [f"c.workspace_id = ${workspace}", "c.merged_into_id IS NULL"]
    values: list[str] = []
    for group in groups:
        alternatives = []
        for pattern in group:
            values.append(pattern)
            alternatives.append(f"c.search_text LIKE ${first + len(values) - 1}")
        conditions.append("(" + " OR ".join(alternatives) + ")")
    return " AND ".join(conditions), values


async def _explain(connection: asyncpg.Connection, sql: str, params: Sequence[Any]) -> str:
    statement = "EXPLAIN (ANALYZE, BUFFERS) " + sql
    await connection.fetch(statement, *params)  # warm-up: the second run is kept
    rows = await connection.fetch(statement, *params)
    return "\n".join(row[0] for row in rows)


def execution_ms(plan: str) -> float | None:
    found = re.search(r"Execution Time: ([\d.]+) ms", plan)
    return float(found.group(1)) if found else None


def access_path(plan: str) -> str:
    paths = []
    for line in plan.splitlines():
        text = line.strip().removeprefix("->").strip()
        if "Scan" in text and " on " in text:
            paths.append(text.split("  (")[0])
    return "; ".join(dict.fromkeys(paths))


async def diagnose_query(
    connection: asyncpg.Connection,
    data_dir: Path,
    workspace_id: str,
    q: str,
    trgm_only_index: bool,
) -> dict[str, Any]:
    from app.kit.contact_points import normalize_phone

    service_sql, service_params, key, groups = await service_terms(data_dir, workspace_id, q)
    ws = uuid.UUID(workspace_id)
    where, values = _where(groups, 3)
    params: list[Any] = [key, ws, *values]
    ranked = (
        f"SELECT c.*, {SCORE} AS score FROM contacts c WHERE {where} "
        "ORDER BY score DESC, c.id DESC LIMIT 21"
    )
    variants: dict[str, str] = {}

    async def run(
        name: str, setup: Sequence[str], sql: str, values: Sequence[Any], *, app: bool = False
    ) -> None:
        transaction = connection.transaction()
        await transaction.start()
        try:
            for command in setup:
                await connection.execute(command)
            if app:
                await connection.execute("SET LOCAL ROLE crm_app")
            # The SECURITY DEFINER functions (from 3182eb5) read the workspace from here.
            await connection.execute(
                "SELECT set_config('app.workspace_id', $1, true)", workspace_id
            )
            variants[name] = await _explain(connection, sql, values)
        finally:
            await transaction.rollback()

    await run("service", [], service_sql, service_params, app=True)
    await run("inline_rls", [], ranked, params, app=True)
    leakproof = "ALTER FUNCTION pg_catalog.textlike(text, text) LEAKPROOF"
    await run("inline_rls_leakproof", [leakproof], ranked, params, app=True)
    await run("owner_ranked", [], ranked, params)
    # Without the key (no score): the workspace is $1, the patterns follow.
    count_where, _ = _where(groups, 2, workspace=1)
    unranked = f"SELECT c.id FROM contacts c WHERE {count_where} LIMIT 21"
    await run("owner_unranked", [], unranked, [ws, *values])
    count_sql = f"SELECT count(*) FROM contacts c WHERE {count_where}"
    await run("owner_count", [], count_sql, [ws, *values])
    matches = await connection.fetchval(count_sql, ws, *values)
    capped = (
        f"SELECT id, {SCORE.replace('c.', 'candidates.')} AS score FROM ("
        f"SELECT c.id, c.search_text FROM contacts c WHERE {where} LIMIT 1000) AS candidates "
        "ORDER BY score DESC, id DESC LIMIT 21"
    )
    await run("owner_rank_first_1000", [], capped, params)
    if trgm_only_index:
        index = [
            "CREATE INDEX bench_trgm_only ON contacts USING gin (search_text gin_trgm_ops)",
            "DROP INDEX ix_contacts_search",
        ]
        await run("owner_trgm_only_index", index, ranked, params)
    short = [
        group[0].strip("%") for group in groups if len(group) == 1 and len(group[0].strip("%")) == 2
    ]
    if short:
        prefix_groups = [g for g in groups if not (len(g) == 1 and g[0].strip("%") in short)]
        prefix_where, prefix_values = _where(prefix_groups, 3)
        for word in short:
            prefix_where += f" AND c.search_text ~ '(^| ){re.escape(word)}'"
        prefix_sql = (
            f"SELECT c.*, {SCORE} AS score FROM contacts c WHERE {prefix_where} "
            "ORDER BY score DESC, c.id DESC LIMIT 21"
        )
        await run("owner_word_prefix", [], prefix_sql, [key, ws, *prefix_values])
    try:
        e164 = normalize_phone(q, "TH") if re.fullmatch(r"[\d\s().+\-]{6,}", q) else None
    except ValueError:
        e164 = None
    if e164:
        phone_sql = (
            "SELECT c.*, 1.0 AS score FROM contact_phones p JOIN contacts c "
            "ON c.workspace_id = p.workspace_id AND c.id = p.contact_id "
            "WHERE p.workspace_id = $1 AND p.number = $2 AND c.merged_into_id IS NULL "
            "ORDER BY c.id DESC LIMIT 21"
        )
        await run("owner_phone_exact", [], phone_sql, [ws, e164])
    return {
        "q": q,
        "query_key": key,
        "patterns": groups,
        "matches": matches,
        "service_sql": service_sql,
        "inline_sql": ranked,
        "variants": {
            name: {"ms": execution_ms(plan), "path": access_path(plan), "plan": plan}
            for name, plan in variants.items()
        },
    }


async def diagnose(data_dir: Path, queries: Sequence[str], trgm_only: bool) -> dict[str, Any]:
    info = _read_seed(data_dir)
    workspace_id = str(info["workspace_id"])
    server = EmbeddedPostgres(data_dir)
    connection = await asyncpg.connect(plain_dsn(server.superuser_dsn()))
    try:
        mix = await build_mix(connection, workspace_id)
        phone = next(item.q for item in mix if item.klass == "phone_full_local")
        results = []
        for q in [*queries, phone]:
            print(f"  {q} ...", file=sys.stderr, flush=True)
            began = time.perf_counter()
            # The trigram-only index takes a minute to build: only for two queries.
            trgm = trgm_only and q in ("สมชาย", "nguyen van")
            result = await diagnose_query(connection, data_dir, workspace_id, q, trgm)
            result["seconds"] = time.perf_counter() - began
            results.append(result)
        facts = {
            "contacts": await connection.fetchval(
                "SELECT count(*) FROM contacts WHERE workspace_id = $1", workspace_id
            ),
            "textlike_leakproof": await connection.fetchval(
                "SELECT proleakproof FROM pg_proc "
                "WHERE oid = 'pg_catalog.textlike(text, text)'::regprocedure"
            ),
            "avg_search_text_chars": await connection.fetchval(
                "SELECT avg(length(search_text))::int FROM contacts WHERE workspace_id = $1",
                workspace_id,
            ),
            "schema_revision": await connection.fetchval("SELECT version_num FROM alembic_version"),
        }
    finally:
        await connection.close()
    return {"facts": facts, "queries": results}


def render(report: dict[str, Any]) -> str:
    facts = report["facts"]
    out = [f"# Contact search diagnosis, {report['timestamp']}", ""]
    out.append(
        f"{facts['contacts']:,} contacts; average search_text {facts['avg_search_text_chars']} "
        f"characters; schema {facts['schema_revision']}, code {report.get('commit', '?')[:12]}; "
        f"textlike LEAKPROOF in the catalogue: {facts['textlike_leakproof']} (every variant "
        "ran in a rolled-back transaction). Execution time of the statement, ms, second of "
        "two runs (see the module docstring for the variants):"
    )
    out.append("")
    out.append("| q | matches | " + " | ".join(VARIANT_ORDER) + " |")
    out.append("|---|---:|" + "---:|" * len(VARIANT_ORDER))
    for item in report["queries"]:
        cells = []
        for name in VARIANT_ORDER:
            variant = item["variants"].get(name)
            cells.append("" if variant is None else f"{variant['ms']:,.1f}")
        out.append(f"| `{item['q']}` | {item['matches']:,} | " + " | ".join(cells) + " |")
    out.append("")
    out.append("Access paths:")
    out.append("")
    for item in report["queries"]:
        out.append(f"- `{item['q']}`:")
        for name, variant in item["variants"].items():
            out.append(f"  - {name}: {variant['path']}")
    out.append("")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.search_diagnose", description=__doc__)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "bench" / "results")
    parser.add_argument("--no-trgm-only-index", action="store_true")
    args = parser.parse_args(argv)
    data_dir = args.data_dir.expanduser().resolve()
    server = EmbeddedPostgres(data_dir)
    server.ensure_running()
    try:
        report = asyncio.run(diagnose(data_dir, QUERIES, not args.no_trgm_only_index))
    finally:
        if server.started_here:
            server.stop(only_if_unserved=True)
    report["timestamp"] = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    report["commit"] = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True, check=False
    ).stdout.strip()
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"search-diagnose-{report['timestamp']}"
    markdown = render(report)
    stem.with_suffix(".json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    stem.with_suffix(".md").write_text(markdown)
    print(markdown)
    print(f"wrote {stem}.json and .md", file=sys.stderr)


if __name__ == "__main__":
    main()
