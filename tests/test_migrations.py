"""Migrations: upgrade, downgrade and upgrade again on a fresh database; models match them."""

from __future__ import annotations

import asyncio
import secrets

import asyncpg
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

import app.models  # noqa: F401 - every table on the metadata
from app.db.base import Base
from app.db.migrate import alembic_config, head_revision
from tests.conftest import TEST_APP_ROLE, ProvisionedDatabase


def _plain(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def _tables(url: str) -> set[str]:
    connection = await asyncpg.connect(_plain(url))
    try:
        rows = await connection.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        return {row["tablename"] for row in rows}
    finally:
        await connection.close()


def _run(url: str, action: str, revision: str) -> None:
    config = alembic_config(url)
    config.attributes["app_role"] = TEST_APP_ROLE
    getattr(command, action)(config, revision)


async def test_upgrade_downgrade_upgrade(test_database: ProvisionedDatabase) -> None:
    server = make_url(test_database.owner_url)
    name = f"crm_migrate_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(_plain(server.set(database="postgres").render_as_string(False)))
    try:
        await admin.execute(f"CREATE DATABASE {name} TEMPLATE template0 ENCODING 'UTF8'")
        url = server.set(database=name).render_as_string(hide_password=False)
        await asyncio.to_thread(_run, url, "upgrade", "head")
        assert {"workspaces", "api_keys", "idempotency_keys", "outbox_events"} <= await _tables(url)
        await asyncio.to_thread(_run, url, "downgrade", "base")
        assert await _tables(url) == {"alembic_version"}
        await asyncio.to_thread(_run, url, "upgrade", "head")
        connection = await asyncpg.connect(_plain(url))
        try:
            assert await connection.fetchval("SELECT version_num FROM alembic_version") == (
                head_revision()
            )
        finally:
            await connection.close()
    finally:
        await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await admin.close()


def _diff(connection: Connection) -> list[object]:
    context = MigrationContext.configure(
        connection, opts={"compare_type": True, "compare_server_default": True}
    )
    return list(compare_metadata(context, Base.metadata))


async def test_models_and_migrations_agree(test_database: ProvisionedDatabase) -> None:
    """What `alembic check` verifies: autogenerate finds nothing to do."""
    engine: AsyncEngine = create_async_engine(test_database.owner_url)
    try:
        async with engine.connect() as connection:
            assert await connection.run_sync(_diff) == []
    finally:
        await engine.dispose()
