"""bench.loadgen's closed loop over several requests (the loyalty workloads send pairs)."""

from __future__ import annotations

import asyncio

import pytest

from bench import loadgen


async def test_each_connection_sends_the_targets_in_turn_from_an_aligned_start() -> None:
    seen: list[list[str]] = []

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        paths: list[str] = []
        seen.append(paths)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                paths.append(head.split(b" ", 2)[1].decode())
                writer.write(b"HTTP/1.1 201 Created\r\ncontent-length: 2\r\n\r\nok")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    targets = [
        loadgen.build_target(f"http://127.0.0.1:{port}/{name}", method="POST", body=b"{}")
        for name in ("earn-a", "redeem-a", "earn-b", "redeem-b", "earn-c", "redeem-c")
    ]
    async with server:
        result = await loadgen.run_load(targets, connections=3, duration=0.3, warmup=0.0, align=2)

    assert result.requests > 0
    assert result.statuses == {"201": result.requests}
    assert len(seen) == 3
    # Starts at 0, 6 // 3 = 2 and 4: each a pair's first; then the list in turn, wrapping.
    assert sorted(paths[0] for paths in seen) == ["/earn-a", "/earn-b", "/earn-c"]
    order = [f"/{name}" for name in ("earn-a", "redeem-a", "earn-b", "redeem-b", "earn-c",
                                     "redeem-c")]  # fmt: skip
    for paths in seen:
        start = order.index(paths[0])
        assert paths == [order[(start + k) % len(order)] for k in range(len(paths))]


def test_targets_on_different_servers_are_refused() -> None:
    first = loadgen.build_target("http://127.0.0.1:8001/a")
    second = loadgen.build_target("http://127.0.0.1:8002/a")
    with pytest.raises(ValueError, match="one server"):
        asyncio.run(loadgen.run_load([first, second], duration=0.1, warmup=0.0))
