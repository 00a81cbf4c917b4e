"""The client mix: every workload of ``bench.scenarios`` against ``crm serve`` on seeded data,
next to the machine's baselines measured in the same run.

    .venv/bin/python -m bench.workloads                    # --scale medium (make bench)
    .venv/bin/python -m bench.workloads --scale small      # seconds: a smoke run
    .venv/bin/python -m bench.workloads --scale large --data-dir /big/dir   # 1M contacts
    .venv/bin/python -m bench.workloads --only call_centre,get_contact --code worktree

In one run, on an embedded PostgreSQL of its own:

1. data (skipped when ``--data-dir`` already holds this scale's data): contacts by COPY
   (``bench.seed``), then interactions and purchases with items by COPY
   (``bench.seed_history``), then accounts with their contacts, relationships, opportunities
   with stage histories, cases with status histories and loyalty members with ledgers by COPY
   (``bench.seed_workspace``, which fails when the loaded ledger breaks an invariant), each
   generated as API bodies and parsed by the service's own schemas. Scales: small 2k
   contacts / 10k interactions / 2k purchases, medium 100k / 500k / 100k, large 1M / 10M /
   2M; per 100 contacts, 5 accounts, 10 relationships, 20 opportunities, 20 cases and 50
   loyalty members;
2. ``crm serve`` (one worker), ``VACUUM (ANALYZE)`` of the database (the data as autovacuum
   would leave it, whether just seeded or written to by an earlier run), and the Starlette +
   raw asyncpg primary-key read of ``bench.baselines`` on the same database;
3. baselines: the raw asyncpg read driven by ``bench.loadgen`` (the stack's limit here) and by
   the scenarios' own httpx client (the same client overhead as the workloads), and
   ``pgbench`` select-only and TPC-B-like on a database of their own on the same server (the
   database's own ceiling); with the loyalty workloads, also the ledger write by pgbench: the
   service's own database function ``crm_loyalty_write`` on the loadgen workload's accounts,
   with no service in between (the database's own ceiling for that write), after which the
   ledger's invariants are checked again;
4. each workload at ``--concurrency`` for ``--duration`` seconds after ``--warmup``: visits
   and requests per second, p50/p95/p99 of each step, errors (any status the scenario did not
   expect), CPU of the service and of PostgreSQL, the service's RSS, and SQL statements per
   request from ``pg_stat_statements``. ``get_contact`` is also driven by ``bench.loadgen``,
   for the ratio to the raw baseline the budget is stated in: in three rounds, each loading
   the service and then the baseline, reporting the median of the paired ratios. The loyalty
   workloads are also driven by ``bench.loadgen`` (their budgets are stated against pgbench's
   TPC-B, whose client is C), after which the ledger's invariants are checked, and so is
   ``graphql_contact_page`` (its budget is stated against the raw baseline, beyond what the
   httpx client sends here), on a hundred contacts' pages each first checked for errors;
5. ``<out>/workloads-<ts>.json`` and ``.md``, with latency and throughput charts (PNG,
   matplotlib from the ``bench`` extra); ``--publish`` also copies the summary and charts to
   ``bench/reports/``, which the README links to.

Client, service and PostgreSQL share this machine's cores: read the ratios to the baselines,
not the absolute figures, when comparing runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import psutil
from sqlalchemy.ext.asyncio import create_async_engine

from app.config import get_settings
from app.db.bootstrap import quote_ident
from app.db.embedded import DATABASE_NAME, SUPERUSER, EmbeddedPostgres, _bin_dir
from app.loyalty.invariants import broken_invariants
from bench import loadgen, search
from bench.foundation import (
    BenchError,
    CpuSampler,
    Processes,
    Server,
    _cpu_model,
    plain_dsn,
    ratio,
)
from bench.history import _client, _f, _service_statements
from bench.scenarios import (
    CONTACT_PAGE,
    SCENARIOS,
    Dataset,
    Outcome,
    Scenario,
    drive,
    load_dataset,
)
from bench.search import (
    _CHILD,
    _CODE,
    _interrupt,
    _reset_statements,
    _resolve,
    _say,
    _start_baseline,
    _start_service,
)
from bench.seed import SEED_FILE
from bench.seed_workspace import Sizes

PROJECT_ROOT = Path(__file__).resolve().parent.parent
WORKLOADS_FILE = "bench-workloads.json"
REPORTS_DIR = PROJECT_ROOT / "bench" / "reports"


@dataclass(frozen=True)
class Scale:
    contacts: int
    interactions: int
    purchases: int
    duration: float
    warmup: float
    pgbench_scale: int

    @property
    def workspace(self) -> Sizes:
        """Accounts, relationships, opportunities, cases and members for these contacts."""
        return Sizes.for_contacts(self.contacts)


SCALES = {
    "small": Scale(2_000, 10_000, 2_000, duration=3, warmup=1, pgbench_scale=1),
    "medium": Scale(100_000, 500_000, 100_000, duration=20, warmup=3, pgbench_scale=10),
    "large": Scale(1_000_000, 10_000_000, 2_000_000, duration=30, warmup=5, pgbench_scale=50),
}

# Stated in the project's performance goals; reported, never asserted.
BUDGETS = {
    "get_contact_vs_raw_baseline": 0.5,
    "graphql_vs_raw_baseline": 0.25,
    "search_p95_ms": 50.0,
    "timeline_p95_ms": 30.0,
}


# -- data --------------------------------------------------------------------------------------

# The rows the report's data section counts.
COUNTED_TABLES = (
    "contacts", "interactions", "purchases", "purchase_items", "accounts",
    "contact_relationships", "opportunities", "opportunity_stage_changes", "cases",
    "case_history", "loyalty_accounts", "loyalty_entries", "loyalty_lots",
    "loyalty_allocations", "loyalty_redemptions",
)  # fmt: skip


def prepare_data(args: argparse.Namespace, data_dir: Path) -> dict[str, Any]:
    """This scale's data in ``data_dir``: what an earlier run left there, or seeded now."""
    from bench.seed import seed
    from bench.seed_history import seed_history
    from bench.seed_workspace import seed_workspace

    scale = SCALES[args.scale]
    info_file = data_dir / WORKLOADS_FILE
    if info_file.exists():
        info: dict[str, Any] = json.loads(info_file.read_text(encoding="utf-8"))
        if info.get("scale") == args.scale:
            _say(f"{data_dir} holds the {args.scale} data of {info['seeded_at']}: reusing it")
            return info
        raise BenchError(f"{data_dir} holds {info.get('scale')} data, not {args.scale}")
    if (data_dir / SEED_FILE).exists():
        raise BenchError(f"{data_dir} was seeded by another benchmark: use a directory of its own")
    _say(f"seeding {scale.contacts:,} contacts ...")
    contacts = seed(data_dir, contacts=scale.contacts, keep_running=True, seed_value=args.seed)
    seeded = json.loads((data_dir / SEED_FILE).read_text(encoding="utf-8"))
    dsn = plain_dsn(EmbeddedPostgres(data_dir).superuser_dsn())

    async def rest_of_data() -> tuple[dict[str, Any], dict[str, Any]]:
        connection = await asyncpg.connect(dsn)
        try:
            rows = await connection.fetch(
                "SELECT id FROM contacts WHERE workspace_id = $1", seeded["workspace_id"]
            )
        finally:
            await connection.close()
        ids = [str(row["id"]) for row in rows]
        _say(f"seeding {scale.interactions:,} interactions and {scale.purchases:,} purchases ...")
        made = await seed_history(
            dsn,
            seeded["workspace_id"],
            ids,
            interactions=scale.interactions,
            purchases=scale.purchases,
            seed=args.seed,
        )
        sizes = scale.workspace
        _say(
            f"seeding {sizes.accounts:,} accounts, {sizes.relationships:,} relationships, "
            f"{sizes.opportunities:,} opportunities, {sizes.cases:,} cases and "
            f"{sizes.members:,} loyalty members ..."
        )
        rest = await seed_workspace(dsn, seeded["workspace_id"], sizes, seed=args.seed)
        return made, rest

    made, rest = asyncio.run(rest_of_data())
    info = {
        "scale": args.scale,
        "seeded_at": args.timestamp,
        "workspace_id": seeded["workspace_id"],
        "api_key": seeded["api_key"],
        "seeding": {"contacts": contacts, "history": made, "workspace": rest},
    }
    info_file.write_text(json.dumps(info, indent=2, default=str) + "\n", encoding="utf-8")
    return info


async def _settle(dsn: str) -> float:
    """``VACUUM (ANALYZE)`` the database, in seconds: a fresh COPY leaves no statistics or
    visibility map, and an earlier run's writes leave dead rows, so without it autovacuum
    would run during the measurements and the plans would follow stale statistics."""
    began = time.perf_counter()
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute("VACUUM (ANALYZE)")
    finally:
        await connection.close()
    return time.perf_counter() - began


async def _database_facts(dsn: str, workspace_id: str) -> dict[str, Any]:
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        counts = {}
        for table in COUNTED_TABLES:
            counts[table] = await connection.fetchval(
                f"SELECT count(*) FROM {table} WHERE workspace_id = $1",
                workspace_id,
            )
        return {"server_version": await connection.fetchval("SHOW server_version"), "rows": counts}
    finally:
        await connection.close()


# -- baselines ---------------------------------------------------------------------------------


async def _run_pgbench(data_dir: Path, *arguments: str, user: str = SUPERUSER) -> str:
    """pgbench on the embedded server's socket as ``user``: its output."""
    socket = str(EmbeddedPostgres(data_dir).layout.socket_dir)
    done = await asyncio.to_thread(
        subprocess.run,
        [str(_bin_dir() / "pgbench"), "-h", socket, "-U", user, *arguments],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        raise BenchError(f"pgbench {' '.join(arguments[:2])} failed: {done.stderr[-300:]}")
    return done.stdout


def _pgbench_figures(output: str) -> dict[str, Any]:
    found = re.search(r"tps = ([\d.]+)", output)
    latency = re.search(r"latency average = ([\d.]+) ms", output)
    return {
        "tps": float(found.group(1)) if found else None,
        "latency_avg_ms": float(latency.group(1)) if latency else None,
    }


def _pgbench_threads(clients: int) -> str:
    return str(max(1, min(clients, os.cpu_count() or 1)))


async def pgbench(data_dir: Path, scale: int, clients: int, duration: float) -> dict[str, Any]:
    """pgbench select-only and TPC-B-like on a database of its own on the same server."""
    out: dict[str, Any] = {"scale": scale, "clients": clients, "duration_s": duration}
    dsn = plain_dsn(EmbeddedPostgres(data_dir).superuser_dsn())

    async def create() -> None:
        connection = await asyncpg.connect(dsn)
        try:
            exists = await connection.fetchval("SELECT 1 FROM pg_database WHERE datname='pgbench'")
            if not exists:
                await connection.execute("CREATE DATABASE pgbench")
        finally:
            await connection.close()

    await create()
    await _run_pgbench(data_dir, "-i", "-q", "-s", str(scale), "pgbench")
    threads = _pgbench_threads(clients)
    for name, extra in (("select_only", ["-S"]), ("tpcb_like", [])):
        output = await _run_pgbench(data_dir, *extra, "-c", str(clients), "-j", threads,
                                    "-T", str(int(duration)), "-n", "pgbench")  # fmt: skip
        out[name] = _pgbench_figures(output)
    return out


# The loyalty workloads' write with no service in between: the service's own database function,
# called by pgbench (a C client, as TPC-B's) as the service's role (the same row-level security),
# on the accounts the loadgen workload writes to. pgbench picks them by number from a table of
# their own, made for the run and dropped after it.
LEDGER_SCHEMA = "bench_pgbench"
LEDGER_ACCOUNTS = f"{LEDGER_SCHEMA}.loyalty_accounts"


def ledger_script(workspace_id: str, accounts: int) -> str:
    """pgbench's script for the ledger write: per transaction, an earn of 1 to 50 points then a
    redemption of as many on one of the first ``accounts`` of ``LEDGER_ACCOUNTS``, as a visit of
    the loyalty workloads does. Each statement is a transaction of its own, as the service's
    one-statement writes are, so a pgbench transaction is two writes. ``crm_loyalty_write``'s
    arguments: workspace, account, kind, points (negative to redeem), reason, API key, details,
    the ids of the entry, of the lot (an earn's), of the redemption (a redemption's) and of the
    two outbox events."""
    if accounts < 1:
        raise ValueError("the ledger write needs at least one account")
    workspace = uuid.UUID(workspace_id)
    call = (
        f"SELECT * FROM crm_loyalty_write('{workspace}', "
        f"(SELECT id FROM {LEDGER_ACCOUNTS} WHERE n = :n), "
    )
    new = "gen_random_uuid()"
    return (
        f"\\set n random(1, {accounts})\n"
        "\\set points random(1, 50)\n"
        "\\set spent -:points\n"
        f"{call}'earn', :points, 'in-store bonus', NULL, '{{}}'::jsonb, "
        f"{new}, {new}, NULL, {new}, {new});\n"
        f"{call}'redeem', :spent, 'coffee voucher', NULL, '{{}}'::jsonb, "
        f"{new}, NULL, {new}, {new}, {new});\n"
    )


# The writes the run made: every write the function makes adds one to its account's version.
_VERSIONS = (
    "SELECT coalesce(sum(version), 0) FROM loyalty_accounts "
    "WHERE workspace_id = $1 AND id = ANY($2::uuid[])"
)


async def pgbench_ledger(
    data_dir: Path, workspace_id: str, account_ids: list[str], clients: int, duration: float
) -> dict[str, Any]:
    """The ledger write by pgbench for ``duration`` seconds (writes/s: twice its tps), then the
    ledger's invariants over the workspace. ``errors``: broken invariants, calls that wrote
    nothing (the function answers so when an account is unsettled or short of points)."""
    dsn = plain_dsn(EmbeddedPostgres(data_dir).superuser_dsn())
    role = get_settings().app_role
    quoted = quote_ident(role)
    out: dict[str, Any] = {"function": "crm_loyalty_write", "role": role, "clients": clients,
                           "accounts": len(account_ids), "duration_s": duration}  # fmt: skip
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(
            f"DROP SCHEMA IF EXISTS {LEDGER_SCHEMA} CASCADE; CREATE SCHEMA {LEDGER_SCHEMA}; "
            f"CREATE UNLOGGED TABLE {LEDGER_ACCOUNTS} (n integer PRIMARY KEY, id uuid NOT NULL); "
            f"GRANT USAGE ON SCHEMA {LEDGER_SCHEMA} TO {quoted}; "
            f"GRANT SELECT ON {LEDGER_ACCOUNTS} TO {quoted}"
        )
        await connection.execute(
            f"INSERT INTO {LEDGER_ACCOUNTS} (n, id) "
            "SELECT n, id FROM unnest($1::uuid[]) WITH ORDINALITY AS a (id, n)",
            account_ids,
        )
        await connection.execute(f"ANALYZE {LEDGER_ACCOUNTS}")
        before = await connection.fetchval(_VERSIONS, workspace_id, account_ids)
        with tempfile.TemporaryDirectory(prefix="crm-ledger-") as folder:
            script = Path(folder) / "ledger.sql"
            script.write_text(ledger_script(workspace_id, len(account_ids)), encoding="utf-8")
            output = await _run_pgbench(
                data_dir, "-M", "prepared", "-f", str(script), "-c", str(clients),
                "-j", _pgbench_threads(clients), "-T", str(int(duration)), "-n", DATABASE_NAME,
                user=role,
            )  # fmt: skip
        written = int(await connection.fetchval(_VERSIONS, workspace_id, account_ids) - before)
    finally:
        try:
            await connection.execute(f"DROP SCHEMA IF EXISTS {LEDGER_SCHEMA} CASCADE")
        finally:
            await connection.close()
    figures = _pgbench_figures(output)
    processed = re.search(r"number of transactions actually processed: (\d+)", output)
    calls = 2 * int(processed.group(1)) if processed else None
    out.update(
        figures,
        writes_per_s=2 * figures["tps"] if figures["tps"] is not None else None,
        calls=calls,
        written=written,
        broken_invariants=await _broken_invariants(dsn, workspace_id),
    )
    errors = []
    if out["broken_invariants"]:
        errors.append(f"broken ledger invariants: {out['broken_invariants']}")
    # A run stopped at its time limit may leave an uncounted call written, never the reverse.
    if calls is None:
        errors.append("pgbench's output gave no count of transactions")
    elif written < calls:
        errors.append(f"{calls - written:,} of {calls:,} calls wrote nothing (unsettled or short)")
    out["errors"] = errors
    return out


async def _raw_load(
    url: str, connections: int, duration: float, warmup: float, headers: dict[str, str]
) -> dict[str, Any]:
    target = loadgen.build_target(url, headers=headers)
    result = await loadgen.run_load(
        target, connections=connections, duration=duration, warmup=warmup
    )
    return result.as_dict()


# -- measuring ---------------------------------------------------------------------------------


def _percentiles(values: list[float]) -> dict[str, float | None]:
    ordered = sorted(values)
    if not ordered:
        return {"p50_ms": None, "p95_ms": None, "p99_ms": None, "max_ms": None}
    return {
        "p50_ms": loadgen.percentile(ordered, 0.50),
        "p95_ms": loadgen.percentile(ordered, 0.95),
        "p99_ms": loadgen.percentile(ordered, 0.99),
        "max_ms": ordered[-1],
    }


def summarise(outcome: Outcome) -> dict[str, Any]:
    record = outcome.record
    every = [ms for stats in record.steps.values() for ms in stats.latencies_ms]
    return {
        "visits": record.visits,
        "failed_visits": record.failed_visits,
        "requests": record.requests,
        "errors": record.errors,
        "seconds": outcome.seconds,
        "visits_per_s": outcome.visits_per_s,
        "requests_per_s": outcome.requests_per_s,
        **_percentiles(every),
        "steps": {
            step: {
                "requests": len(stats.latencies_ms),
                "errors": stats.errors,
                "statuses": {str(code): count for code, count in sorted(stats.statuses.items())},
                **_percentiles(stats.latencies_ms),
                "error_samples": stats.error_samples,
            }
            for step, stats in record.steps.items()
        },
    }


async def _baseline_visit(
    client: httpx.AsyncClient, _data: Dataset, _rng: Any, record: Any
) -> None:
    await record.call("baseline read", client.get("/"))


async def measure(
    args: argparse.Namespace,
    service: Server,
    baseline: Server,
    data_dir: Path,
    info: dict[str, Any],
) -> dict[str, Any]:
    scale = SCALES[args.scale]
    duration = args.duration or scale.duration
    warmup = args.warmup if args.warmup is not None else scale.warmup
    concurrency = args.concurrency
    dsn = plain_dsn(EmbeddedPostgres(data_dir).superuser_dsn())
    pgdata = EmbeddedPostgres(data_dir).layout.pgdata
    auth = {"Authorization": f"Bearer {info['api_key']}"}
    me = psutil.Process()
    report: dict[str, Any] = {"workloads": {}}
    chosen = [SCENARIOS[name] for name in args.only] if args.only else list(SCENARIOS.values())
    async with (
        _client(
            service.port, auth, max([concurrency, *(w.concurrency or 0 for w in chosen)])
        ) as client,
        _client(baseline.port, {}, concurrency) as base_client,
    ):
        _say("reading the dataset through the API ...")
        data = await load_dataset(client)
        report["dataset"] = {"contacts": len(data.contact_ids), "names": len(data.names),
                             "phones": len(data.phones)}  # fmt: skip

        _say(f"baseline: raw asyncpg read, loadgen, {concurrency} connections ...")
        report["baseline_raw"] = await _raw_load(
            baseline.url("/"), concurrency, duration, warmup, {}
        )
        _say("baseline: the same read through the scenarios' httpx client ...")
        base = await drive(
            base_client,
            Scenario("baseline", "GET / on the baseline", _baseline_visit, micro=True),
            data,
            concurrency=concurrency,
            duration=duration,
            warmup=warmup,
        )
        report["baseline_httpx"] = summarise(base)

        for workload in chosen:
            clients = workload.concurrency or concurrency
            _say(f"{workload.name}: {clients} clients, {duration:g} s ...")
            if workload.prepare is not None:
                await workload.prepare(client, data)
            await _reset_statements(dsn)
            sampler = CpuSampler(service.pid, pgdata)
            cpu_before = me.cpu_times()
            sampler.start()
            outcome = await drive(
                client,
                workload,
                data,
                concurrency=clients,
                duration=duration,
                warmup=warmup,
                prepare=False,
            )
            sampler.stop()
            cpu_after = me.cpu_times()
            client_cores = (
                cpu_after.user + cpu_after.system - cpu_before.user - cpu_before.system
            ) / max(outcome.seconds + warmup, 1e-9)
            statements = sum(int(row["calls"]) for row in await _service_statements(dsn))
            summary = summarise(outcome)
            # The statements include the warm-up's: divide by every request sent.
            sent = max(outcome.record.sent, 1)
            summary.update(
                clients=clients,
                description=workload.description,
                micro=workload.micro,
                cpu_cores=sampler.cores(client_cores),
                service_rss_mib=psutil.Process(service.pid).memory_info().rss / 2**20,
                statements_per_request=statements / sent,
            )
            report["workloads"][workload.name] = summary
            _say(
                f"  {summary['requests_per_s']:,.0f} req/s, p95 {summary['p95_ms'] or 0:,.1f} ms,"
                f" {summary['errors']} errors"
            )

        loyalty = [w for w in chosen if w.name in LOYALTY_LOADS]
        if loyalty:
            report["loyalty_loadgen"] = await _loyalty_loads(
                service, auth, data, [w.name for w in loyalty], dsn, info["workspace_id"],
                pgdata, concurrency=concurrency, duration=duration, warmup=warmup,
            )  # fmt: skip

        if any(workload.name == "graphql_contact_page" for workload in chosen):
            report["graphql_loadgen"] = await _graphql_load(
                client, service, auth, data,
                concurrency=concurrency, duration=duration, warmup=warmup,
            )  # fmt: skip

        if not args.only or "get_contact" in args.only:
            report["get_contact_raw"] = await _paired_rounds(
                service.url(f"/v1/contacts/{data.contact_ids[0]}"),
                baseline.url("/"),
                auth,
                concurrency=concurrency,
                duration=duration,
                warmup=warmup,
            )
    if not args.skip_pgbench:
        _say("pgbench select-only and TPC-B-like ...")
        report["pgbench"] = bench = await pgbench(
            data_dir, scale.pgbench_scale, concurrency, duration
        )
        if "loyalty_loadgen" in report:
            accounts = list(data.extra["loyalty_accounts"].values())
            _say(f"pgbench: the ledger write (crm_loyalty_write) on {len(accounts)} accounts ...")
            ledger = await pgbench_ledger(
                data_dir, info["workspace_id"], accounts, concurrency, duration
            )
            ledger["vs_tpcb"] = ratio(ledger["writes_per_s"], bench["tpcb_like"]["tps"])
            bench["loyalty_function"] = ledger
            _say(f"  {_f(ledger['writes_per_s'], 0)} writes/s, {_f(ledger['vs_tpcb'], 3)}x "
                 f"TPC-B; {'; '.join(ledger['errors']) or 'no errors'}")  # fmt: skip
    report["budgets"] = budgets(report)
    return report


# The loyalty budgets are stated against pgbench's TPC-B, whose client is C: the same writes
# are also driven by loadgen, with requests encoded once, so the client is not what limits them
# (the scenarios' httpx client tops out near a fifth of what loadgen sends here). Per workload:
# the number of members written to (None: every prepared one) and of connections (None: the
# run's concurrency).
LOYALTY_LOADS: dict[str, tuple[int | None, int | None]] = {
    "loyalty_many_accounts": (None, None),
    "loyalty_hot_account": (1, 32),
}


def loyalty_targets(
    service: Server, auth: dict[str, str], account_ids: list[str], rng: random.Random, pairs: int
) -> list[loadgen.Target]:
    """``pairs`` visits of the loyalty scenarios (earn some points, then redeem as many) on the
    accounts in turn, as the requests' exact bytes."""
    headers = {**auth, "Content-Type": "application/json"}
    targets = []
    for number in range(pairs):
        account = f"/v1/loyalty/accounts/{account_ids[number % len(account_ids)]}"
        points = rng.randint(1, 50)
        for path, body in (
            (f"{account}/entries", {"kind": "earn", "points": points, "reason": "in-store bonus"}),
            (f"{account}/redemptions", {"points": points, "reason": "coffee voucher"}),
        ):
            targets.append(loadgen.build_target(
                service.url(path), method="POST", headers=headers, body=json.dumps(body).encode()
            ))  # fmt: skip
    return targets


async def _loyalty_loads(
    service: Server,
    auth: dict[str, str],
    data: Dataset,
    names: list[str],
    dsn: str,
    workspace_id: str,
    pgdata: Path,
    *,
    concurrency: int,
    duration: float,
    warmup: float,
) -> dict[str, Any]:
    """Each loyalty workload by loadgen, with the CPU the service, PostgreSQL and the client
    spent per write, then the ledger's invariants over the workspace (a write that overspent,
    or lost an update, breaks one)."""
    accounts = list(data.extra["loyalty_accounts"].values())
    rng = random.Random(7)
    out: dict[str, Any] = {}
    for name in names:
        members, connections = LOYALTY_LOADS[name]
        used = accounts[:members] if members else accounts
        connections = connections or concurrency
        _say(f"{name} by loadgen: {len(used)} accounts, {connections} connections ...")
        # Each connection starts at a visit's earn; every visit spends only what it earned.
        targets = loyalty_targets(service, auth, used, rng, pairs=max(len(used), connections))
        sampler = CpuSampler(service.pid, pgdata)
        result = await loadgen.run_load(
            targets, connections=connections, duration=duration, warmup=warmup, align=2,
            on_window_start=sampler.start, on_window_end=sampler.stop,
        )  # fmt: skip
        cores = sampler.cores(result.client_cpu_cores)
        out[name] = {**result.as_dict(), "cpu_cores": cores,
                     "cpu_us_per_request": cpu_per_request(cores, result.rps)}  # fmt: skip
        _say(f"  {result.rps:,.0f} req/s, p95 {result.p95_ms:,.1f} ms, "
             f"{result.non_2xx + result.errors} errors")  # fmt: skip
    out["broken_invariants"] = await _broken_invariants(dsn, workspace_id)
    return out


def _cpu_note(per_request: dict[str, float]) -> str:
    if not per_request:
        return ""
    parts = ", ".join(f"{party} {_f(us, 0)}" for party, us in per_request.items())
    return f"; CPU per write, µs: {parts}"


def cpu_per_request(cores: dict[str, float | None], rps: float) -> dict[str, float]:
    """Microseconds of CPU per request of each party (server, postgres, client) at ``rps``."""
    if rps <= 0:
        return {}
    return {
        party: used * 1e6 / rps
        for party in ("server", "postgres", "client")
        if (used := cores.get(party)) is not None
    }


async def _broken_invariants(dsn: str, workspace_id: str) -> dict[str, list[str]]:
    """The ledger's broken invariants over the workspace (a write that overspent, or lost an
    update, breaks one)."""
    engine = create_async_engine(dsn.replace("postgresql://", "postgresql+asyncpg://", 1))
    try:
        async with engine.connect() as connection:
            return await broken_invariants(connection, workspace_id)
    finally:
        await engine.dispose()


# Contacts whose page the GraphQL load asks for, in turn.
GRAPHQL_PAGES = 100
# The least a GraphQL request can ask for: one field of one contact. Loaded right after the
# page, on the same contacts, it shows the floor of the endpoint itself (HTTP, key check,
# session, parsing, execution) against the same raw baseline: informational, not a budget.
GRAPHQL_FLOOR = "query Floor($id: UUID!) { contact(id: $id) { id } }"


async def _graphql_load(
    client: httpx.AsyncClient,
    service: Server,
    auth: dict[str, str],
    data: Dataset,
    *,
    concurrency: int,
    duration: float,
    warmup: float,
) -> dict[str, Any]:
    """The GraphQL contact page by loadgen, on ``GRAPHQL_PAGES`` contacts in turn.

    Its budget is stated against the raw baseline, which loadgen drives: the scenarios' httpx
    client tops out below the budget's rate here, so it cannot show whether the service meets
    it. loadgen reads statuses only and a GraphQL error comes with a 200, so each page is
    first asked for once through the client and must come back without errors.
    """
    pages = data.contact_ids[:GRAPHQL_PAGES]
    bodies = [
        json.dumps({"query": CONTACT_PAGE, "variables": {"id": contact_id}}).encode()
        for contact_id in pages
    ]
    failed = []
    for contact_id, body in zip(pages, bodies, strict=True):
        answered = await client.post(
            "/graphql", content=body, headers={"Content-Type": "application/json"}
        )
        if answered.status_code != 200 or answered.json().get("errors"):
            failed.append(f"{contact_id}: {answered.status_code} {answered.text[:200]}")
    _say(f"graphql_contact_page by loadgen: {len(pages)} contacts, {concurrency} connections ...")
    headers = {**auth, "Content-Type": "application/json"}
    targets = [
        loadgen.build_target(service.url("/graphql"), method="POST", headers=headers, body=body)
        for body in bodies
    ]
    result = await loadgen.run_load(
        targets, connections=concurrency, duration=duration, warmup=warmup
    )
    _say(f"  {result.rps:,.0f} req/s, p95 {result.p95_ms:,.1f} ms, "
         f"{result.non_2xx + result.errors + len(failed)} errors")  # fmt: skip
    _say(f"GraphQL floor by loadgen: {GRAPHQL_FLOOR!r} ...")
    floor_bodies = [
        json.dumps({"query": GRAPHQL_FLOOR, "variables": {"id": contact_id}}).encode()
        for contact_id in pages
    ]
    floor = await loadgen.run_load(
        [
            loadgen.build_target(service.url("/graphql"), method="POST", headers=headers, body=body)
            for body in floor_bodies
        ],
        connections=concurrency,
        duration=duration,
        warmup=warmup,
    )
    _say(f"  {floor.rps:,.0f} req/s, {floor.non_2xx + floor.errors} errors")
    return {**result.as_dict(), "pages": len(pages), "pages_with_errors": failed,
            "floor": {"query": GRAPHQL_FLOOR, **floor.as_dict()}}  # fmt: skip


# The service and the raw baseline, loaded one after the other this many times: other work on
# the machine moves both, and the median of the paired ratios is what it moves least.
PAIRED_ROUNDS = 3


async def _paired_rounds(
    service_url: str,
    baseline_url: str,
    auth: dict[str, str],
    *,
    concurrency: int,
    duration: float,
    warmup: float,
) -> dict[str, Any]:
    """``GET /v1/contacts/{id}`` and the raw baseline by loadgen, in interleaved rounds."""
    rounds = []
    for number in range(1, PAIRED_ROUNDS + 1):
        _say(f"get_contact and the raw baseline by loadgen, round {number}/{PAIRED_ROUNDS} ...")
        served = await _raw_load(service_url, concurrency, duration, warmup, auth)
        base = await _raw_load(baseline_url, concurrency, duration, warmup, {})
        rounds.append({"service": served, "baseline": base,
                       "ratio": ratio(served["rps"], base["rps"])})  # fmt: skip
    middle = sorted(rounds, key=lambda r: r["ratio"] or 0.0)[len(rounds) // 2]
    return {**middle["service"], "paired_baseline_rps": middle["baseline"]["rps"],
            "ratio": middle["ratio"], "rounds": rounds}  # fmt: skip


def budgets(report: dict[str, Any]) -> list[dict[str, Any]]:
    raw = report["baseline_raw"]["rps"]
    workloads = report["workloads"]
    out = []
    if "get_contact_raw" in report:
        measured = report["get_contact_raw"]["ratio"]
        out.append({"budget": "GET contact by id, req/s vs raw baseline", "target": ">= 0.5x",
                    "measured": measured,
                    "met": measured is not None and measured >= 0.5})  # fmt: skip
    loyalty = report.get("loyalty_loadgen", {})
    intact = not loyalty.get("broken_invariants")
    tpcb = (report.get("pgbench") or {}).get("tpcb_like", {}).get("tps")
    if "loyalty_many_accounts" in loyalty:
        load = loyalty["loyalty_many_accounts"]
        measured = ratio(load["rps"], tpcb) if tpcb else None
        out.append({"budget": "loyalty earn/redeem across accounts, req/s (loadgen) vs pgbench "
                              "TPC-B tps", "target": ">= 0.4x", "measured": measured,
                    "met": measured is not None and measured >= 0.4
                    and load["non_2xx"] + load["errors"] == 0})  # fmt: skip
        ledger = (report.get("pgbench") or {}).get("loyalty_function")
        if ledger:
            # Informational: the same write from pgbench, no service (not part of the target).
            out[-1]["database_ceiling"] = ledger["vs_tpcb"]
    if "loyalty_hot_account" in loyalty:
        load = loyalty["loyalty_hot_account"]
        out.append({"budget": f"loyalty on one account, {load['connections']} clients (loadgen), "
                              "ops/s with no overspend", "target": ">= 300",
                    "measured": load["rps"], "met": load["rps"] >= 300 and intact
                    and load["non_2xx"] + load["errors"] == 0})  # fmt: skip
    if "graphql_contact_page" in workloads:
        page = workloads["graphql_contact_page"]
        load = report.get("graphql_loadgen")
        if load is not None:
            measured = ratio(load["rps"], raw)
            clean = load["non_2xx"] + load["errors"] + len(load["pages_with_errors"]) == 0
            driver = "(loadgen) "
        else:
            measured, clean, driver = ratio(page["requests_per_s"], raw), page["errors"] == 0, ""
        out.append({"budget": f"GraphQL contact page, req/s {driver}vs raw baseline",
                    "target": ">= 0.25x", "measured": measured,
                    "met": measured is not None and measured >= 0.25 and clean,
                    "statements_per_request": page["statements_per_request"]})  # fmt: skip
        floor = (load or {}).get("floor")
        if floor is not None and floor["non_2xx"] + floor["errors"] == 0:
            # Informational: the one-field query on the same endpoint (not part of the target).
            out[-1]["endpoint_floor"] = ratio(floor["rps"], raw)
    if "search" in workloads:
        p95 = workloads["search"]["p95_ms"]
        clients = workloads["search"]["clients"]
        out.append({"budget": f"search p95 at {clients} clients (budget stated on 1M contacts)",
                    "target": "<= 50 ms",
                    "measured": p95, "met": p95 is not None and p95 <= 50})  # fmt: skip
    if "timeline_page" in workloads:
        p95 = workloads["timeline_page"]["p95_ms"]
        clients = workloads["timeline_page"]["clients"]
        out.append({"budget": f"timeline page p95 at {clients} clients (make bench-history: one "
                              "10,000-entry contact at concurrency 1)",
                    "target": "<= 30 ms", "measured": p95,
                    "met": p95 is not None and p95 <= 30})  # fmt: skip
    return out


# -- the run -----------------------------------------------------------------------------------


def run(args: argparse.Namespace, processes: Processes, temp: Path) -> dict[str, Any]:
    data_dir = _resolve(args.data_dir) or temp / "data"
    if EmbeddedPostgres(data_dir)._someone_serving():
        raise BenchError(f"a crm serve is running on {data_dir}: stop it first")
    began = time.perf_counter()
    info = prepare_data(args, data_dir)
    data_s = time.perf_counter() - began
    dsn = plain_dsn(EmbeddedPostgres(data_dir).superuser_dsn())
    _say("starting crm serve (1 worker; it starts the database) and the baseline ...")
    service = _start_service(processes, data_dir)
    _say("VACUUM (ANALYZE): the data settled as autovacuum would leave it ...")
    settle_s = asyncio.run(_settle(dsn))
    facts = asyncio.run(_database_facts(dsn, info["workspace_id"]))
    baseline = _start_baseline(processes, dsn, info["workspace_id"])
    runner = loadgen.event_loop_runner()
    report: dict[str, Any] = runner(measure(args, service, baseline, data_dir, info))
    report["meta"] = {
        "timestamp": args.timestamp,
        "scale": args.scale,
        "rows": facts["rows"],
        "concurrency": args.concurrency,
        "duration_s": args.duration or SCALES[args.scale].duration,
        "cpu_count": psutil.cpu_count(),
        "cpu_model": _cpu_model(),
        "python": platform.python_version(),
        "postgres": facts["server_version"],
        "code": json.loads(os.environ.get(_CODE, "{}")),
        "data_seconds": data_s,
        "vacuum_analyze_seconds": settle_s,
        "seeding": info.get("seeding") if info.get("seeded_at") == args.timestamp else None,
        "http_client": f"httpx {httpx.__version__}, HTTP/1.1 keep-alive",
    }
    return report


# -- the report --------------------------------------------------------------------------------


def _more_rows(rows: dict[str, Any]) -> str:
    """The other seeded tables' counts, for the report's first line (older reports: none)."""
    if "accounts" not in rows:
        return ""
    return (
        f"{rows['accounts']:,} accounts, {rows['contact_relationships']:,} relationship rows, "
        f"{rows['opportunities']:,} opportunities ({rows['opportunity_stage_changes']:,} stage "
        f"changes), {rows['cases']:,} cases ({rows['case_history']:,} history rows), "
        f"{rows['loyalty_accounts']:,} loyalty members ({rows['loyalty_entries']:,} entries, "
        f"{rows['loyalty_lots']:,} lots, {rows['loyalty_allocations']:,} allocations, "
        f"{rows['loyalty_redemptions']:,} redemptions); "
    )


def render_markdown(report: dict[str, Any], charts: list[str]) -> str:
    meta = report["meta"]
    raw = report["baseline_raw"]
    httpx_base = report["baseline_httpx"]
    lines = [
        f"# Workloads, {meta['scale']} scale ({meta['timestamp']})",
        "",
        f"{meta['rows']['contacts']:,} contacts, {meta['rows']['interactions']:,} interactions, "
        f"{meta['rows']['purchases']:,} purchases; {_more_rows(meta['rows'])}"
        f"{meta['concurrency']} concurrent clients, "
        f"{meta['duration_s']:g} s per workload; {meta['cpu_count']} CPUs ({meta['cpu_model']}), "
        f"PostgreSQL {meta['postgres']}, Python {meta['python']}; client, service and database "
        "share the machine. Code: "
        f"{meta['code'].get('commit', '?')[:12]}{' (dirty)' if meta['code'].get('dirty') else ''}.",
        "",
        "## Baselines (same run)",
        "",
        "| baseline | req/s or tps | p50 ms | p95 ms | p99 ms |",
        "|---|---:|---:|---:|---:|",
        f"| Starlette + raw asyncpg PK read, loadgen | {_f(raw['rps'], 0)} | "
        f"{_f(raw['p50_ms'], 2)} | {_f(raw['p95_ms'], 2)} | {_f(raw['p99_ms'], 2)} |",
        f"| the same read, scenarios' httpx client | {_f(httpx_base['requests_per_s'], 0)} | "
        f"{_f(httpx_base['p50_ms'], 2)} | {_f(httpx_base['p95_ms'], 2)} | "
        f"{_f(httpx_base['p99_ms'], 2)} |",
    ]
    bench = report.get("pgbench")
    if bench:
        for name in ("select_only", "tpcb_like"):
            lines.append(
                f"| pgbench {name.replace('_', ' ')} (scale {bench['scale']}) | "
                f"{_f(bench[name]['tps'], 0)} | {_f(bench[name]['latency_avg_ms'], 2)} (avg) | | |"
            )
        ledger = bench.get("loyalty_function")
        if ledger:
            lines.append(
                f"| pgbench ledger write: `crm_loyalty_write` (earn, then redeem as many, on "
                f"{ledger['accounts']} loyalty accounts), the database's own ceiling for the "
                f"loyalty write (no service) | {_f(ledger['writes_per_s'], 0)} writes/s "
                f"({_f(ledger['vs_tpcb'], 3)}x TPC-B) | {_f(ledger['latency_avg_ms'], 2)} "
                "(avg per earn + redeem) | | |"
            )
    lines += [
        "",
        "## Workloads",
        "",
        "Ratios are to the baseline read driven by the same client (httpx); `get_contact` is "
        "also driven by loadgen below, for the ratio to the raw baseline.",
        "",
        "| workload | clients | visits/s | req/s | x baseline | p50 ms | p95 ms | p99 ms | "
        "errors | SQL/req | service CPU | PG CPU | RSS MiB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, work in report["workloads"].items():
        cores = work.get("cpu_cores") or {}
        lines.append(
            f"| {name} | {work['clients']} | {_f(work['visits_per_s'])} | "
            f"{_f(work['requests_per_s'])} | "
            f"{_f(ratio(work['requests_per_s'], httpx_base['requests_per_s']), 3)} | "
            f"{_f(work['p50_ms'])} | {_f(work['p95_ms'])} | {_f(work['p99_ms'])} | "
            f"{work['errors']} | {_f(work['statements_per_request'])} | "
            f"{_f(cores.get('server'), 2)} | {_f(cores.get('postgres'), 2)} | "
            f"{_f(work['service_rss_mib'], 0)} |"
        )
    lines += ["", "### Steps", "",
              "| workload | step | requests | p50 ms | p95 ms | p99 ms | errors |",
              "|---|---|---:|---:|---:|---:|---:|"]  # fmt: skip
    for name, work in report["workloads"].items():
        for step, stats in work["steps"].items():
            lines.append(
                f"| {name} | {step} | {stats['requests']} | {_f(stats['p50_ms'])} | "
                f"{_f(stats['p95_ms'])} | {_f(stats['p99_ms'])} | {stats['errors']} |"
            )
    errors = [
        (name, step, sample)
        for name, work in report["workloads"].items()
        for step, stats in work["steps"].items()
        for sample in stats["error_samples"]
    ]
    if errors:
        lines += ["", "### Error samples", ""]
        lines += [f"- {name} / {step}: {sample['status']} {sample['detail'][:200]}"
                  for name, step, sample in errors[:20]]  # fmt: skip
    get_raw = report.get("get_contact_raw")
    if get_raw:
        paired = ", ".join(
            f"{_f(r['service']['rps'], 0)} / {_f(r['baseline']['rps'], 0)} = {_f(r['ratio'], 3)}x"
            for r in get_raw["rounds"]
        )
        lines += [
            "",
            f"`GET /v1/contacts/{{id}}` by loadgen: {_f(get_raw['rps'], 0)} req/s, "
            f"{_f(get_raw['ratio'], 3)}x the raw baseline loaded right after it "
            f"({_f(get_raw['paired_baseline_rps'], 0)} req/s; the median of "
            f"{len(get_raw['rounds'])} interleaved rounds: {paired}), "
            f"p50 {_f(get_raw['p50_ms'], 2)} ms, p99 {_f(get_raw['p99_ms'], 2)} ms, "
            f"{get_raw['non_2xx'] + get_raw['errors']} errors.",
        ]
    graphql = report.get("graphql_loadgen")
    if graphql:
        failed = graphql["pages_with_errors"]
        lines += [
            "",
            f"`graphql_contact_page` by loadgen, {graphql['connections']} connections, the page "
            f"of {graphql['pages']} contacts in turn: {_f(graphql['rps'], 0)} req/s, "
            f"p50 {_f(graphql['p50_ms'], 2)} ms, p99 {_f(graphql['p99_ms'], 2)} ms, "
            f"{graphql['non_2xx'] + graphql['errors']} errors; pages answered with GraphQL "
            f"errors beforehand: {len(failed)}" + (f" (first: {failed[0]})." if failed else "."),
        ]
        floor = graphql.get("floor")
        if floor:
            lines += [
                "",
                f"The endpoint's floor, loaded right after the page on the same contacts: "
                f"`{floor['query']}` by loadgen, {floor['connections']} connections: "
                f"{_f(floor['rps'], 0)} req/s, {_f(ratio(floor['rps'], raw['rps']), 3)}x the "
                f"raw baseline, p50 {_f(floor['p50_ms'], 2)} ms, "
                f"{floor['non_2xx'] + floor['errors']} errors.",
            ]
    loyalty = report.get("loyalty_loadgen")
    if loyalty:
        for name in LOYALTY_LOADS:
            if name in loyalty:
                load = loyalty[name]
                errors = load["non_2xx"] + load["errors"]
                lines += [
                    "",
                    f"`{name}` by loadgen, {load['connections']} connections: "
                    f"{_f(load['rps'], 0)} req/s, p50 {_f(load['p50_ms'], 2)} ms, "
                    f"p99 {_f(load['p99_ms'], 2)} ms, {errors} errors ({load['statuses']})"
                    + _cpu_note(load.get("cpu_us_per_request") or {})
                    + ".",
                ]
        broken = loyalty["broken_invariants"]
        verdict = f"**broken**: {broken}" if broken else "all hold (no overspend)."
        lines += ["", f"Ledger invariants after the loyalty loads: {verdict}"]
        ledger = (report.get("pgbench") or {}).get("loyalty_function")
        if ledger:
            many = loyalty.get("loyalty_many_accounts")
            reached = (
                f"; `loyalty_many_accounts` by loadgen, through the service, reaches "
                f"{_f(ratio(many['rps'], ledger['writes_per_s']), 3)}x of it"
                if many
                else ""
            )
            broken = ledger["broken_invariants"]
            verdict = f"**broken**: {broken}" if broken else "all hold."
            problems = "; ".join(ledger["errors"])
            lines += [
                "",
                f"The database's own ceiling for the ledger write (no service): "
                f"`crm_loyalty_write` called by pgbench as `{ledger['role']}`, "
                f"{ledger['clients']} clients, an earn then a redemption of as many points on "
                f"one of {ledger['accounts']} accounts, each its own transaction: "
                f"{_f(ledger['writes_per_s'], 0)} writes/s, {_f(ledger['vs_tpcb'], 3)}x "
                f"pgbench TPC-B tps{reached}. Ledger invariants after it: {verdict}"
                + (f" **Errors**: {problems}." if problems else ""),
            ]
    lines += ["", "## Budgets", "", "| budget | target | measured | met |", "|---|---|---:|---|"]
    for budget in report["budgets"]:
        measured = budget["measured"]
        if budget["target"].endswith("x"):
            shown = _f(measured, 3)
        elif budget["target"].endswith("ms"):
            shown = f"{_f(measured)} ms"
        else:
            shown = _f(measured)
        label = budget["budget"]
        if "endpoint_floor" in budget:
            label += (
                f" (informational: a one-field query on the same endpoint, "
                f"{_f(budget['endpoint_floor'], 3)}x)"
            )
        if "database_ceiling" in budget:
            label += (
                f" (informational: the database's own ceiling for this write, "
                f"`crm_loyalty_write` from pgbench with no service, "
                f"{_f(budget['database_ceiling'], 3)}x)"
            )
        lines.append(
            f"| {label} | {budget['target']} | {shown} | {'yes' if budget['met'] else 'no'} |"
        )
    if charts:
        lines += ["", "## Charts", ""] + [f"![{Path(c).stem}]({Path(c).name})" for c in charts]
    return "\n".join(lines) + "\n"


def render_charts(report: dict[str, Any], out: Path, stem: str) -> list[str]:
    """Throughput and latency PNGs; none when matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        _say("matplotlib is not installed (pip install -e '.[bench]'): no charts")
        return []
    workloads = report["workloads"]
    names = list(workloads)
    baseline = report["baseline_httpx"]["requests_per_s"]
    paths = []

    figure, axis = plt.subplots(figsize=(10, 4.8))
    values = [workloads[name]["requests_per_s"] for name in names]
    axis.bar(names, values, color="#3b6ea5")
    axis.axhline(baseline, color="#c0392b", linestyle="--",
                 label=f"baseline PK read, same client ({baseline:,.0f} req/s)")  # fmt: skip
    axis.set_ylabel("requests / s")
    axis.set_title(f"Throughput at {report['meta']['concurrency']} clients "
                   f"({report['meta']['scale']} scale)")  # fmt: skip
    axis.legend()
    axis.tick_params(axis="x", rotation=30)
    figure.tight_layout()
    throughput = out / f"{stem}-throughput.png"
    figure.savefig(throughput, dpi=110)
    plt.close(figure)
    paths.append(str(throughput))

    figure, axis = plt.subplots(figsize=(10, 4.8))
    width = 0.27
    positions = range(len(names))
    for offset, (key, colour) in enumerate(
        (("p50_ms", "#7fb3d5"), ("p95_ms", "#2e86c1"), ("p99_ms", "#1b4f72"))
    ):
        axis.bar([p + (offset - 1) * width for p in positions],
                 [workloads[name][key] or 0 for name in names], width,
                 label=key.replace("_ms", ""), color=colour)  # fmt: skip
    axis.set_xticks(list(positions), names, rotation=30)
    axis.set_yscale("log")
    axis.set_ylabel("latency per request, ms (log)")
    axis.set_title("Latency per request")
    axis.legend()
    figure.tight_layout()
    latency = out / f"{stem}-latency.png"
    figure.savefig(latency, dpi=110)
    plt.close(figure)
    paths.append(str(latency))
    return paths


def write_report(report: dict[str, Any], out: Path) -> tuple[Path, Path, str]:
    out.mkdir(parents=True, exist_ok=True)
    stem = f"workloads-{report['meta']['scale']}-{report['meta']['timestamp']}"
    charts = render_charts(report, out, stem)
    markdown = render_markdown(report, charts)
    json_path, md_path = out / f"{stem}.json", out / f"{stem}.md"
    json_path.write_text(
        json.dumps(report, indent=2, default=str, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    md_path.write_text(markdown, encoding="utf-8")
    if os.environ.get("BENCH_PUBLISH"):
        REPORTS_DIR.mkdir(parents=True, exist_ok=True)
        scale = report["meta"]["scale"]
        for chart in charts:
            shutil.copy(chart, REPORTS_DIR / Path(chart).name.replace(stem, f"workloads-{scale}"))
        published = markdown.replace(stem, f"workloads-{scale}")
        (REPORTS_DIR / f"workloads-{scale}.md").write_text(published, encoding="utf-8")
        _say(f"published to {REPORTS_DIR / f'workloads-{scale}.md'}")
    return json_path, md_path, markdown


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.workloads",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = parser.add_argument
    add("--scale", choices=sorted(SCALES), default="medium")
    add("--only", type=lambda text: [name.strip() for name in text.split(",") if name.strip()],
        help=f"comma-separated workloads (of: {', '.join(SCENARIOS)})")  # fmt: skip
    add("--concurrency", type=int, default=8, help="clients in flight")
    add("--duration", type=float, help="measured seconds per workload (default: by scale)")
    add("--warmup", type=float, help="seconds before each measurement (default: by scale)")
    add("--skip-pgbench", action="store_true")
    add("--publish", action="store_true", help="also copy the summary to bench/reports/")
    add("--seed", type=int, default=42, help="seed of the generated data")
    add("--data-dir", type=Path, help="embedded data directory (kept; reused at the same scale)")
    add("--keep-data", action="store_true", help="keep the temporary data directory")
    add("--code", choices=["head", "worktree"], default="head")
    add("--code-ref", default="HEAD", help="with --code head: what to run")
    add("--out", default=str(PROJECT_ROOT / "bench" / "results"))
    add("--timestamp", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    unknown = sorted(set(args.only or ()) - set(SCENARIOS))
    if unknown:
        parser.error(f"unknown workload(s) {', '.join(unknown)}; of {', '.join(SCENARIOS)}")
    if args.concurrency < 1 or (args.duration is not None and args.duration <= 0):
        parser.error("--concurrency must be at least 1 and --duration above 0")
    args.timestamp = args.timestamp or datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return args


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    if args.publish:
        os.environ["BENCH_PUBLISH"] = "1"
    if os.environ.get(_CHILD):
        sys.exit(search.child_main(args, run, write_report))
    signal.signal(signal.SIGTERM, _interrupt)
    sys.exit(search.parent_main(args, argv, module="bench.workloads", data_file=WORKLOADS_FILE))


if __name__ == "__main__":
    main()
