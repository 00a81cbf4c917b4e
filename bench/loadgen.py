"""A closed-loop HTTP/1.1 load generator on asyncio streams, and a trivial server to test it.

Each of N keep-alive connections sends a request, reads the whole response and sends the next
one, for a warm-up period (not recorded) and then a measured period. Only responses that
complete inside the measured window count, so the figures do not depend on how the run ramps up
or how the last in-flight requests end.

The client must not become the bottleneck: ``serve-trivial`` starts a server that answers
every request with a fixed response and no parsing to speak of, so a run against it shows the
client's own ceiling on this machine. ``wrk`` (Debian package ``wrk``) is used instead when asked
for and installed; nothing beyond the standard library (plus uvloop, when importable) is needed
otherwise.

    python -m bench.loadgen run http://127.0.0.1:8000/healthz -c 16 -d 10
    python -m bench.loadgen serve-trivial --port 8099
    python -m bench.loadgen selftest -c 16 -d 5
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, cast
from urllib.parse import urlsplit

Hook = Callable[[], None]

_HEAD_END = b"\r\n\r\n"
# Responses larger than this in their headers are not what we benchmark; the stream's default
# 64 KiB limit is kept for bodies, which are read with readexactly.
_CONTENT_LENGTH = b"\r\ncontent-length:"
_CHUNKED = b"chunked"
_TRANSFER_ENCODING = b"\r\ntransfer-encoding:"
_CONNECTION_CLOSE = b"\r\nconnection: close"


@dataclass(frozen=True)
class Target:
    """Where to connect and the exact bytes of the request, encoded once."""

    url: str
    host: str
    port: int
    request: bytes


def build_target(
    url: str,
    *,
    method: str = "GET",
    headers: Mapping[str, str] | None = None,
    body: bytes | None = None,
) -> Target:
    if method.upper() == "HEAD":
        # A HEAD response announces a Content-Length it does not send; the reader would wait.
        raise ValueError("HEAD requests are not supported")
    parts = urlsplit(url)
    if parts.scheme != "http" or parts.hostname is None:
        raise ValueError(f"only plain http:// URLs are supported, not {url!r}")
    port = parts.port or 80
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    lines = [f"{method} {path} HTTP/1.1", f"Host: {parts.hostname}:{port}"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    if body is not None:
        lines.append(f"Content-Length: {len(body)}")
    raw = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")
    return Target(url=url, host=parts.hostname, port=port, request=raw)


@dataclass
class LoadResult:
    """One workload's figures. Latencies are in milliseconds; rates per second."""

    engine: str
    url: str
    connections: int
    warmup_s: float
    duration_s: float
    requests: int
    rps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    mean_ms: float
    non_2xx: int
    errors: int
    statuses: dict[str, int] = field(default_factory=dict)
    # CPU the load generator itself used during the window, in cores (1.0 = one core busy):
    # near 1.0 means the client, not the server, may be what limits the rate.
    client_cpu_cores: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an already sorted list (0.0 for an empty one)."""
    if not sorted_values:
        return 0.0
    rank = max(1, min(len(sorted_values), round(fraction * len(sorted_values) + 0.5)))
    return sorted_values[rank - 1]


class _Recorder:
    """Collects completions inside the measured window; shared by all connections."""

    def __init__(self, window_start: float, window_end: float) -> None:
        self.window_start = window_start
        self.window_end = window_end
        self.latencies: list[float] = []
        self.statuses: dict[int, int] = {}
        self.errors = 0

    def response(self, started: float, finished: float, status: int) -> None:
        if self.window_start <= finished < self.window_end:
            self.latencies.append(finished - started)
            self.statuses[status] = self.statuses.get(status, 0) + 1

    def error(self, when: float) -> None:
        if self.window_start <= when < self.window_end:
            self.errors += 1


def _parse_head(head: bytes) -> tuple[int, int | None, bool, bool]:
    """Status, Content-Length (None when absent), chunked, and whether the server closes."""
    status = int(head[9:12])
    lower = head.lower()
    length: int | None = None
    at = lower.find(_CONTENT_LENGTH)
    if at >= 0:
        start = at + len(_CONTENT_LENGTH)
        length = int(lower[start : lower.find(b"\r\n", start)])
    chunked = False
    at = lower.find(_TRANSFER_ENCODING)
    if at >= 0:
        chunked = _CHUNKED in lower[at : lower.find(b"\r\n", at + 2)]
    closes = _CONNECTION_CLOSE in lower or head.startswith(b"HTTP/1.0")
    return status, length, chunked, closes


async def _read_chunked(reader: asyncio.StreamReader) -> None:
    while True:
        size_line = await reader.readuntil(b"\r\n")
        size = int(size_line.split(b";", 1)[0], 16)
        if size == 0:
            # Trailers (normally none) end with an empty line.
            while await reader.readuntil(b"\r\n") != b"\r\n":
                pass
            return
        await reader.readexactly(size + 2)


async def _connection(
    targets: Sequence[Target], offset: int, recorder: _Recorder, stop_at: float
) -> None:
    """Sends the targets' requests in turn, from ``offset`` on, one at a time."""
    clock = time.perf_counter
    requests = [target.request for target in targets]
    target = targets[0]
    index = offset
    reader: asyncio.StreamReader | None = None
    writer: asyncio.StreamWriter | None = None
    try:
        while clock() < stop_at:
            request = requests[index % len(requests)]
            if writer is None or reader is None:
                try:
                    reader, writer = await asyncio.open_connection(target.host, target.port)
                except OSError:
                    recorder.error(clock())
                    # Do not spin on a refused port: that would eat the CPU the server needs.
                    await asyncio.sleep(0.05)
                    continue
            started = clock()
            try:
                # The request is a few hundred bytes and one is in flight per connection, so
                # the transport's buffer never fills and drain() would only cost a call.
                writer.write(request)
                head = await reader.readuntil(_HEAD_END)
                status, length, chunked, closes = _parse_head(head)
                if chunked:
                    await _read_chunked(reader)
                elif length:
                    await reader.readexactly(length)
                elif length is None and status >= 200 and status not in (204, 304):
                    await reader.read()  # delimited by the server closing the connection
                    closes = True
            except (OSError, EOFError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                    ValueError):  # fmt: skip
                recorder.error(clock())
                writer.close()
                reader = writer = None
                continue
            recorder.response(started, clock(), status)
            index += 1
            if closes:
                writer.close()
                reader = writer = None
    finally:
        if writer is not None:
            writer.close()


def _summarise(
    engine: str,
    target_url: str,
    connections: int,
    warmup: float,
    duration: float,
    latencies_s: list[float],
    statuses: Mapping[int, int],
    errors: int,
    client_cpu: float | None,
) -> LoadResult:
    latencies = sorted(value * 1000.0 for value in latencies_s)
    count = len(latencies)
    non_2xx = sum(n for status, n in statuses.items() if not 200 <= int(status) < 300)
    return LoadResult(
        engine=engine,
        url=target_url,
        connections=connections,
        warmup_s=warmup,
        duration_s=duration,
        requests=count,
        rps=count / duration if duration > 0 else 0.0,
        p50_ms=percentile(latencies, 0.50),
        p95_ms=percentile(latencies, 0.95),
        p99_ms=percentile(latencies, 0.99),
        max_ms=latencies[-1] if latencies else 0.0,
        mean_ms=sum(latencies) / count if count else 0.0,
        non_2xx=non_2xx,
        errors=errors,
        statuses={str(status): n for status, n in sorted(statuses.items())},
        client_cpu_cores=client_cpu,
    )


async def run_load(
    target: Target | Sequence[Target],
    *,
    connections: int = 16,
    duration: float = 10.0,
    warmup: float = 2.0,
    on_window_start: Hook | None = None,
    on_window_end: Hook | None = None,
    align: int = 1,
) -> LoadResult:
    """Drive ``target`` with ``connections`` closed-loop connections.

    Several targets (on one server) are sent in turn by each connection, the connections
    starting at evenly spaced points of the list (each rounded down to a multiple of
    ``align``: with requests in pairs, 2 starts every connection at a pair's first), so that
    the whole list is in play at once. A request that failed is sent again.

    ``on_window_start`` and ``on_window_end`` run on the event loop when the measured window
    opens and closes, so a caller can sample server-side counters (CPU time) over exactly the
    window the figures describe. Keep them short: they pause the client.
    """
    loop = asyncio.get_running_loop()
    begin = time.perf_counter()
    window_start = begin + warmup
    window_end = window_start + duration
    recorder = _Recorder(window_start, window_end)
    cpu: dict[str, float] = {}
    closed = asyncio.Event()

    def window_opens() -> None:
        cpu["start"] = time.process_time()
        if on_window_start is not None:
            on_window_start()

    def window_closes() -> None:
        cpu["end"] = time.process_time()
        if on_window_end is not None:
            on_window_end()
        closed.set()

    loop.call_later(warmup, window_opens)
    loop.call_later(warmup + duration, window_closes)
    targets = [target] if isinstance(target, Target) else list(target)
    if not targets or len({(t.host, t.port) for t in targets}) != 1:
        raise ValueError("the targets must be one or more requests to one server")
    tasks = [
        asyncio.create_task(
            _connection(targets, i * len(targets) // connections // align * align, recorder,
                        window_end)
        )
        for i in range(connections)
    ]  # fmt: skip
    # Requests in flight when the window closes are abandoned rather than awaited for long:
    # a server that stalls must not stall the benchmark.
    _done, pending = await asyncio.wait(tasks, timeout=warmup + duration + 5.0)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    # The close hook is a timer; make sure it has fired even if every task ended early.
    await closed.wait()
    client_cpu = (cpu["end"] - cpu["start"]) / duration
    return _summarise(
        "asyncio",
        targets[0].url if len(targets) == 1 else f"{targets[0].url} and {len(targets) - 1} more",
        connections,
        warmup,
        duration,
        recorder.latencies,
        recorder.statuses,
        recorder.errors,
        client_cpu,
    )


def event_loop_runner() -> Callable[[Coroutine[Any, Any, Any]], Any]:
    """``asyncio.run`` on uvloop when it is installed (it is, with uvicorn[standard]): its
    C event loop roughly doubles how many requests one client process can drive."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run
    return uvloop.run


def engine_name() -> str:
    return "asyncio streams" + (" on uvloop" if event_loop_runner() is not asyncio.run else "")


def run_load_sync(target: Target, **kwargs: Any) -> LoadResult:
    result: LoadResult = event_loop_runner()(run_load(target, **kwargs))
    return result


# -- wrk, optional ---------------------------------------------------------------------------

# wrk's summary prints only a fixed set of percentiles; this script reports the ones we use,
# in microseconds, as one JSON line on stdout.
_WRK_SCRIPT = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '\\nBENCH_JSON {"requests":%d,"duration_us":%d,"status_errors":%d,' ..
    '"socket_errors":%d,"p50":%.1f,"p95":%.1f,"p99":%.1f,"max":%.1f,"mean":%.1f}\\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99),
    latency.max, latency.mean))
end
"""


def wrk_path() -> str | None:
    return shutil.which("wrk")


def run_wrk(
    url: str,
    *,
    headers: Mapping[str, str] | None = None,
    connections: int = 16,
    duration: float = 10.0,
    warmup: float = 2.0,
    threads: int = 1,
    on_window_start: Hook | None = None,
    on_window_end: Hook | None = None,
) -> LoadResult:
    """The same workload through ``wrk`` (C, event-driven): for when the asyncio client is
    too slow for a server. wrk has no warm-up setting, so a separate short run warms up.

    wrk counts only statuses above 399 as errors, so ``non_2xx`` here misses 1xx and 3xx.
    """
    binary = wrk_path()
    if binary is None:
        raise RuntimeError("wrk is not installed (Debian: apt-get install -y wrk)")
    header_args: list[str] = []
    for name, value in (headers or {}).items():
        header_args += ["-H", f"{name}: {value}"]
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(_WRK_SCRIPT)
    try:
        common = [binary, "-t", str(threads), "-c", str(connections), *header_args]
        if warmup > 0:
            subprocess.run(
                [*common, "-d", f"{max(1, round(warmup))}s", url],
                check=True,
                capture_output=True,
                timeout=warmup + 30,
            )
        if on_window_start is not None:
            on_window_start()
        started_cpu = _children_cpu()
        output = subprocess.run(
            [*common, "-d", f"{max(1, round(duration))}s", "-s", script.name, url],
            check=True,
            capture_output=True,
            text=True,
            timeout=duration + 30,
        ).stdout
        client_cpu_s = _children_cpu() - started_cpu
        if on_window_end is not None:
            on_window_end()
    finally:
        os.unlink(script.name)
    line = next(x for x in output.splitlines() if x.startswith("BENCH_JSON "))
    data = json.loads(line.removeprefix("BENCH_JSON "))
    measured = data["duration_us"] / 1e6
    count = int(data["requests"])
    return LoadResult(
        engine="wrk",
        url=url,
        connections=connections,
        warmup_s=warmup,
        duration_s=measured,
        requests=count,
        rps=count / measured if measured > 0 else 0.0,
        p50_ms=data["p50"] / 1000,
        p95_ms=data["p95"] / 1000,
        p99_ms=data["p99"] / 1000,
        max_ms=data["max"] / 1000,
        mean_ms=data["mean"] / 1000,
        non_2xx=int(data["status_errors"]),
        errors=int(data["socket_errors"]),
        statuses={},
        client_cpu_cores=client_cpu_s / measured if measured > 0 else None,
    )


def _children_cpu() -> float:
    usage = os.times()
    return usage.children_user + usage.children_system


# -- the trivial server ----------------------------------------------------------------------

_TRIVIAL_BODY = b'{"ok":true}'
_TRIVIAL_RESPONSE = (
    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: "
    + str(len(_TRIVIAL_BODY)).encode()
    + b"\r\n\r\n"
    + _TRIVIAL_BODY
)


class _TrivialProtocol(asyncio.Protocol):
    """Answers each request head with a fixed response: as little server work as HTTP allows,
    so a load run against it measures the client. Requests with bodies are not supported."""

    def __init__(self) -> None:
        self.transport: asyncio.WriteTransport | None = None
        self.pending = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio's, so no isinstance check here.
        self.transport = cast(asyncio.WriteTransport, transport)

    def data_received(self, data: bytes) -> None:
        buffered = self.pending + data
        complete = buffered.count(_HEAD_END)
        if complete and self.transport is not None:
            self.transport.write(_TRIVIAL_RESPONSE * complete)
        self.pending = buffered[buffered.rfind(_HEAD_END) + 4 :] if complete else buffered


async def serve_trivial(host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(_TrivialProtocol, host, port, backlog=1024)
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with server:
        await stop.wait()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_for_port(host: str, port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


@contextlib.contextmanager
def trivial_server(port: int | None = None) -> Any:
    """A trivial server in a child process (so it has a core of its own to compete for, as a
    real server would); yields ``(url, pid)``."""
    port = port or free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.loadgen", "serve-trivial", "--port", str(port)]
    )
    try:
        wait_for_port("127.0.0.1", port)
        yield f"http://127.0.0.1:{port}/", process.pid
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# -- command line ----------------------------------------------------------------------------


def _print_result(result: LoadResult) -> None:
    print(json.dumps(result.as_dict(), indent=2))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.loadgen",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="load one URL")
    run.add_argument("url")
    run.add_argument("-c", "--connections", type=int, default=16)
    run.add_argument("-d", "--duration", type=float, default=10.0)
    run.add_argument("-w", "--warmup", type=float, default=2.0)
    run.add_argument("-H", "--header", action="append", default=[], help="'Name: value'")
    run.add_argument("--engine", choices=["asyncio", "wrk"], default="asyncio")

    serve = commands.add_parser("serve-trivial", help="serve a fixed response (for selftest)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, required=True)

    selftest = commands.add_parser("selftest", help="the client's ceiling, on a trivial server")
    selftest.add_argument("-c", "--connections", type=int, default=16)
    selftest.add_argument("-d", "--duration", type=float, default=5.0)
    selftest.add_argument("-w", "--warmup", type=float, default=1.0)
    selftest.add_argument("--engine", choices=["asyncio", "wrk"], default="asyncio")

    args = parser.parse_args(argv)
    if args.command == "serve-trivial":
        with contextlib.suppress(KeyboardInterrupt):
            event_loop_runner()(serve_trivial(args.host, args.port))
        return
    if args.command == "run":
        headers = {
            name.strip(): value.strip()
            for name, _, value in (item.partition(":") for item in args.header)
        }
        url = args.url
    else:
        headers = {}
    settings = {"connections": args.connections, "duration": args.duration,
                "warmup": args.warmup}  # fmt: skip
    with contextlib.ExitStack() as stack:
        if args.command == "selftest":
            url, _pid = stack.enter_context(trivial_server())
        if args.engine == "wrk":
            _print_result(run_wrk(url, headers=headers, **settings))
        else:
            _print_result(run_load_sync(build_target(url, headers=headers), **settings))


if __name__ == "__main__":
    main()
