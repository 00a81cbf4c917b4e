"""Migrations: upgrade, downgrade and upgrade again on a fresh database; models match them."""

from __future__ import annotations

import asyncio
import json
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


# A foreign-key check's lookup, as PostgreSQL runs it: a generic plan kept by the connection.
_KEY_LOOKUP = "SELECT 1 FROM ONLY {table} x WHERE workspace_id = $1 AND id = $2 FOR KEY SHARE OF x"


def _indexes_in(plan: object) -> set[str]:
    if isinstance(plan, dict):
        found = {str(plan["Index Name"])} if "Index Name" in plan else set()
        return found.union(*(_indexes_in(value) for value in plan.values()))
    if isinstance(plan, list):
        return set().union(*(_indexes_in(item) for item in plan))
    return set()


async def test_key_lookups_use_the_primary_key_before_the_first_analyze(
    test_database: ProvisionedDatabase,
) -> None:
    """A freshly migrated database, a thousand contacts and interactions in one workspace and
    no ANALYZE: the lookups foreign-key checks make (batch ingest makes one per item and one per
    external id) must take the primary key, not walk another index that starts with
    workspace_id through the whole workspace."""
    server = make_url(test_database.owner_url)
    name = f"crm_migrate_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(_plain(server.set(database="postgres").render_as_string(False)))
    try:
        await admin.execute(f"CREATE DATABASE {name} TEMPLATE template0 ENCODING 'UTF8'")
        url = server.set(database=name).render_as_string(hide_password=False)
        await asyncio.to_thread(_run, url, "upgrade", "head")
        connection = await asyncpg.connect(_plain(url))
        try:
            version = int(await connection.fetchval("SHOW server_version_num"))
            seeded = await connection.fetchval(
                "SELECT count(*) FROM pg_stats WHERE attname = 'workspace_id' "
                "AND tablename IN ('interactions', 'contacts')"
            )
            if version < 180000:
                # Only PostgreSQL 18 lets the owner set statistics: older servers are untouched.
                assert seeded == 0
                return
            assert seeded == 2
            async with connection.transaction():
                workspace = await connection.fetchval(
                    "INSERT INTO workspaces (id, name) VALUES (gen_random_uuid(), 'w') RETURNING id"
                )
                contact = await connection.fetchval(
                    "INSERT INTO contacts (workspace_id, id, display_name, name_sort_key) "
                    "SELECT $1, gen_random_uuid(), 'c' || n, '\\x00' FROM generate_series(1, 1000) "
                    "AS n RETURNING id",
                    workspace,
                )
                await connection.execute(
                    "INSERT INTO interactions (workspace_id, id, contact_id, channel, type, "
                    "occurred_at) SELECT $1, gen_random_uuid(), $2, 'chat', 'message', "
                    "now() - n * interval '1 hour' FROM generate_series(1, 1000) AS n",
                    workspace,
                    contact,
                )
                await connection.execute("SET LOCAL plan_cache_mode = force_generic_plan")
                for table in ("interactions", "contacts"):
                    plan = await connection.fetchval(
                        "EXPLAIN (FORMAT JSON) " + _KEY_LOOKUP.format(table=table),
                        workspace,
                        contact,
                    )
                    assert _indexes_in(json.loads(plan)) == {f"pk_{table}"}
        finally:
            await connection.close()
    finally:
        await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await admin.close()
