"""Baseline ASGI apps the service is compared with, each served by uvicorn in its own process.

    fastapi_json       a bare FastAPI endpoint returning {"ok": true}: the framework's floor
    fastapi_asyncpg    a bare FastAPI endpoint doing one primary-key read through an asyncpg pool
    starlette_asyncpg  the same read behind a plain Starlette route: the stack's physical limit

Configured from the environment, because uvicorn imports them by name in a fresh process:

    BENCH_DSN        plain ``postgresql://`` DSN (the asyncpg apps)
    BENCH_ID         the primary key to read (a workspace id)
    BENCH_POOL_MIN   / BENCH_POOL_MAX   pool size, default 10 / 20 (the service's pool_size and
                     pool_size + max_overflow, so neither side waits for a connection sooner)

    python -m uvicorn bench.baselines:starlette_app --port 8101 --no-access-log
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
from fastapi import FastAPI, Request
from starlette.applications import Starlette
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

_READ = "SELECT id, name FROM workspaces WHERE id = $1"


def _row_id() -> uuid.UUID:
    return uuid.UUID(os.environ["BENCH_ID"])


async def _create_pool() -> asyncpg.Pool:
    pool = await asyncpg.create_pool(
        os.environ["BENCH_DSN"],
        min_size=int(os.environ.get("BENCH_POOL_MIN", "10")),
        max_size=int(os.environ.get("BENCH_POOL_MAX", "20")),
    )
    if pool is None:  # pragma: no cover - only None when the pool is created un-awaited
        raise RuntimeError("asyncpg returned no pool")
    return pool


async def _read_row(pool: asyncpg.Pool, row_id: uuid.UUID) -> dict[str, Any]:
    row = await pool.fetchrow(_READ, row_id)
    if row is None:
        # A wrong BENCH_ID must show up as errors in the results, not as fast 200s.
        raise LookupError(f"no workspace {row_id}")
    return {"id": str(row["id"]), "name": row["name"]}


# -- (a) bare FastAPI, no I/O ------------------------------------------------------------------

fastapi_json_app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)


@fastapi_json_app.get("/")
async def ok() -> dict[str, bool]:
    return {"ok": True}


# -- (b) bare FastAPI, one primary-key read ----------------------------------------------------


@contextlib.asynccontextmanager
async def _fastapi_lifespan(app: FastAPI) -> AsyncIterator[None]:
    app.state.pool = await _create_pool()
    app.state.row_id = _row_id()
    try:
        yield
    finally:
        await app.state.pool.close()


fastapi_asyncpg_app = FastAPI(
    openapi_url=None, docs_url=None, redoc_url=None, lifespan=_fastapi_lifespan
)


@fastapi_asyncpg_app.get("/")
async def read(request: Request) -> dict[str, Any]:
    return await _read_row(request.app.state.pool, request.app.state.row_id)


# -- (c) Starlette, one primary-key read: the physical limit -----------------------------------


@contextlib.asynccontextmanager
async def _starlette_lifespan(app: Starlette) -> AsyncIterator[None]:
    app.state.pool = await _create_pool()
    app.state.row_id = _row_id()
    try:
        yield
    finally:
        await app.state.pool.close()


async def _starlette_read(request: Request) -> Response:
    return JSONResponse(await _read_row(request.app.state.pool, request.app.state.row_id))


starlette_app = Starlette(routes=[Route("/", _starlette_read)], lifespan=_starlette_lifespan)

APPS = {
    "fastapi_json": "bench.baselines:fastapi_json_app",
    "fastapi_asyncpg": "bench.baselines:fastapi_asyncpg_app",
    "starlette_asyncpg": "bench.baselines:starlette_app",
}
