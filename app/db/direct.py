"""Single statements on plain asyncpg connections, each its own transaction.

A read through the ORM session costs a BEGIN, the workspace binding, the query and a COMMIT,
plus SQLAlchemy's statement compilation and result processing: most of a by-id read's time
is Python, not PostgreSQL. The statements here are one call of a database function that binds
the workspace itself (so row-level security still applies), run outside an explicit
transaction: the hottest by-id read, and the plain loyalty earn or redemption, whose account
row is then held for that one statement and its commit only, not for the round trips and the
event loop's delays of a session's transaction. Writes to one account that queue behind
each other are run together, in one transaction with one commit (``fetchrow_grouped``).
Everything else goes through the session and its unit of work.

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


# The most statements one grouped transaction runs (the rest wait for the next).
_GROUP_LIMIT = 64
# A statement waiting for its group: its text, its arguments and where its row goes.
_Queued = tuple[str, tuple[Any, ...], "asyncio.Future[asyncpg.Record | None]"]


class DirectPool:
    def __init__(self, url: str, settings: Settings) -> None:
        self._dsn = asyncpg_dsn(url)
        self._settings = settings
        self._pool: asyncpg.Pool | None = None
        self._opening = asyncio.Lock()
        # Called with each statement's text before it runs (statement counts in tests).
        self.observers: list[Callable[[str], None]] = []
        # fetchrow_grouped: per key, the statements waiting behind the one in flight.
        self._groups: dict[object, list[_Queued]] = {}
        self._draining: set[asyncio.Future[None]] = set()

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

    async def fetchrow_grouped(self, key: object, query: str, *args: Any) -> asyncpg.Record | None:
        """``fetchrow``, except that statements with the same ``key`` (one account's writes)
        are never run at once: each waits for the one in flight, and those that waited run
        together, in arrival order, in one transaction with one commit.

        On a busy account every writer would otherwise wait its turn for the row lock and
        for the previous writer's commit to reach the disk: one flush per write. Grouped,
        the writers that queued during a flush share the next one. Nothing is answered
        before its group has committed; a statement that fails in a group rolls the group
        back, and each of its statements is then run on its own, so that only the failing
        one fails. A statement must therefore be safe to run again: one that writes carries
        the ids of what it writes among its arguments.
        """
        group = self._groups.get(key)
        if group is not None:
            waiting: asyncio.Future[asyncpg.Record | None] = (
                asyncio.get_running_loop().create_future()
            )
            group.append((query, args, waiting))
            return await waiting
        self._groups[key] = []
        try:
            return await self.fetchrow(query, *args)
        finally:
            queued = self._groups[key]
            if queued:
                # A task of its own: this request answers now, not after the groups behind it.
                drain = asyncio.ensure_future(self._drain(key, queued))
                self._draining.add(drain)
                drain.add_done_callback(self._draining.discard)
            else:
                del self._groups[key]

    async def _drain(self, key: object, group: list[_Queued]) -> None:
        while group:
            self._groups[key] = []
            batch, rest = group[:_GROUP_LIMIT], group[_GROUP_LIMIT:]
            if len(batch) == 1:
                await self._run_alone(batch)
            else:
                await self._run_together(batch)
            group = rest + self._groups[key]
        del self._groups[key]

    async def _run_alone(self, group: list[_Queued]) -> None:
        for query, args, waiting in group:
            try:
                result = await self.fetchrow(query, *args)
            except Exception as exc:  # handed to the statement's caller
                if not waiting.done():
                    waiting.set_exception(exc)
            else:
                if not waiting.done():
                    waiting.set_result(result)

    async def _run_together(self, group: list[_Queued]) -> None:
        results: list[asyncpg.Record | None] = []
        try:
            pool = self._pool or await self._open()
            async with (
                pool.acquire(timeout=self._settings.db_pool_timeout) as connection,
                connection.transaction(),
            ):
                for query, args, _waiting in group:
                    for observe in self.observers:
                        observe(query)
                    results.append(await connection.fetchrow(query, *args))
        except Exception:
            # Rolled back: each runs on its own, and only what fails on its own fails. (A
            # commit lost with its connection may have written the group: a statement run
            # again must then fail on its own ids, as crm_loyalty_write's entry id does,
            # rather than write twice.)
            logger.info("a grouped write failed: its %d statements run one by one", len(group))
            await self._run_alone(group)
            return
        for (_query, _args, waiting), result in zip(group, results, strict=True):
            if not waiting.done():
                waiting.set_result(result)

    async def close(self) -> None:
        # Grouped writes already queued are finished: their callers are waiting for them.
        await asyncio.gather(*self._draining, return_exceptions=True)
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()


def direct_pool(request: Request) -> DirectPool:
    """The direct pool of the service handling ``request``."""
    pool: DirectPool = request.app.state.database.direct
    return pool
