"""Alembic environment: async engine, the app's metadata, URL chosen by app.db.migrate."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import asyncpg
from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

import app.models
from app.db.base import Base
from app.db.migrate import PROJECT_ROOT, owner_url_for_cli
from app.db.scratch import scratch_database

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


def _command() -> str | None:
    invoked = getattr(config.cmd_opts, "cmd", None)
    return invoked[0].__name__ if invoked else None


def _upgrade_in_own_process(url: str) -> None:
    # Alembic's `context` is one module-wide proxy, so a second command cannot run inside
    # this one; the URL travels in the environment, not on the command line.
    subprocess.run(
        [sys.executable, "-c", "import os; from app.db.migrate import upgrade; "
         "upgrade(os.environ['CRM_SCRATCH_URL'])"],
        cwd=PROJECT_ROOT,
        env={**os.environ, "CRM_SCRATCH_URL": url},
        check=True,
    )  # fmt: skip


async def _check_on_fresh_database(server_url: str) -> None:
    """``alembic check`` compares the models with what the migrations build, whatever state
    the working database is in: on a new database, migrated to head, dropped afterwards."""
    try:
        async with scratch_database(server_url, "crm_check") as url:
            await asyncio.to_thread(_upgrade_in_own_process, url)
            await _run_online(url)
    except asyncpg.InsufficientPrivilegeError:
        # A role that cannot create databases checks the configured database, which must
        # then be at head.
        await _run_online(server_url)


def run() -> None:
    url = config.attributes.get("url")
    if url is not None:
        asyncio.run(_run_online(url))
        return
    # Invoked as the plain `alembic` command: find (or start) the database ourselves.
    with owner_url_for_cli() as cli_url:
        if _command() == "check":
            asyncio.run(_check_on_fresh_database(cli_url))
        else:
            asyncio.run(_run_online(cli_url))


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported; run against a database")
run()
