"""The foundation benchmark: cold start, and GET /v1/workspace against baselines, in one run.

    .venv/bin/python -m bench.foundation [--duration 10] [--connections 16] [--out bench/results]

In one run, on a brand-new data directory under /tmp:

1. cold start: ``crm serve`` launched until /readyz first answers 200, once on an empty
   directory (initdb + migrations) and once more after a SIGINT stop (warm restart), in
   ``COLD_START_ROUNDS`` rounds on directories of their own (the median is reported);
2. a workspace created with ``crm workspace create``, and ``GET /v1/workspace`` loaded with
   its admin key (also ``GET /healthz``: the service's middleware without database work);
3. the same load, in the same run, on baselines served by uvicorn with one worker each, in
   processes of their own (``bench.baselines``): (a) bare FastAPI returning a tiny JSON,
   (b) bare FastAPI doing one primary-key read through an asyncpg pool on the same embedded
   PostgreSQL, (c) plain Starlette doing that read (the stack's physical limit); and a trivial
   fixed-response server that shows the load generator's own ceiling;
4. a Markdown table (printed, and written with the JSON data to ``<out>/foundation-<ts>.*``).

The machine's cores are shared by client, servers and PostgreSQL, and possibly other work, so
absolute figures move from run to run: read the ratios to the baselines measured in the same
run, and the CPU table, which shows where the cores went during each window.

Everything started here is stopped, and the temporary directory removed, on success, failure
and Ctrl-C alike.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import IO, Any

import psutil

from app.db.embedded import EmbeddedPostgres
from app.db.scratch import plain_dsn
from bench import loadgen
from bench.baselines import APPS

PROJECT_ROOT = Path(__file__).resolve().parent.parent
READY_POLL_S = 0.02
START_TIMEOUT_S = 300.0
STOP_TIMEOUT_S = 45.0  # crm serve allows 20 s of graceful shutdown, then stops PostgreSQL
MIB = 1024 * 1024


class BenchError(RuntimeError):
    """The benchmark could not run as intended."""


# -- processes -------------------------------------------------------------------------------


@dataclass
class Server:
    name: str
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


class Processes:
    """Every server this run starts; ``stop_all`` stops whatever is still running."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.running: list[Server] = []

    def start(self, name: str, command: list[str], env: Mapping[str, str], port: int) -> Server:
        log = self.log_dir / f"{name}.log"
        with log.open("ab") as output:
            process = subprocess.Popen(
                command,
                env=dict(env),
                cwd=PROJECT_ROOT,
                stdin=subprocess.DEVNULL,
                # A file, not a pipe: the service logs one line per request, and a pipe
                # nobody reads would fill up and stall it.
                stdout=output,
                stderr=subprocess.STDOUT,
                # Own session: a Ctrl-C in the terminal reaches only this script, which then
                # stops the servers itself, in order, instead of all of them at once.
                start_new_session=True,
            )
        server = Server(name=name, process=process, port=port, log=log)
        self.running.append(server)
        return server

    def stop(self, server: Server) -> float:
        """SIGINT (what Ctrl-C sends: crm serve stops its PostgreSQL then), and seconds taken."""
        started = time.perf_counter()
        if server.process.poll() is None:
            server.process.send_signal(signal.SIGINT)
            try:
                server.process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                server.process.kill()
                server.process.wait()
        if server in self.running:
            self.running.remove(server)
        return time.perf_counter() - started

    def stop_all(self) -> None:
        for server in reversed(list(self.running)):
            self.stop(server)

    def tail_logs(self, stream: IO[str], lines: int = 25) -> None:
        for log in sorted(self.log_dir.glob("*.log")):
            content = log.read_text(errors="replace").splitlines()[-lines:]
            if content:
                print(f"--- last lines of {log.name} ---", file=stream)
                print("\n".join(content), file=stream)


def http_get(port: int, path: str, headers: Mapping[str, str] | None = None) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2.0)
    try:
        connection.request("GET", path, headers=dict(headers or {}))
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def wait_until_ok(server: Server, path: str, timeout: float = START_TIMEOUT_S) -> float:
    """Poll ``path`` every 20 ms until it answers 200; the ``perf_counter`` time it did."""
    deadline = time.perf_counter() + timeout
    while True:
        if server.process.poll() is not None:
            raise BenchError(
                f"{server.name} exited with status {server.process.returncode} before "
                f"{path} answered 200"
            )
        with contextlib.suppress(OSError, http.client.HTTPException):
            status, _ = http_get(server.port, path)
            if status == 200:
                return time.perf_counter()
        if time.perf_counter() > deadline:
            raise BenchError(f"{server.name}: {path} did not answer 200 within {timeout:.0f} s")
        time.sleep(READY_POLL_S)


def crm_command() -> str:
    # The entry point installed next to this interpreter, so the benchmark measures the
    # project it runs in even when another ``crm`` is on PATH.
    beside = Path(sys.executable).with_name("crm")
    if beside.exists():
        return str(beside)
    found = shutil.which("crm")
    if found is None:
        raise BenchError("the crm command is not installed (pip install -e .)")
    return found


def crm_environment(data_dir: Path) -> dict[str, str]:
    # The service's own defaults, or whatever CRM_ settings the caller exported (to try a
    # pool size, say), except where the benchmark decides: a private embedded database in the
    # temporary directory, whatever database this shell points at.
    excluded = {"CRM_DATABASE_URL", "CRM_DATABASE_OWNER_URL", "CRM_DATA_DIR"}
    env = {k: v for k, v in os.environ.items() if k not in excluded}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    env["CRM_DATA_DIR"] = str(data_dir)
    env["PYTHONPATH"] = str(PROJECT_ROOT)
    return env


# -- CPU accounting --------------------------------------------------------------------------


def _cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


class CpuSampler:
    """CPU used during the measured window by the server, by PostgreSQL (postmaster and every
    backend) and by the whole machine, so a window disturbed by other work shows up as such."""

    def __init__(self, server_pid: int, pgdata: Path | None) -> None:
        self.server_pid = server_pid
        self.pgdata = pgdata
        self._before: dict[str, dict[int, float]] = {}
        self._after: dict[str, dict[int, float]] = {}
        self._machine: list[float] = []
        self._clock: list[float] = []

    def _postgres_pids(self) -> list[int]:
        if self.pgdata is None:
            return []
        try:
            postmaster = int((self.pgdata / "postmaster.pid").read_text().split()[0])
            parent = psutil.Process(postmaster)
            return [postmaster, *(child.pid for child in parent.children(recursive=True))]
        except (OSError, ValueError, IndexError, psutil.Error):
            return []

    def _snapshot(self) -> dict[str, dict[int, float]]:
        groups: dict[str, dict[int, float]] = {"server": {}, "postgres": {}}
        for group, pids in (("server", [self.server_pid]), ("postgres", self._postgres_pids())):
            for pid in pids:
                with contextlib.suppress(psutil.Error):
                    groups[group][pid] = _cpu_seconds(psutil.Process(pid))
        return groups

    @staticmethod
    def _machine_busy() -> float:
        times = psutil.cpu_times()
        return float(sum(times) - times.idle - getattr(times, "iowait", 0.0))

    def start(self) -> None:
        self._before = self._snapshot()
        self._machine = [self._machine_busy()]
        self._clock = [time.perf_counter()]

    def stop(self) -> None:
        self._after = self._snapshot()
        self._machine.append(self._machine_busy())
        self._clock.append(time.perf_counter())

    def cores(self, client_cores: float | None) -> dict[str, float | None]:
        if len(self._clock) != 2:
            return {}
        wall = self._clock[1] - self._clock[0]

        def used(group: str) -> float:
            # A backend that appeared inside the window counts from zero; one that ended in it
            # is lost (rare: the pools keep their connections).
            before = self._before.get(group, {})
            seconds = sum(t - before.get(pid, 0.0) for pid, t in self._after[group].items())
            return seconds / wall

        server = used("server")
        postgres = used("postgres")
        machine = (self._machine[1] - self._machine[0]) / wall
        other = machine - server - postgres - (client_cores or 0.0)
        return {
            "server": server,
            "postgres": postgres,
            "client": client_cores,
            "machine": machine,
            "other": max(other, 0.0),
        }


# -- workloads -------------------------------------------------------------------------------


@dataclass
class Workload:
    key: str
    label: str
    server: Server
    path: str
    headers: dict[str, str] = field(default_factory=dict)


def measure(workload: Workload, args: argparse.Namespace, pgdata: Path) -> dict[str, Any]:
    sampler = CpuSampler(workload.server.pid, pgdata)
    url = workload.server.url(workload.path)
    settings: dict[str, Any] = {
        "connections": args.connections,
        "duration": args.duration,
        "warmup": args.warmup,
        "on_window_start": sampler.start,
        "on_window_end": sampler.stop,
    }
    print(f"  {workload.label} ...", file=sys.stderr, flush=True)
    if args.engine == "wrk":
        result = loadgen.run_wrk(url, headers=workload.headers, **settings)
    else:
        target = loadgen.build_target(url, headers=workload.headers)
        result = loadgen.run_load_sync(target, **settings)
    rss = psutil.Process(workload.server.pid).memory_info().rss
    print(
        f"    {result.rps:,.0f} req/s, p50 {result.p50_ms:.2f} ms, "
        f"non-2xx {result.non_2xx}, errors {result.errors}",
        file=sys.stderr,
        flush=True,
    )
    cores = sampler.cores(result.client_cpu_cores)
    server_cores = cores.get("server")
    return {
        "key": workload.key,
        "label": workload.label,
        **result.as_dict(),
        "cpu_cores": cores,
        # What one request costs the server process in CPU, whatever else competed for the
        # cores: steadier from run to run than req/s on a shared machine.
        "server_cpu_us_per_request": (
            server_cores / result.rps * 1e6 if server_cores is not None and result.rps else None
        ),
        "server_rss_bytes": rss,
    }


# -- profiling (optional) --------------------------------------------------------------------

_FRAME = re.compile(r"^(?P<name>.*) \((?P<file>[^()]*?)(?::\d+)?\)$")


def _short_file(path: str) -> str:
    # py-spy usually shortens paths itself (``asyncpg/connection.py``); some installs give
    # absolute ones, which are cut to the same form so that packages group together.
    for marker in ("site-packages/", "/lib/python3."):
        at = path.find(marker)
        if at >= 0:
            rest = path[at + len(marker) :]
            return rest.split("/", 1)[1] if marker.startswith("/lib") and "/" in rest else rest
    return path.removeprefix(str(PROJECT_ROOT) + "/")


def _package(short_file: str) -> str:
    head = short_file.split("/", 1)[0]
    return head.removesuffix(".py") if head else short_file


def summarise_py_spy(raw: str, top: int = 20) -> dict[str, Any]:
    """Self and inclusive sample shares by function, and self share by package, from
    py-spy's collapsed-stack (``--format raw``) output.

    py-spy sees Python frames only: time in C and Cython code (asyncpg's protocol, uvloop,
    the socket system calls beneath them) counts as self time of the Python line that called
    it, typically an ``await`` in asyncpg or uvicorn's ``send``.
    """
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    inclusive_app: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames: list[str] = []
        for frame in stack.split(";"):
            match = _FRAME.match(frame)
            if match is None:
                continue  # process and thread labels
            frames.append(f"{match['name']} ({_short_file(match['file'])})")
        if not frames:
            continue
        total += count
        own[frames[-1]] += count
        packages[_package(frames[-1].rpartition(" (")[2].rstrip(")"))] += count
        for name in set(frames):
            inclusive[name] += count
        # The project's own functions, inclusive, while handling a request (below uvicorn's
        # ASGI call, so not `crm serve` itself): what a change in app/ can act on.
        asgi = next(
            (
                i
                for i, name in enumerate(frames)
                if name.startswith("RequestResponseCycle.run_asgi ")
            ),
            None,
        )
        if asgi is not None:
            for name in set(frames[asgi:]):
                if " (app/" in name:
                    inclusive_app[name] += count

    def shares(counter: Counter[str]) -> list[dict[str, Any]]:
        return [
            {"name": name, "share": n / total if total else 0.0}
            for name, n in counter.most_common(top)
        ]

    return {
        "samples": total,
        "self": shares(own),
        "inclusive": shares(inclusive),
        "inclusive_app": shares(inclusive_app),
        "self_by_package": shares(packages),
    }


def py_spy_path() -> str | None:
    beside = Path(sys.executable).with_name("py-spy")
    return str(beside) if beside.exists() else shutil.which("py-spy")


def profile(workload: Workload, args: argparse.Namespace, out_file: Path) -> dict[str, Any]:
    """Sample the server with py-spy while it is under the same load (not a measured run:
    the sampler takes CPU from the cores under test)."""
    binary = py_spy_path()
    if binary is None:
        raise BenchError("--profile needs py-spy (.venv/bin/pip install py-spy)")
    spy: list[subprocess.Popen[bytes]] = []
    seconds = max(1, round(args.duration))

    def start_spy() -> None:
        spy.append(
            subprocess.Popen(
                [binary, "record", "--pid", str(workload.server.pid), "--duration",
                 str(seconds), "--rate", "200", "--format", "raw", "--output", str(out_file)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )  # fmt: skip

    print(f"  profiling {workload.label} with py-spy ...", file=sys.stderr, flush=True)
    target = loadgen.build_target(workload.server.url(workload.path), headers=workload.headers)
    try:
        # The load outlasts the sampler by a second so every sample is taken under load.
        loadgen.run_load_sync(
            target,
            connections=args.connections,
            duration=seconds + 1.0,
            warmup=args.warmup,
            on_window_start=start_spy,
        )
        if not spy or spy[0].wait(timeout=60) != 0 or not out_file.exists():
            raise BenchError("py-spy did not produce a profile (is ptrace permitted?)")
    finally:
        for process in spy:
            if process.poll() is None:
                process.kill()
                process.wait()
    return summarise_py_spy(out_file.read_text(errors="replace"))


# -- report ----------------------------------------------------------------------------------


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return numerator / denominator


def _fmt(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}"


def compare(results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Every workload's ratio to (c), and GET /v1/workspace's ratios and per-request overheads
    to each baseline. Adds the ratios to the rows in place."""
    comparisons: dict[str, Any] = {}
    workspace = results.get("crm_workspace")
    limit = results.get("c")
    for row in results.values():
        row["rps_vs_c"] = ratio(row["rps"], limit["rps"] if limit else None)
        row["p50_vs_c"] = ratio(row["p50_ms"], limit["p50_ms"] if limit else None)
    if workspace is None:
        return comparisons
    for key in ("a", "b", "c"):
        base = results.get(key)
        if base is None:
            continue
        comparisons[key] = {
            "rps_ratio": ratio(workspace["rps"], base["rps"]),
            "p50_ratio": ratio(workspace["p50_ms"], base["p50_ms"]),
            # With one single-threaded worker saturated, 1/rps is the worker's time per
            # request; the difference is what the service adds on top of the baseline.
            "overhead_us_from_rps": (
                1e6 / workspace["rps"] - 1e6 / base["rps"]
                if workspace["rps"] and base["rps"]
                else None
            ),
            "overhead_us_from_p50": (workspace["p50_ms"] - base["p50_ms"]) * 1000,
            "server_cpu_ratio": ratio(
                workspace["server_cpu_us_per_request"], base["server_cpu_us_per_request"]
            ),
        }
    return comparisons


def _cold_start_note(cold: dict[str, Any]) -> str:
    rounds = cold.get("rounds") or [cold]
    return (
        f"{len(rounds)} round(s), each a first start on an empty data directory and then a "
        "restart on it; the median of the rounds, and each round in the order run."
    )


def _each(cold: dict[str, Any], key: str) -> str:
    return ", ".join(_fmt(r[key]) for r in cold.get("rounds") or [cold])


def render_markdown(report: dict[str, Any]) -> str:
    meta = report["meta"]
    cold = report["cold_start"]
    rows: list[dict[str, Any]] = report["workloads"]
    by_key = {row["key"]: row for row in rows}
    lines = [
        f"# Foundation benchmark, {meta['timestamp']}",
        "",
        f"Commit `{meta['git']['commit']}`"
        + (" with uncommitted changes" if meta["git"]["dirty"] else "")
        + ".",
        "",
        f"{meta['cpu_count']} cores ({meta['cpu_model']}), Python {meta['python']}; "
        f"{meta['connections']} connections, {meta['duration_s']:g} s measured after "
        f"{meta['warmup_s']:g} s warm-up, load generator `{meta['engine']}`; every server is "
        "uvicorn with 1 worker. Client, servers and PostgreSQL share the cores: compare the "
        "ratios, which come from the same run, rather than absolute figures.",
        "",
        "## Cold start (launch of `crm serve` to the first 200 from /readyz)",
        "",
        _cold_start_note(cold),
        "",
        "| start | seconds (median) | each round |",
        "|---|---:|---|",
        f"| first: initdb + migrations | {_fmt(cold['first_start_s'])} | "
        f"{_each(cold, 'first_start_s')} |",
        f"| warm restart, same data dir | {_fmt(cold['warm_restart_s'])} | "
        f"{_each(cold, 'warm_restart_s')} |",
        f"| stop after the first start (SIGINT to exit, PostgreSQL included) "
        f"| {_fmt(cold['first_stop_s'])} | {_each(cold, 'first_stop_s')} |",
        "",
        "## Throughput and latency",
        "",
        "| workload | req/s | p50 ms | p95 ms | p99 ms | non-2xx | errors "
        "| req/s ÷ (c) | p50 ÷ (c) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['label']} | {row['rps']:,.0f} | {row['p50_ms']:.2f} | {row['p95_ms']:.2f} "
            f"| {row['p99_ms']:.2f} | {row['non_2xx']} | {row['errors']} "
            f"| {_fmt(row['rps_vs_c'])} | {_fmt(row['p50_vs_c'])} |"
        )
    comparisons = report["comparisons"]
    if comparisons:
        lines += [
            "",
            "## GET /v1/workspace against each baseline",
            "",
            "| baseline | req/s ratio | p50 ratio | overhead µs/request (1e6/rps) "
            "| overhead µs (p50) | server CPU per request, ratio |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for key, item in comparisons.items():
            lines.append(
                f"| {by_key[key]['label']} | {_fmt(item['rps_ratio'])} "
                f"| {_fmt(item['p50_ratio'])} | {_fmt(item['overhead_us_from_rps'], 0)} "
                f"| {_fmt(item['overhead_us_from_p50'], 0)} "
                f"| {_fmt(item['server_cpu_ratio'])} |"
            )
        if "a" in comparisons:
            over = comparisons["a"]
            lines += [
                "",
                "Per-request overhead of GET /v1/workspace over the bare FastAPI JSON endpoint: "
                f"**{_fmt(over['overhead_us_from_rps'], 0)} µs** from throughput "
                f"(1e6/rps difference), **{_fmt(over['overhead_us_from_p50'], 0)} µs** at p50.",
            ]
    trivial = by_key.get("trivial")
    workspace = by_key.get("crm_workspace")
    if trivial and workspace and workspace["rps"]:
        lines += [
            "",
            f"Load generator ceiling: {trivial['rps']:,.0f} req/s against the trivial server, "
            f"{trivial['rps'] / workspace['rps']:.1f}x GET /v1/workspace"
            + (f" and {trivial['rps'] / by_key['a']['rps']:.1f}x (a)" if "a" in by_key else "")
            + ".",
        ]
    lines += [
        "",
        "## CPU during each measured window (cores; 'other' is work outside this benchmark)",
        "",
        "| workload | server | server CPU µs/request | PostgreSQL | load generator | other "
        "| machine |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        cpu = row["cpu_cores"]
        lines.append(
            f"| {row['label']} | {_fmt(cpu.get('server'))} "
            f"| {_fmt(row.get('server_cpu_us_per_request'), 0)} | {_fmt(cpu.get('postgres'))} "
            f"| {_fmt(cpu.get('client'))} | {_fmt(cpu.get('other'))} "
            f"| {_fmt(cpu.get('machine'))} |"
        )
    memory = report["memory"]
    lines += [
        "",
        "## Memory (RSS of the server process)",
        "",
        "| server | RSS MiB |",
        "|---|---:|",
        f"| crm serve, idle after start | {memory['crm_idle_rss_bytes'] / MIB:.1f} |",
        f"| crm serve, after the load | {memory['crm_after_load_rss_bytes'] / MIB:.1f} |",
    ]
    for row in rows:
        if not row["key"].startswith("crm"):
            lines.append(
                f"| {row['label']}, after its load | {row['server_rss_bytes'] / MIB:.1f} |"
            )
    summary = report.get("profile")
    if summary:
        lines += [
            "",
            f"## Where GET /v1/workspace spends its time (py-spy, {summary['samples']} samples)",
            "",
            "| self time by package | share |",
            "|---|---:|",
            *(f"| {x['name']} | {x['share']:.1%} |" for x in summary["self_by_package"][:12]),
            "",
            "| function (self) | share |",
            "|---|---:|",
            *(f"| `{x['name']}` | {x['share']:.1%} |" for x in summary["self"][:15]),
            "",
            "| app/ function (inclusive) | share |",
            "|---|---:|",
            *(f"| `{x['name']}` | {x['share']:.1%} |" for x in summary["inclusive_app"][:15]),
            "",
            "py-spy sees Python frames only: time in asyncpg's Cython protocol, uvloop and the "
            "socket system calls beneath them shows as self time of the calling Python line "
            "(an `await` in asyncpg, uvicorn's `send`).",
        ]
    return "\n".join(lines) + "\n"


# -- the run ---------------------------------------------------------------------------------


# Starts timed, each pair (a first start on an empty data directory, then a restart on it) in a
# directory of its own: one start moves by a second or more with the machine's other work, so
# the report gives the median and every round.
COLD_START_ROUNDS = 3


def cold_start(
    processes: Processes, crm: str, env: Mapping[str, str]
) -> tuple[Server, dict[str, Any]]:
    """``COLD_START_ROUNDS`` timed first starts and restarts of crm serve; the last restart
    (on the run's own data directory) is left running for the load."""
    data_dir = Path(env["CRM_DATA_DIR"])
    rounds: list[dict[str, Any]] = []
    for number in range(1, COLD_START_ROUNDS):
        where = data_dir.with_name(f"{data_dir.name}-cold-{number}")
        server, timings = _timed_starts(processes, crm, env, where, number)
        processes.stop(server)
        shutil.rmtree(where, ignore_errors=True)
        rounds.append(timings)
    server, timings = _timed_starts(processes, crm, env, data_dir, COLD_START_ROUNDS)
    rounds.append(timings)
    summary: dict[str, Any] = {
        key: statistics.median(r[key] for r in rounds)
        for key in ("first_start_s", "warm_restart_s", "first_stop_s")
    }
    summary["postgres_stopped_before_restart"] = all(
        r["postgres_stopped_before_restart"] for r in rounds
    )
    summary["rounds"] = rounds
    return server, summary


def _timed_starts(
    processes: Processes, crm: str, env: Mapping[str, str], data_dir: Path, number: int
) -> tuple[Server, dict[str, Any]]:
    """A first start of crm serve on ``data_dir`` (emptied first), its stop, and a restart,
    left running."""
    shutil.rmtree(data_dir, ignore_errors=True)
    env = {**env, "CRM_DATA_DIR": str(data_dir)}
    timings: dict[str, Any] = {}
    say = f"cold start {number}/{COLD_START_ROUNDS}:"
    print(f"{say} first (initdb + migrations) ...", file=sys.stderr, flush=True)
    port = loadgen.free_port()
    launched = time.perf_counter()
    first = processes.start("crm-first", [crm, "serve", "--port", str(port)], env, port)
    timings["first_start_s"] = wait_until_ok(first, "/readyz") - launched
    timings["first_stop_s"] = processes.stop(first)
    # crm serve stops its PostgreSQL on the way out; if it did not, the restart below would
    # skip starting the database and look faster than it is.
    timings["postgres_stopped_before_restart"] = not EmbeddedPostgres(data_dir).is_running()
    print(f"{say} warm restart ...", file=sys.stderr, flush=True)
    port = loadgen.free_port()
    launched = time.perf_counter()
    server = processes.start("crm", [crm, "serve", "--port", str(port)], env, port)
    timings["warm_restart_s"] = wait_until_ok(server, "/readyz") - launched
    return server, timings


def create_workspace(crm: str, env: Mapping[str, str]) -> dict[str, Any]:
    completed = subprocess.run(
        [crm, "workspace", "create", "Bench", "--json"],
        env=dict(env),
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    if completed.returncode != 0:
        raise BenchError(f"crm workspace create failed: {completed.stderr.strip()}")
    created: dict[str, Any] = json.loads(completed.stdout)
    return created


def start_baselines(processes: Processes, dsn: str, workspace_id: str) -> dict[str, Server]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRM_")}
    env.update({"BENCH_DSN": dsn, "BENCH_ID": workspace_id, "PYTHONPATH": str(PROJECT_ROOT)})
    servers: dict[str, Server] = {}
    port = loadgen.free_port()
    servers["trivial"] = processes.start(
        "trivial",
        [sys.executable, "-m", "bench.loadgen", "serve-trivial", "--port", str(port)],
        env,
        port,
    )
    for key, app in (("a", APPS["fastapi_json"]), ("b", APPS["fastapi_asyncpg"]),
                     ("c", APPS["starlette_asyncpg"])):  # fmt: skip
        port = loadgen.free_port()
        # The same uvicorn defaults as crm serve (uvloop, httptools, no access log), so the
        # comparison is about the application, not the server settings.
        command = [sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1",
                   "--port", str(port), "--workers", "1", "--no-access-log",
                   "--log-level", "warning"]  # fmt: skip
        servers[key] = processes.start(f"baseline-{key}", command, env, port)
    for server in servers.values():
        wait_until_ok(server, "/", timeout=60)
    return servers


def _interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _ignore_signals() -> None:
    # A second Ctrl-C during clean-up would leave servers or the database running.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def _stop_embedded(data_dir: Path) -> None:
    if not (data_dir / "pg" / "PG_VERSION").exists():
        return
    try:
        EmbeddedPostgres(data_dir).stop()
    except Exception as exc:  # clean-up goes on: the temp dir must still go
        print(f"warning: could not stop the embedded PostgreSQL: {exc}", file=sys.stderr)


def _remove(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def run(args: argparse.Namespace) -> dict[str, Any]:
    crm = crm_command()
    if args.engine == "wrk" and loadgen.wrk_path() is None:
        raise BenchError("--engine wrk needs wrk (apt-get install -y wrk)")
    timestamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    temp = Path(tempfile.mkdtemp(prefix="crm-bench-", dir="/tmp"))
    data_dir = temp / "data"
    env = crm_environment(data_dir)
    layout = EmbeddedPostgres(data_dir).layout

    with contextlib.ExitStack() as cleanup:
        # Callbacks run last-registered first: stop the servers, then PostgreSQL, then delete.
        cleanup.callback(_remove, temp)
        if not layout.socket_dir.is_relative_to(temp):
            cleanup.callback(_remove, layout.socket_dir)
        cleanup.callback(_stop_embedded, data_dir)
        processes = Processes(temp / "logs")
        cleanup.callback(processes.stop_all)
        cleanup.callback(_ignore_signals)
        try:
            report = _run(args, processes, crm, env, data_dir, timestamp)
        except Exception:
            processes.tail_logs(sys.stderr)
            raise
    return report


def _run(
    args: argparse.Namespace,
    processes: Processes,
    crm: str,
    env: Mapping[str, str],
    data_dir: Path,
    timestamp: str,
) -> dict[str, Any]:
    service, cold = cold_start(processes, crm, env)
    print("creating a workspace ...", file=sys.stderr, flush=True)
    created = create_workspace(crm, env)
    auth = {"Authorization": f"Bearer {created['api_key']}"}
    status, body = http_get(service.port, "/v1/workspace", auth)
    if status != 200:
        raise BenchError(f"GET /v1/workspace answered {status}: {body[:200]!r}")
    crm_idle_rss = psutil.Process(service.pid).memory_info().rss

    dsn = plain_dsn(EmbeddedPostgres(data_dir).superuser_dsn())
    print("starting the baselines ...", file=sys.stderr, flush=True)
    baselines = start_baselines(processes, dsn, created["workspace_id"])
    pgdata = EmbeddedPostgres(data_dir).layout.pgdata

    print("measuring:", file=sys.stderr, flush=True)
    workloads = [
        Workload("trivial", "load generator ceiling: trivial server", baselines["trivial"], "/"),
        Workload("a", "(a) FastAPI, JSON {ok: true}", baselines["a"], "/"),
        Workload("b", "(b) FastAPI + asyncpg, PK read", baselines["b"], "/"),
        Workload("c", "(c) Starlette + asyncpg, PK read", baselines["c"], "/"),
        Workload("crm_healthz", "crm GET /healthz (no auth, no DB)", service, "/healthz"),
        Workload(
            "crm_workspace",
            "crm GET /v1/workspace",
            service,
            "/v1/workspace",
            auth,
        ),
    ]
    runs: dict[str, list[dict[str, Any]]] = {workload.key: [] for workload in workloads}
    for round_number in range(args.rounds):
        if args.rounds > 1:
            print(f" round {round_number + 1} of {args.rounds}", file=sys.stderr, flush=True)
        # Rounds go through every workload in turn, so a burst of outside load lands on
        # one round of each rather than on every round of one workload.
        for workload in workloads:
            runs[workload.key].append(measure(workload, args, pgdata))
    results = {key: median_run(measured) for key, measured in runs.items()}
    crm_after_rss = psutil.Process(service.pid).memory_info().rss

    profile_summary: dict[str, Any] | None = None
    if args.profile:
        try:
            # The raw stacks (megabytes) stay in the temporary directory; the summary goes
            # into the report.
            profile_summary = profile(workloads[-1], args, data_dir.parent / "py-spy.txt")
        except BenchError as exc:
            # The measurements above stand without a profile; do not throw them away.
            print(f"warning: no profile: {exc}", file=sys.stderr)

    meta = {
        "timestamp": timestamp,
        "cpu_count": psutil.cpu_count(),
        "cpu_model": _cpu_model(),
        "python": platform.python_version(),
        "connections": args.connections,
        "duration_s": args.duration,
        "warmup_s": args.warmup,
        "rounds": args.rounds,
        "engine": "wrk" if args.engine == "wrk" else loadgen.engine_name(),
        "crm_environment": {k: v for k, v in env.items() if k.startswith("CRM_")},
        "git": _git_state(),
    }
    return {
        "meta": meta,
        "cold_start": cold,
        "workloads": list(results.values()),
        "comparisons": compare(results),
        "memory": {
            "crm_idle_rss_bytes": crm_idle_rss,
            "crm_after_load_rss_bytes": crm_after_rss,
        },
        "profile": profile_summary,
    }


def median_run(measured: list[dict[str, Any]]) -> dict[str, Any]:
    """The round with the median throughput (the lower one of an even count), with every
    round's figure kept beside it."""
    ordered = sorted(measured, key=lambda run: float(run["rps"]))
    chosen = dict(ordered[(len(ordered) - 1) // 2])
    chosen["rounds_rps"] = [run["rps"] for run in measured]
    return chosen


def _git_state() -> dict[str, Any]:
    """The commit measured, and whether the work tree differed from it (figures from a dirty
    tree cannot be reproduced from the commit alone)."""

    def git(*arguments: str) -> str:
        return subprocess.run(
            ["git", *arguments], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()

    try:
        return {"commit": git("rev-parse", "HEAD"), "dirty": bool(git("status", "--porcelain"))}
    except (OSError, subprocess.CalledProcessError):
        return {"commit": None, "dirty": None}


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def write_report(report: dict[str, Any], out: Path) -> tuple[Path, Path, str]:
    out.mkdir(parents=True, exist_ok=True)
    stem = f"foundation-{report['meta']['timestamp']}"
    markdown = render_markdown(report)
    json_path = out / f"{stem}.json"
    md_path = out / f"{stem}.md"
    json_path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    md_path.write_text(markdown, encoding="utf-8")
    return json_path, md_path, markdown


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.foundation",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds per load")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds before")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="measure every workload this many times, interleaved; report the median",
    )
    parser.add_argument("--out", default="bench/results", help="folder for the .json and .md")
    parser.add_argument(
        "--engine",
        choices=["asyncio", "wrk"],
        default="asyncio",
        help="load generator; wrk must be installed",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="also sample GET /v1/workspace with py-spy (not a measured run)",
    )
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.connections < 1 or args.duration <= 0 or args.warmup < 0:
        parser.error("--rounds and --connections must be at least 1, --duration above 0")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    # SIGTERM, and SIGINT even when a shell started us with it ignored (a background job),
    # end the run through KeyboardInterrupt, which the clean-up handles.
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        report = run(args)
    except KeyboardInterrupt:
        print("interrupted; everything started was stopped", file=sys.stderr)
        sys.exit(130)
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
    json_path, md_path, markdown = write_report(report, Path(args.out))
    print(markdown)
    print(f"wrote {json_path} and {md_path}", file=sys.stderr)


if __name__ == "__main__":
    main()
