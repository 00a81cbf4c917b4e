"""Contact search on a large workspace: latency per query class, throughput, and query plans.

    .venv/bin/python -m bench.search --contacts 1000000                 # seed a temp dir, delete
    .venv/bin/python -m bench.search --contacts 1000000 --data-dir <dir>   # seed and keep
    .venv/bin/python -m bench.search --data-dir <dir>             # reuse a seeded dir

In one run:

1. (with ``--contacts``) the data directory is seeded up to that many contacts by
   ``bench.seed`` (COPY; timed, rows/s in the report);
2. ``crm serve`` (one worker) starts on it, and the Starlette + asyncpg primary-key read of
   ``bench.baselines`` in a process of its own, on the same PostgreSQL;
3. a fixed query mix (``QUERY_MIX`` plus phone numbers and e-mails picked deterministically
   from the data) goes through ``GET /v1/contacts?q=...&limit=20`` with the admin key: one
   unrecorded pass (its latencies are kept as "first pass"), then ``--repeats`` passes at
   concurrency 1 (latency), then a closed loop of ``--connections`` (default 8) connections
   cycling through the mix (throughput); the baseline is loaded the same way just before each;
4. ``pg_stat_statements`` over the concurrent window: server time per statement;
5. the exact SQL the service issues for each query is captured (SQLAlchemy's cursor events,
   running the service's own ``ContactService.find``) and run under
   ``EXPLAIN (ANALYZE, BUFFERS)`` as the app role with ``app.workspace_id`` set through
   ``set_config`` (row-level security applies, as in the service); for three representative
   queries also the generic plan (what a prepared statement may switch to) and the plan as
   the owner (no RLS);
6. ``<out>/search-<ts>.md`` and ``.json``.

The service runs from a snapshot of ``--code-ref`` (default HEAD: ``git archive`` of app/ and
migrations/ into the temporary directory), so edits others make to the work tree meanwhile
cannot change what is measured; ``--code worktree`` measures the work tree instead. The data
directory must have been seeded by the same code (its migrations).

Everything started is stopped (``crm serve`` with SIGINT, the embedded PostgreSQL with
``EmbeddedPostgres.stop``), and the temporary directory removed, on success, failure and
Ctrl-C. A ``--data-dir`` is kept; without it the seeded data lives in the temporary directory
and goes with it unless ``--keep-data`` (then its path is printed).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import quote

import asyncpg
import psutil

from app.db.embedded import EmbeddedPostgres
from bench import loadgen
from bench.baselines import APPS
from bench.foundation import (
    BenchError,
    CpuSampler,
    Processes,
    Server,
    crm_command,
    crm_environment,
    plain_dsn,
    wait_until_ok,
)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SEED_FILE = "bench-seed.json"
_CHILD = "BENCH_SEARCH_CHILD"
_TEMP = "BENCH_SEARCH_TEMP"
_CALLER_CWD = "BENCH_SEARCH_CWD"
_CODE = "BENCH_SEARCH_CODE"
BUDGET_MS = 50.0
LIMIT = 20

# (class, query): fixed; the phone and e-mail classes get values from the data as well.
QUERY_MIX: tuple[tuple[str, str], ...] = (
    ("vi_accent_free", "nguyen van"),
    ("vi_accent_free", "tran thi"),
    ("vi_accent_free", "le hoang"),
    ("vi_accent_free", "pham minh tuan"),
    ("vi_accent_free", "nguyen thi thu"),
    ("vi_accent_free", "vu duc anh"),
    ("vi_accent_free", "dang ngoc"),
    ("vi_accent_free", "bui quang huy"),
    ("th_given", "สมชาย"),
    ("th_given", "ณัฐพล"),
    ("th_given", "กิตติศักดิ์"),
    ("th_given", "ศุภนันท์"),
    ("th_family_fragment", "แก้ว"),
    ("th_family_fragment", "วงศ์"),
    ("th_family_fragment", "สวัสดิ์"),
    ("th_family_fragment", "เพชรมณี"),
    ("email_fragment", "somchai."),
    ("email_fragment", "nguyen.an"),
    ("email_fragment", "kaeomani"),
    ("email_fragment", "@example.vn"),
    ("rare_name", "khổng"),
    ("rare_name", "Whitaker"),
    ("rare_name", "Lindqvist"),
    ("rare_name", "nhan thi"),
    ("common_name", "nguyen"),
    ("common_name", "thi"),
    ("common_name", "an"),
    ("common_name", "สม"),
    ("no_match", "zqxwv"),
)
# Shown in full in the report, EXPLAINed with generic plans and as the owner too.
REPRESENTATIVE = ("nguyen van", "สมชาย")  # and the first full phone number


class _Interrupted(KeyboardInterrupt):
    pass


def _interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise _Interrupted


def _ignore_signals() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


# -- the parent: a code snapshot and a child process -------------------------------------------


def _git(*arguments: str) -> str:
    return subprocess.run(
        ["git", *arguments], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()


def _snapshot(ref: str, target: Path) -> dict[str, Any]:
    """app/ and migrations/ of ``ref``, extracted into ``target``."""
    commit = _git("rev-parse", "--verify", f"{ref}^{{commit}}")
    target.mkdir(parents=True)
    archive = subprocess.run(
        ["git", "archive", "--format=tar", commit, "app", "migrations"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        check=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    return {"kind": "snapshot", "ref": ref, "commit": commit, "dirty": False}


def _stop_embedded(data_dir: Path) -> None:
    if not (data_dir / "pg" / "PG_VERSION").exists():
        return
    try:
        # Not while another crm serve uses it (a second run on the same data directory must
        # not pull the database from under the first).
        EmbeddedPostgres(data_dir).stop(only_if_unserved=True)
    except Exception as exc:  # clean-up goes on
        print(f"warning: could not stop the embedded PostgreSQL: {exc}", file=sys.stderr)


def parent_main(
    args: argparse.Namespace,
    argv: list[str],
    *,
    module: str = "bench.search",
    data_file: str = SEED_FILE,
) -> int:
    """Run ``module`` again as a child on the chosen code, and clean up after it.

    The temporary data directory is kept (with ``--keep-data``) only if it holds
    ``data_file``, i.e. the child got as far as building its data.
    """
    name = module.rsplit(".", 1)[-1]
    temp = Path(tempfile.mkdtemp(prefix=f"crm-{name}-", dir="/tmp"))
    keep_temp_data = args.keep_data and args.data_dir is None
    status = 1
    try:
        if args.code == "worktree":
            code_dir = PROJECT_ROOT
            dirty = bool(_git("status", "--porcelain", "--", "app", "migrations"))
            code = {"kind": "worktree", "commit": _git("rev-parse", "HEAD"), "dirty": dirty}
        else:
            code_dir = temp / "code"
            code = _snapshot(args.code_ref, code_dir)
        env = dict(os.environ)
        env.update(
            {
                _CHILD: "1",
                _TEMP: str(temp),
                _CALLER_CWD: os.getcwd(),
                _CODE: json.dumps(code),
                # The snapshot's app package first; bench/ from the project.
                "PYTHONPATH": os.pathsep.join(dict.fromkeys([str(code_dir), str(PROJECT_ROOT)])),
            }
        )
        # With -m, the working directory leads sys.path: the snapshot's app is imported.
        child = subprocess.Popen(
            [sys.executable, "-m", module, *argv, "--timestamp", args.timestamp],
            cwd=code_dir,
            env=env,
        )
        try:
            status = child.wait()
        except KeyboardInterrupt:
            # The child got the same Ctrl-C and cleans up; wait for it.
            _ignore_signals()
            child.send_signal(signal.SIGINT)
            status = child.wait()
    finally:
        _ignore_signals()
        data_dir = temp / "data"
        if keep_temp_data and (data_dir / data_file).exists():
            kept = Path(tempfile.mkdtemp(prefix=f"crm-{name}-data-", dir="/tmp"))
            _stop_embedded(data_dir)
            kept.rmdir()
            shutil.move(str(data_dir), kept)
            print(f"data kept in {kept} (run again with --data-dir {kept})", file=sys.stderr)
        else:
            _stop_embedded(data_dir)
            socket_dir = EmbeddedPostgres(data_dir).layout.socket_dir
            if not socket_dir.is_relative_to(temp):
                shutil.rmtree(socket_dir, ignore_errors=True)
        shutil.rmtree(temp, ignore_errors=True)
    return status


# -- queries -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Query:
    klass: str
    q: str

    @property
    def path(self) -> str:
        return f"/v1/contacts?q={quote(self.q, safe='')}&limit={LIMIT}"


def _local_format(e164: str) -> str:
    """+66812345678 -> 081-234-5678; +84912345678 -> 0912 345 678 (as people type them)."""
    national = "0" + e164[3:]
    if e164.startswith("+66") and len(national) == 10:
        return f"{national[:3]}-{national[3:6]}-{national[6:]}"
    if e164.startswith("+84") and len(national) == 10:
        return f"{national[:4]} {national[4:7]} {national[7:]}"
    return national


async def build_mix(connection: asyncpg.Connection, workspace_id: str) -> list[Query]:
    """The fixed mix plus phones and e-mails of contacts at fixed positions in the data."""
    queries = [Query(klass, q) for klass, q in QUERY_MIX]

    async def pick(sql: str, *args: Any) -> list[str]:
        return [row[0] for row in await connection.fetch(sql, workspace_id, *args)]

    th = await pick(
        "SELECT number FROM contact_phones WHERE workspace_id = $1 AND number LIKE '+668%' "
        "ORDER BY number OFFSET (SELECT count(*) / 3 FROM contact_phones "
        "WHERE workspace_id = $1 AND number LIKE '+668%') LIMIT 2"
    )
    vn = await pick(
        "SELECT number FROM contact_phones WHERE workspace_id = $1 AND number LIKE '+849%' "
        "ORDER BY number OFFSET (SELECT count(*) / 2 FROM contact_phones "
        "WHERE workspace_id = $1 AND number LIKE '+849%') LIMIT 2"
    )
    mobiles = [n for pair in zip(th, vn, strict=False) for n in pair]
    queries += [Query("phone_full_local", _local_format(number)) for number in mobiles]
    others = await pick(
        "SELECT number FROM contact_phones WHERE workspace_id = $1 AND number LIKE '+66%' "
        "ORDER BY number OFFSET (SELECT count(*) * 2 / 3 FROM contact_phones "
        "WHERE workspace_id = $1 AND number LIKE '+66%') LIMIT 2"
    )
    queries += [Query("phone_last7", number[-7:]) for number in [*others, *vn[:1], *th[:1]]]
    emails = await pick(
        "SELECT email FROM contact_emails WHERE workspace_id = $1 "
        "ORDER BY email OFFSET (SELECT count(*) / 2 FROM contact_emails "
        "WHERE workspace_id = $1) LIMIT 1"
    )
    queries += [Query("email_full", email) for email in emails]
    return queries


# -- HTTP measurement ------------------------------------------------------------------------


@dataclass
class Sample:
    klass: str
    q: str
    ms: float
    status: int
    results: int | None = None


class Client:
    """One keep-alive HTTP/1.1 connection, used sequentially (concurrency 1)."""

    def __init__(self, port: int, headers: Mapping[str, str]) -> None:
        self.port = port
        self.headers = dict(headers)
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

    def get(self, path: str) -> tuple[float, int, bytes]:
        for attempt in range(2):
            try:
                started = time.perf_counter()
                self.connection.request("GET", path, headers=self.headers)
                response = self.connection.getresponse()
                body = response.read()
                return (time.perf_counter() - started) * 1000, response.status, body
            except (OSError, http.client.HTTPException):
                self.connection.close()
                self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        self.connection.close()


def sequential_pass(client: Client, queries: Sequence[Query], *, count: bool) -> list[Sample]:
    samples = []
    for query in queries:
        ms, status, body = client.get(query.path)
        results = len(json.loads(body)["data"]) if count and status == 200 else None
        samples.append(Sample(query.klass, query.q, ms, status, results))
    return samples


def stats(values_ms: Sequence[float]) -> dict[str, Any]:
    ordered = sorted(values_ms)
    return {
        "n": len(ordered),
        "p50_ms": loadgen.percentile(ordered, 0.50),
        "p95_ms": loadgen.percentile(ordered, 0.95),
        "p99_ms": loadgen.percentile(ordered, 0.99),
        "max_ms": ordered[-1] if ordered else 0.0,
        "mean_ms": sum(ordered) / len(ordered) if ordered else 0.0,
    }


def by_class(samples: Sequence[Sample]) -> dict[str, dict[str, Any]]:
    classes: dict[str, list[float]] = {}
    for sample in samples:
        classes.setdefault(sample.klass, []).append(sample.ms)
    table = {klass: stats(values) for klass, values in classes.items()}
    table["overall"] = stats([sample.ms for sample in samples])
    return table


def by_query(samples: Sequence[Sample]) -> list[dict[str, Any]]:
    queries: dict[tuple[str, str], list[float]] = {}
    for sample in samples:
        queries.setdefault((sample.klass, sample.q), []).append(sample.ms)
    return [{"class": klass, "q": q, **stats(values)} for (klass, q), values in queries.items()]


async def _mixed_connection(
    targets: Sequence[tuple[Query, loadgen.Target]],
    offset: int,
    window: tuple[float, float],
    samples: list[Sample],
    errors: list[float],
) -> None:
    """loadgen's closed loop, cycling through the mix and recording each query's class."""
    clock = time.perf_counter
    window_start, stop_at = window
    index = offset
    reader: asyncio.StreamReader | None = None
    writer: asyncio.StreamWriter | None = None
    try:
        while clock() < stop_at:
            query, target = targets[index % len(targets)]
            index += 1
            if writer is None or reader is None:
                try:
                    reader, writer = await asyncio.open_connection(target.host, target.port)
                except OSError:
                    errors.append(clock())
                    await asyncio.sleep(0.05)
                    continue
            started = clock()
            try:
                writer.write(target.request)
                head = await reader.readuntil(b"\r\n\r\n")
                status, length, chunked, closes = loadgen._parse_head(head)
                if chunked:
                    await loadgen._read_chunked(reader)
                elif length:
                    await reader.readexactly(length)
            except (OSError, EOFError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                    ValueError):  # fmt: skip
                errors.append(clock())
                writer.close()
                reader = writer = None
                continue
            finished = clock()
            if window_start <= finished < stop_at:
                samples.append(Sample(query.klass, query.q, (finished - started) * 1000, status))
            if closes:
                writer.close()
                reader = writer = None
    finally:
        if writer is not None:
            writer.close()


async def mixed_load(
    port: int,
    headers: Mapping[str, str],
    queries: Sequence[Query],
    *,
    connections: int,
    warmup: float,
    duration: float,
    on_window_start: Callable[[], None],
    on_window_end: Callable[[], None],
) -> tuple[list[Sample], int, float]:
    targets = [
        (query, loadgen.build_target(f"http://127.0.0.1:{port}{query.path}", headers=headers))
        for query in queries
    ]
    loop = asyncio.get_running_loop()
    begin = time.perf_counter()
    window = (begin + warmup, begin + warmup + duration)
    samples: list[Sample] = []
    errors: list[float] = []
    cpu: dict[str, float] = {}
    closed = asyncio.Event()

    def opens() -> None:
        cpu["start"] = time.process_time()
        on_window_start()

    def closes() -> None:
        cpu["end"] = time.process_time()
        on_window_end()
        closed.set()

    loop.call_later(warmup, opens)
    loop.call_later(warmup + duration, closes)
    # Connections start at evenly spaced points of the mix, so all of it runs at once.
    tasks = [
        asyncio.create_task(
            _mixed_connection(targets, i * len(targets) // connections, window, samples, errors)
        )
        for i in range(connections)
    ]
    _done, pending = await asyncio.wait(tasks, timeout=warmup + duration + 120)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    await closed.wait()
    in_window = sum(1 for when in errors if window[0] <= when < window[1])
    return samples, in_window, (cpu["end"] - cpu["start"]) / duration


def load_list(
    server: Server, auth: Mapping[str, str], connections: int, duration: float, warmup: float
) -> Any:
    target = loadgen.build_target(server.url(f"/v1/contacts?limit={LIMIT}"), headers=auth)
    result = loadgen.run_load_sync(
        target, connections=connections, duration=duration, warmup=warmup
    )
    return result.as_dict()


def load_baseline(server: Server, connections: int, duration: float, warmup: float) -> Any:
    target = loadgen.build_target(server.url("/"))
    result = loadgen.run_load_sync(
        target, connections=connections, duration=duration, warmup=warmup
    )
    return result.as_dict()


# -- EXPLAIN ---------------------------------------------------------------------------------


async def explain_queries(
    data_dir: Path,
    workspace_id: str,
    queries: Sequence[Query],
    representative: set[str],
) -> list[dict[str, Any]]:
    """The service's statements for each query, captured and EXPLAINed as the app role.

    The statements are captured from the service's own ``ContactService.find`` on an app-role
    connection. They are EXPLAINed on a superuser connection that switches to the app role
    (``SET LOCAL ROLE``) and binds the workspace with ``set_config``, so row-level security
    applies as in the service, and with ``auto_explain`` reporting the plans of nested
    statements (a search run inside a SQL function) as notices.
    """
    from sqlalchemy import event

    from app.auth.dependencies import AuthContext
    from app.config import Settings
    from app.contact.service import ContactQuery
    from app.contact.service import contact as contact_service
    from app.db.session import Database, bind_workspace

    settings = Settings()
    server = EmbeddedPostgres(data_dir)
    database = Database.connect(server.app_dsn(settings.app_role), settings)
    explainer = await asyncpg.connect(plain_dsn(server.superuser_dsn()))
    notices: list[str] = []
    explainer.add_log_listener(lambda _conn, message: notices.append(str(message.message)))
    nested = await _enable_auto_explain(explainer)
    captured: list[tuple[str, Sequence[Any]]] = []

    def capture(
        _conn: Any, _cursor: Any, statement: str, parameters: Any, _ctx: Any, _many: bool
    ) -> None:
        captured.append((statement, tuple(parameters or ())))

    event.listen(database.engine.sync_engine, "before_cursor_execute", capture)
    ws = uuid.UUID(workspace_id)
    auth = AuthContext(workspace_id=ws, api_key_id=uuid.uuid4(), scopes=frozenset({"admin"}))
    role = settings.app_role

    async def explain(
        sql: str,
        params: Sequence[Any],
        *,
        as_app: bool = True,
        prelude: Sequence[tuple[str, Sequence[Any]]] = (),
        settings: Sequence[str] = (),
    ) -> dict[str, Any]:
        async with explainer.transaction():
            if as_app:
                await explainer.execute(f'SET LOCAL ROLE "{role}"')
            await explainer.execute("SELECT set_config('app.workspace_id', $1, true)", str(ws))
            # The statements the service ran before this one in its transaction: what they
            # set for the transaction (set_config(..., true)) shapes the plan too.
            for before, before_params in prelude:
                await explainer.fetch(before, *before_params)
            for setting in settings:
                await explainer.execute(setting)
            notices.clear()
            plan = await _explain(explainer, sql, params)
            # Plans of the statements run inside the explained one (not set_config's, nor the
            # EXPLAIN's own).
            inner = [
                n
                for n in notices
                if "Query Text" in n and "search_text" in n and "EXPLAIN (" not in n
            ]
        return {"plan": plan, "nested": inner}

    plans: list[dict[str, Any]] = []
    try:
        for query in queries:
            captured.clear()
            entry: dict[str, Any] = {"class": query.klass, "q": query.q, "nested_plans": nested}
            async with database.sessionmaker() as session, session.begin():
                await bind_workspace(session, ws)
                began = time.perf_counter()
                rows, _ = await contact_service.find(
                    session, auth, ContactQuery(q=query.q), limit=LIMIT, cursor=None, sort=None
                )
                entry["service_find_ms"] = (time.perf_counter() - began) * 1000
                entry["results"] = len(rows)
            statements = list(captured)
            entry["statements"] = [statement for statement, _ in statements]
            # The ranked statement: word_similarity() in it (up to a0f6639), or the call of
            # the SECURITY DEFINER search function (from 3182eb5).
            search = [
                s
                for s in statements
                if "word_similarity(" in s[0] or "crm_search_contacts(" in s[0]
            ]
            if not search:
                plans.append(entry)
                continue
            sql, params = search[0]
            prelude = statements[: statements.index(search[0])]
            entry["search_sql"] = sql
            entry["search_params"] = [str(p) for p in params]
            explained = await explain(sql, params, prelude=prelude)
            entry["plan"] = explained["plan"]
            entry["inner_plans"] = explained["nested"]
            if query.q in representative:
                entry["children"] = [
                    {"sql": s, "plan": (await explain(s, p, prelude=prelude))["plan"]}
                    for s, p in statements
                    if "FROM contact_" in s and "IN ((" in s
                ]
                generic = await explain(
                    sql,
                    params,
                    prelude=prelude,
                    settings=["SET LOCAL plan_cache_mode = force_generic_plan"],
                )
                entry["generic_plan"] = generic["plan"]
                # The owner bypasses row-level security: the plan without the policy.
                owner = await explain(sql, params, as_app=False, prelude=prelude)
                entry["owner_plan"] = owner["plan"]
                entry["owner_inner_plans"] = owner["nested"]
            async with explainer.transaction():
                await explainer.execute("SET LOCAL auto_explain.log_min_duration = -1")
                await explainer.execute(f'SET LOCAL ROLE "{role}"')
                await explainer.execute("SELECT set_config('app.workspace_id', $1, true)", str(ws))
                entry["matches"] = await _count_matches(explainer, sql, params)
            plans.append(entry)
    finally:
        await explainer.close()
        await database.dispose()
    return plans


async def _enable_auto_explain(connection: asyncpg.Connection) -> bool:
    """auto_explain on this (superuser) session, its plans sent to the client as notices."""
    try:
        await connection.execute("LOAD 'auto_explain'")
    except asyncpg.PostgresError:
        return False
    for setting in (
        "auto_explain.log_min_duration = 0",
        "auto_explain.log_analyze = on",
        "auto_explain.log_buffers = on",
        "auto_explain.log_nested_statements = on",
        "auto_explain.log_level = notice",
        "client_min_messages = notice",
    ):
        await connection.execute(f"SET {setting}")
    return True


async def _explain(connection: asyncpg.Connection, sql: str, params: Sequence[Any]) -> str:
    rows = await connection.fetch("EXPLAIN (ANALYZE, BUFFERS, SETTINGS) " + sql, *params)
    return "\n".join(row[0] for row in rows)


async def _count_matches(
    connection: asyncpg.Connection, sql: str, params: Sequence[Any]
) -> int | None:
    """How many contacts match: the statement's candidate selection, counted without its cap.

    The candidates are the ``FROM contacts_searchable ... LIMIT`` part of the statement; its
    parameters are renumbered from $1, as PostgreSQL refuses parameters a statement omits.
    """
    start = sql.find("FROM contacts_searchable")
    end = sql.find(" LIMIT ", start)
    if start < 0 or end < 0:
        return None
    fragment = sql[start:end]
    used = sorted({int(n) for n in re.findall(r"\$(\d+)", fragment)})
    numbers = {old: new for new, old in enumerate(used, 1)}
    fragment = re.sub(r"\$(\d+)", lambda m: f"${numbers[int(m.group(1))]}", fragment)
    try:
        count = await connection.fetchval(
            f"SELECT count(*) {fragment}", *(params[n - 1] for n in used)
        )
    except asyncpg.PostgresError as exc:
        print(f"warning: could not count matches: {exc}", file=sys.stderr)
        return None
    return int(count)


def key_lines(plan: str) -> list[str]:
    """The lines that say how the rows were found, sorted and at what cost."""
    wanted = (
        "Limit", "Sort", "Scan", "Recheck", "Rows Removed", "Filter", "Index Cond",
        "Heap Blocks", "Buffers", "Execution Time", "Planning Time", "JIT", "Functions",
        "Timing", "Workers", "Gather", "One-Time", "Result",
    )  # fmt: skip
    lines = []
    for line in plan.splitlines():
        if any(word in line for word in wanted) and "Settings:" not in line:
            lines.append(line.rstrip())
    return lines


# -- the run ---------------------------------------------------------------------------------


def _resolve(path: Path | None) -> Path | None:
    if path is None:
        return None
    base = Path(os.environ.get(_CALLER_CWD, os.getcwd()))
    return (base / path).expanduser().resolve()


def _read_seed_file(data_dir: Path) -> dict[str, Any]:
    path = data_dir / SEED_FILE
    if not path.exists():
        return {}
    loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return loaded


async def _database_facts(dsn: str, workspace_id: str) -> tuple[dict[str, Any], list[Query]]:
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        await connection.execute("SELECT show_trgm('x')")  # loads pg_trgm and its settings
        facts: dict[str, Any] = {
            "server_version": await connection.fetchval("SHOW server_version"),
            "contacts": await connection.fetchval(
                "SELECT count(*) FROM contacts WHERE workspace_id = $1", workspace_id
            ),
            "contacts_by_locale": {
                row["locale"] or "none": row["n"]
                for row in await connection.fetch(
                    "SELECT locale, count(*) AS n FROM contacts WHERE workspace_id = $1 "
                    "GROUP BY locale ORDER BY 2 DESC",
                    workspace_id,
                )
            },
            "contacts_all_workspaces": await connection.fetchval("SELECT count(*) FROM contacts"),
            "settings": {
                name: await connection.fetchval("SELECT current_setting($1, true)", name)
                for name in (
                    "shared_buffers",
                    "work_mem",
                    "effective_cache_size",
                    "jit",
                    "max_parallel_workers_per_gather",
                    "random_page_cost",
                    "plan_cache_mode",
                    "pg_trgm.word_similarity_threshold",
                )
            },
            "sizes_bytes": {
                row["relname"]: row["size"]
                for row in await connection.fetch(
                    "SELECT relname, pg_relation_size(oid) AS size FROM pg_class "
                    "WHERE relname LIKE 'contact%' OR relname LIKE 'ix_contact%' "
                    "OR relname LIKE 'pk_contact%' ORDER BY relname"
                )
            },
        }
        queries = await build_mix(connection, workspace_id)
    finally:
        await connection.close()
    return facts, queries


async def _reset_statements(dsn: str) -> None:
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute("SELECT pg_stat_statements_reset()")
    finally:
        await connection.close()


async def _top_statements(dsn: str) -> list[dict[str, Any]]:
    connection = await asyncpg.connect(dsn)
    try:
        rows = await connection.fetch(
            """
            SELECT s.calls, s.total_exec_time, s.mean_exec_time, s.max_exec_time, s.rows,
                   s.shared_blks_hit, s.shared_blks_read, s.jit_functions,
                   s.jit_generation_time + s.jit_inlining_time + s.jit_optimization_time
                     + s.jit_emission_time AS jit_ms,
                   r.rolname AS role, left(regexp_replace(s.query, '\\s+', ' ', 'g'), 260) AS query
            FROM pg_stat_statements s JOIN pg_roles r ON r.oid = s.userid
            WHERE s.dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
            ORDER BY s.total_exec_time DESC LIMIT 12
            """
        )
    finally:
        await connection.close()
    return [dict(row) for row in rows]


def _start_service(processes: Processes, data_dir: Path) -> Server:
    env = crm_environment(data_dir)
    env["PYTHONPATH"] = os.environ.get("PYTHONPATH", str(PROJECT_ROOT))
    port = loadgen.free_port()
    server = processes.start("crm", [crm_command(), "serve", "--port", str(port)], env, port)
    wait_until_ok(server, "/readyz")
    return server


def _start_baseline(processes: Processes, dsn: str, workspace_id: str) -> Server:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRM_")}
    env.update({"BENCH_DSN": dsn, "BENCH_ID": workspace_id})
    port = loadgen.free_port()
    command = [sys.executable, "-m", "uvicorn", APPS["starlette_asyncpg"], "--host",
               "127.0.0.1", "--port", str(port), "--workers", "1", "--no-access-log",
               "--log-level", "warning"]  # fmt: skip
    server = processes.start("baseline-starlette", command, env, port)
    wait_until_ok(server, "/", timeout=60)
    return server


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run(args: argparse.Namespace, processes: Processes, temp: Path) -> dict[str, Any]:
    data_dir = _resolve(args.data_dir) or temp / "data"
    if EmbeddedPostgres(data_dir)._someone_serving():
        raise BenchError(f"a crm serve is running on {data_dir}: stop it first")
    seeding: dict[str, Any] | None = None
    info = _read_seed_file(data_dir)
    if args.contacts is not None and int(info.get("contacts_seeded", 0)) < args.contacts:
        from bench.seed import seed

        missing = args.contacts - int(info.get("contacts_seeded", 0))
        _say(f"seeding {missing:,} contacts into {data_dir} ...")
        seeding = seed(
            data_dir,
            contacts=missing,
            workspace_id=info.get("workspace_id"),
            keep_running=True,
            seed_value=args.seed,
        )
        info = _read_seed_file(data_dir)
    if not info.get("api_key"):
        raise BenchError(f"{data_dir} has no {SEED_FILE} with an admin key: seed it first")
    return measure(args, processes, data_dir, info, seeding)


def measure(
    args: argparse.Namespace,
    processes: Processes,
    data_dir: Path,
    info: dict[str, Any],
    seeding: dict[str, Any] | None,
) -> dict[str, Any]:
    workspace_id = str(info["workspace_id"])
    auth = {"Authorization": f"Bearer {info['api_key']}"}
    dsn = plain_dsn(EmbeddedPostgres(data_dir).superuser_dsn())
    pgdata = EmbeddedPostgres(data_dir).layout.pgdata

    _say("starting crm serve (1 worker) ...")
    service = _start_service(processes, data_dir)
    facts, queries = asyncio.run(_database_facts(dsn, workspace_id))
    _say(f"{facts['contacts']:,} contacts in the workspace; {len(queries)} queries in the mix")
    baseline = _start_baseline(processes, dsn, workspace_id)

    client = Client(service.port, auth)
    try:
        _say("first pass (not in the latency table) ...")
        first = sequential_pass(client, queries, count=True)
        bad = [s for s in first if s.status != 200]
        if bad:
            raise BenchError(f"{len(bad)} queries failed, e.g. {bad[0].q!r}: {bad[0].status}")
        _say("concurrency 1: baseline, and the list without q ...")
        base_c1 = load_baseline(baseline, 1, args.baseline_duration, args.warmup)
        list_c1 = load_list(service, auth, 1, args.baseline_duration, args.warmup)
        _say(f"concurrency 1: {args.repeats} passes over the mix ...")
        c1: list[Sample] = []
        for number in range(args.repeats):
            c1 += sequential_pass(client, queries, count=False)
            so_far = by_class(c1)["overall"]["p50_ms"]
            _say(f"  pass {number + 1}: overall p50 so far {so_far:.1f} ms")
    finally:
        client.close()

    _say(f"concurrency {args.connections}: baseline ...")
    base_cn = load_baseline(baseline, args.connections, args.baseline_duration, args.warmup)
    list_cn = load_list(service, auth, args.connections, args.baseline_duration, args.warmup)
    _say(f"concurrency {args.connections}: the mix for {args.duration:.0f} s ...")
    asyncio.run(_reset_statements(dsn))
    sampler = CpuSampler(service.pid, pgdata)
    runner = loadgen.event_loop_runner()
    cn, errors, client_cores = runner(
        mixed_load(
            service.port,
            auth,
            queries,
            connections=args.connections,
            warmup=args.warmup,
            duration=args.duration,
            on_window_start=sampler.start,
            on_window_end=sampler.stop,
        )
    )
    statements = asyncio.run(_top_statements(dsn))
    cores = sampler.cores(client_cores)
    non_200 = sum(1 for s in cn if s.status != 200)

    _say("EXPLAIN (ANALYZE, BUFFERS) of the service's statements ...")
    phones = [q.q for q in queries if q.klass == "phone_full_local"][:1]
    representative = {*REPRESENTATIVE, *phones}
    plans = asyncio.run(explain_queries(data_dir, workspace_id, queries, representative))

    counts = {(s.klass, s.q): s.results for s in first}
    return {
        "meta": {
            "timestamp": args.timestamp,
            "cpu_count": psutil.cpu_count(),
            "python": platform.python_version(),
            "code": json.loads(os.environ.get(_CODE, "{}")),
            "data_dir": str(data_dir) if args.data_dir else None,
            "repeats": args.repeats,
            "connections": args.connections,
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "baseline_duration_s": args.baseline_duration,
            "budget_ms": args.budget_ms,
            "limit": LIMIT,
        },
        "seeding": seeding or (info.get("seedings") or [None])[-1],
        "seeding_ran_now": seeding is not None,
        "database": facts,
        "queries": [
            {"class": q.klass, "q": q.q, "results": counts.get((q.klass, q.q))} for q in queries
        ],
        "first_pass": [s.__dict__ for s in first],
        "c1": {"by_class": by_class(c1), "by_query": by_query(c1)},
        "cn": {
            "connections": args.connections,
            "requests": len(cn),
            "rps": len(cn) / args.duration,
            "non_200": non_200,
            "errors": errors,
            "by_class": by_class(cn),
            "by_query": by_query(cn),
            "cpu_cores": cores,
        },
        "baseline": {"c1": base_c1, "cn": base_cn},
        # GET /v1/contacts?limit=20 without q (keyset on created_at): the endpoint's floor
        # with 20 contacts serialised, for what search adds on top.
        "list_floor": {"c1": list_c1, "cn": list_cn},
        "pg_stat_statements": statements,
        "plans": plans,
    }


# -- the report --------------------------------------------------------------------------------


def _f(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}"


def render_markdown(report: dict[str, Any]) -> str:
    meta = report["meta"]
    db = report["database"]
    budget = meta["budget_ms"]
    out: list[str] = []
    add = out.append
    add(f"# Contact search benchmark, {meta['timestamp']}")
    add("")
    code = meta["code"]
    add(
        f"{db['contacts']:,} contacts in the workspace ({db['contacts_all_workspaces']:,} in "
        f"the table), PostgreSQL {db['server_version']}; {meta['cpu_count']} cores shared by "
        f"client, service, baseline and PostgreSQL. Code: {code.get('kind')} of "
        f"{code.get('commit', '?')[:12]}{' (dirty)' if code.get('dirty') else ''}. "
        f"`GET /v1/contacts?q=...&limit={meta['limit']}` with the admin key; "
        f"budget p95 <= {budget:.0f} ms."
    )
    add("")
    seeding = report.get("seeding")
    if seeding:
        rows = seeding["rows"]
        add("## Seeding (bench.seed, COPY)")
        add("")
        add(
            f"{'This run' if report['seeding_ran_now'] else 'Earlier run'}: "
            f"{rows['contacts']:,} contacts + {rows['emails']:,} e-mails + "
            f"{rows['phones']:,} phones + {rows['external_ids']:,} external ids in "
            f"{seeding['load_s']:.1f} s = **{seeding['contacts_per_s']:,.0f} contacts/s, "
            f"{seeding['rows_per_s']:,.0f} rows/s**; VACUUM (ANALYZE) "
            f"{seeding['vacuum_analyze_s']:.1f} s. Time by step (s): "
            + ", ".join(f"{k} {v:.1f}" for k, v in seeding.get("load_steps_s", {}).items())
        )
        add("")
    add("## Latency at concurrency 1 (ms)")
    add("")
    base = report["baseline"]["c1"]
    add(
        f"Baseline (Starlette + asyncpg PK read, same run): p50 {_f(base['p50_ms'], 2)}, "
        f"p95 {_f(base['p95_ms'], 2)}, p99 {_f(base['p99_ms'], 2)} ms, "
        f"{base['rps']:,.0f} req/s."
    )
    floor = report["list_floor"]["c1"]
    add(
        f"Floor of the endpoint (`GET /v1/contacts?limit={meta['limit']}` without q, same "
        f"run): p50 {_f(floor['p50_ms'], 2)}, p95 {_f(floor['p95_ms'], 2)} ms."
    )
    add("")
    add("| class | n | p50 | p95 | p99 | max | p50 / baseline p50 | p95 within budget |")
    add("|---|---:|---:|---:|---:|---:|---:|---|")
    for klass, row in report["c1"]["by_class"].items():
        add(
            f"| {klass} | {row['n']} | {_f(row['p50_ms'])} | {_f(row['p95_ms'])} | "
            f"{_f(row['p99_ms'])} | {_f(row['max_ms'])} | "
            f"{row['p50_ms'] / base['p50_ms']:,.0f}x | "
            f"{'yes' if row['p95_ms'] <= budget else '**no**'} |"
        )
    add("")
    cn = report["cn"]
    base_n = report["baseline"]["cn"]
    add(f"## Throughput at concurrency {cn['connections']}")
    add("")
    add(
        f"Search mix: **{cn['rps']:,.1f} req/s** ({cn['requests']:,} requests, "
        f"non-200 {cn['non_200']}, errors {cn['errors']}); baseline {base_n['rps']:,.0f} "
        f"req/s (p50 {_f(base_n['p50_ms'], 2)} ms): ratio "
        f"{cn['rps'] / base_n['rps']:.4f}. CPU in the window (cores): "
        + ", ".join(f"{k} {_f(v, 2)}" for k, v in cn["cpu_cores"].items())
        + f". List without q at the same concurrency: {report['list_floor']['cn']['rps']:,.0f} "
        f"req/s (p50 {_f(report['list_floor']['cn']['p50_ms'], 1)} ms)."
    )
    add("")
    add("| class | n | p50 | p95 | p99 | max |")
    add("|---|---:|---:|---:|---:|---:|")
    for klass, row in cn["by_class"].items():
        add(
            f"| {klass} | {row['n']} | {_f(row['p50_ms'])} | {_f(row['p95_ms'])} | "
            f"{_f(row['p99_ms'])} | {_f(row['max_ms'])} |"
        )
    add("")
    add("## Per query (concurrency 1) and the plan's key facts")
    add("")
    add(
        "results: contacts returned (limit 20); matches: contacts the search condition "
        "selects (the service ranks the first of them, up to its cap); find() ms: "
        "`ContactService.find` in-process, one run, after the load; EXPLAIN ms: the search "
        "statement's execution time under EXPLAIN ANALYZE as the app role."
    )
    add("")
    plans = {(p["class"], p["q"]): p for p in report["plans"]}
    add(
        "| class | q | results | matches | p50 ms | p95 ms | find() ms | EXPLAIN ms | access path |"
    )
    add("|---|---|---:|---:|---:|---:|---:|---:|---|")
    for row in report["c1"]["by_query"]:
        plan = plans.get((row["class"], row["q"]), {})
        text = plan.get("plan", "")
        path = _access_path("\n".join([text, *plan.get("inner_plans", [])]))
        add(
            f"| {row['class']} | `{row['q']}` | {plan.get('results', '')} | "
            f"{plan.get('matches', '')} | {_f(row['p50_ms'])} | {_f(row['p95_ms'])} | "
            f"{_f(plan.get('service_find_ms'))} | {_execution_ms(text)} | {path} |"
        )
    add("")
    add("## Server time per statement during the concurrent window (pg_stat_statements)")
    add("")
    add("| calls | mean ms | max ms | total s | blks hit | blks read | JIT ms | role | query |")
    add("|---:|---:|---:|---:|---:|---:|---:|---|---|")
    for row in report["pg_stat_statements"][:8]:
        query = row["query"].replace("|", "\\|")[:160]
        add(
            f"| {row['calls']} | {_f(row['mean_exec_time'], 2)} | "
            f"{_f(row['max_exec_time'], 1)} | {row['total_exec_time'] / 1000:,.1f} | "
            f"{row['shared_blks_hit']:,} | {row['shared_blks_read']:,} | "
            f"{_f(row['jit_ms'], 1)} | {row['role']} | `{query}` |"
        )
    add("")
    add("## Plans of representative queries (app role, RLS on)")
    for plan in report["plans"]:
        if "generic_plan" not in plan:
            continue
        add("")
        add(f"### `{plan['q']}` ({plan['class']}), {plan.get('matches')} matching contacts")
        add("")
        add("```sql")
        add(plan["search_sql"])
        add("```")
        add("")
        add(f"Parameters: {plan['search_params']}")
        for title, key in (
            ("Custom plan (what EXPLAIN with the values gives)", "plan"),
            ("Generic plan (plan_cache_mode = force_generic_plan)", "generic_plan"),
            ("As the owner (RLS bypassed)", "owner_plan"),
        ):
            add("")
            add(f"{title}:")
            add("")
            add("```")
            add("\n".join(key_lines(plan[key])))
            add("```")
            if key == "plan":
                for inner in plan.get("inner_plans", []):
                    add("")
                    add("Nested statement inside it (auto_explain, app role):")
                    add("")
                    add("```")
                    add("\n".join(_inner_lines(inner)))
                    add("```")
        for child in plan.get("children", []):
            add("")
            add(f"Child load `{child['sql'][:60]}...`: {_execution_ms(child['plan'])} ms")
    add("")
    add("Settings: " + ", ".join(f"{k}={v}" for k, v in db["settings"].items()))
    add("")
    return "\n".join(out)


def _inner_lines(plan: str) -> list[str]:
    lines = plan.splitlines()
    text = [line.strip() for line in lines if line.startswith("Query Text:")]
    return [*text[:1], *key_lines("\n".join(lines[1:]))]


def _execution_ms(plan: str) -> str:
    for line in plan.splitlines():
        if line.startswith("Execution Time:"):
            return line.split(":", 1)[1].strip().removesuffix(" ms")
    return ""


def _access_path(plan: str) -> str:
    """The scans of a plan (nested statements' included), in order, without repeats."""
    found = []
    for line in plan.splitlines():
        text = line.strip().removeprefix("->").strip()
        if "Scan" in text and " on " in text:
            found.append(text.split("  (")[0])
    return "; ".join(dict.fromkeys(found))


def write_report(report: dict[str, Any], out: Path) -> tuple[Path, Path, str]:
    out.mkdir(parents=True, exist_ok=True)
    stem = f"search-{report['meta']['timestamp']}"
    markdown = render_markdown(report)
    json_path, md_path = out / f"{stem}.json", out / f"{stem}.md"
    json_path.write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")
    md_path.write_text(markdown, encoding="utf-8")
    return json_path, md_path, markdown


Report = dict[str, Any]


def child_main(
    args: argparse.Namespace,
    measure_run: Callable[[argparse.Namespace, Processes, Path], Report] | None = None,
    write: Callable[[Report, Path], tuple[Path, Path, str]] | None = None,
) -> int:
    """Measure (``run`` of this module unless given), write the report, stop what started."""
    measure_run = measure_run or run
    write = write or write_report
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    temp = Path(os.environ[_TEMP])
    data_dir = _resolve(args.data_dir) or temp / "data"
    try:
        with contextlib.ExitStack() as cleanup:
            cleanup.callback(_stop_embedded, data_dir)
            processes = Processes(temp / "logs")
            cleanup.callback(processes.stop_all)
            cleanup.callback(_ignore_signals)
            try:
                report = measure_run(args, processes, temp)
            except Exception:
                processes.tail_logs(sys.stderr)
                raise
    except KeyboardInterrupt:
        print("interrupted; everything started was stopped", file=sys.stderr)
        return 130
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    out = _resolve(Path(args.out)) or PROJECT_ROOT / "bench" / "results"
    json_path, md_path, markdown = write(report, out)
    print(markdown)
    print(f"wrote {json_path} and {md_path}", file=sys.stderr)
    return 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.search",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--contacts", type=int, help="seed the data directory up to this many")
    parser.add_argument("--data-dir", type=Path, help="embedded data directory (kept)")
    parser.add_argument("--keep-data", action="store_true", help="keep the temporary data")
    parser.add_argument("--seed", type=int, default=42, help="seed of the generated data")
    parser.add_argument("--code", choices=["head", "worktree"], default="head")
    parser.add_argument("--code-ref", default="HEAD", help="with --code head: what to run")
    parser.add_argument("--repeats", type=int, default=10, help="passes over the mix at c=1")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--duration", type=float, default=30.0, help="concurrent window, s")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--baseline-duration", type=float, default=10.0)
    parser.add_argument("--budget-ms", type=float, default=BUDGET_MS)
    parser.add_argument("--out", default=str(PROJECT_ROOT / "bench" / "results"))
    parser.add_argument("--timestamp", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.contacts is None and args.data_dir is None:
        parser.error("give --contacts (to seed) or --data-dir (seeded already), or both")
    if args.repeats < 1 or args.connections < 1 or args.duration <= 0:
        parser.error("--repeats and --connections must be at least 1, --duration above 0")
    args.timestamp = args.timestamp or datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return args


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    if os.environ.get(_CHILD):
        sys.exit(child_main(args))
    signal.signal(signal.SIGTERM, _interrupt)
    sys.exit(parent_main(args, argv))


if __name__ == "__main__":
    main()
