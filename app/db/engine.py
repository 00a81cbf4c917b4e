"""Engine and session factory for the service's own connections."""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from app.config import Settings


def json_text(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def server_settings(settings: Settings, application_name: str = "crm") -> dict[str, str]:
    """Session settings of every connection the service opens (engine and direct pool)."""
    return {
        "application_name": application_name,
        "statement_timeout": str(settings.db_statement_timeout_ms),
        "idle_in_transaction_session_timeout": "60000",
    }


def create_engine(url: str, settings: Settings, *, application_name: str = "crm") -> AsyncEngine:
    return create_async_engine(
        url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout,
        # No pre-ping: it costs a BEGIN/ROLLBACK round trip on every checkout. A connection
        # the server dropped fails its next statement as a disconnect, which invalidates the
        # whole pool, so the service answers 503 and then recovers by itself.
        pool_pre_ping=False,
        pool_recycle=1800,
        json_serializer=json_text,
        json_deserializer=orjson.loads,
        connect_args={
            "timeout": settings.db_connect_timeout,
            "server_settings": server_settings(settings, application_name),
        },
    )


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    # expire_on_commit=False: responses are serialised from objects after the commit, and an
    # expired attribute would mean hidden I/O (or MissingGreenlet) during serialisation.
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)
