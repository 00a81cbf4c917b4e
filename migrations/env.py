"""Alembic environment: async engine, the app's metadata, URL chosen by app.db.migrate."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

import app.models
from app.db.base import Base
from app.db.migrate import owner_url_for_cli

config = context.config
target_metadata = Base.metadata


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        compare_type=True,
        compare_server_default=True,
        transaction_per_migration=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_online(url: str) -> None:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_configure)
            await connection.commit()
    finally:
        await engine.dispose()


def run() -> None:
    url = config.attributes.get("url")
    if url is not None:
        asyncio.run(_run_online(url))
        return
    # Invoked as the plain `alembic` command: find (or start) the database ourselves.
    with owner_url_for_cli() as cli_url:
        asyncio.run(_run_online(cli_url))


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported; run against a database")
run()
