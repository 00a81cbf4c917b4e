"""Single statements on plain asyncpg connections, each its own transaction.

A read through the ORM session costs a BEGIN, the workspace binding, the query and a COMMIT,
plus SQLAlchemy's statement compilation and result processing: most of a by-id read's time
is Python, not PostgreSQL. The statements here are one call of a database function that binds
the workspace itself (so row-level security still applies), run outside an explicit
transaction: the hottest by-id read, and the plain loyalty earn or redemption, whose account
row is then held for that one statement and its commit only, not for the round trips and the
event loop's delays of a session's transaction. Everything else goes through the session
and its unit of work.

The pool is separate from the engine's and opened on first use; it is sized like the engine's
pool, so the service holds at most twice ``db_pool_size`` connections at peak.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import asyncpg
import orjson
from sqlalchemy.engine import make_url
from starlette.requests import Request

from app.config import Settings
from app.db.engine import json_text, server_settings
from app.kit.errors import ServiceUnavailable
from app.kit.problems import unavailable_state

logger = logging.getLogger("crm.db")


def asyncpg_dsn(url: str) -> str:
    """The engine's ``postgresql+asyncpg://`` URL as a DSN asyncpg accepts."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def _decode_json(connection: asyncpg.Connection) -> None:
    """JSON in and out as Python values, as through the engine (app.db.engine)."""
    for name in ("json", "jsonb"):
        await connection.set_type_codec(
            name, schema="pg_catalog", encoder=json_text, decoder=orjson.loads, format="text"
        )


async def _keep_session(connection: asyncpg.Connection) -> None:
    """Returned connections skip asyncpg's default reset (``RESET ALL``, ``UNLISTEN *``...,
    a round trip per read): these reads change no session state, and the pool still rolls
    back any transaction left open."""


class DirectPool:
    def __init__(self, url: str, settings: Settings) -> None:
        self._dsn = asyncpg_dsn(url)
        self._settings = settings
        self._pool: asyncpg.Pool | None = None
        self._opening = asyncio.Lock()
        # Called with each statement's text before it runs (statement counts in tests).
        self.observers: list[Callable[[str], None]] = []

    async def _open(self) -> asyncpg.Pool:
        async with self._opening:
            if self._pool is None:
                settings = self._settings
                self._pool = await asyncpg.create_pool(
                    self._dsn,
                    min_size=1,
                    max_size=settings.db_pool_size,
                    max_inactive_connection_lifetime=300,
                    reset=_keep_session,
                    init=_decode_json,
                    timeout=settings.db_connect_timeout,
                    server_settings=server_settings(settings),
                )
            return self._pool

    async def fetchrow(self, query: str, *args: Any) -> asyncpg.Record | None:
        """One statement in its own implicit transaction; 503 when the database is away."""
        for observe in self.observers:
            observe(query)
        try:
            pool = self._pool or await self._open()
            # With a connection idle, taking it cannot wait: the timeout's machinery is skipped.
            timeout = None if pool.get_idle_size() else self._settings.db_pool_timeout
            async with pool.acquire(timeout=timeout) as connection:
                row: asyncpg.Record | None = await connection.fetchrow(query, *args)
                return row
        except TimeoutError as exc:  # no connection free in time, or none could be opened
            raise ServiceUnavailable("No database connection became free in time") from exc
        except asyncpg.PostgresError as exc:
            if unavailable_state(getattr(exc, "sqlstate", None)):
                logger.warning("database unavailable: %s", exc.__class__.__name__)
                raise ServiceUnavailable() from exc
            raise
        except (asyncpg.InterfaceError, OSError) as exc:
            logger.warning("database unreachable: %s", exc.__class__.__name__)
            raise ServiceUnavailable() from exc

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()


def direct_pool(request: Request) -> DirectPool:
    """The direct pool of the service handling ``request``."""
    pool: DirectPool = request.app.state.database.direct
    return pool
