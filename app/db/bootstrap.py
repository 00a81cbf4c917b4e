"""Bringing a database to the state the service needs: server, database, roles, schema."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass

import asyncpg
from sqlalchemy.engine import make_url

from app.config import Settings
from app.db import migrate
from app.db.embedded import DATABASE_NAME, EmbeddedPostgres

_ROLE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def _asyncpg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def quote_ident(name: str) -> str:
    if not _ROLE_NAME.match(name):
        raise ValueError(f"invalid SQL identifier: {name!r}")
    return f'"{name}"'


async def _ensure_database(maintenance_url: str, database: str) -> None:
    connection = await asyncpg.connect(_asyncpg_dsn(maintenance_url))
    try:
        exists = await connection.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database)
        if not exists:
            # template0: the cluster's builtin C.UTF-8 locale, not whatever template1 carries.
            await connection.execute(f"CREATE DATABASE {quote_ident(database)} TEMPLATE template0")
    finally:
        await connection.close()


async def ensure_app_role(owner_url: str, role: str, password: str | None = None) -> None:
    """Create the login role the service uses: no superuser, no BYPASSRLS, owns nothing."""
    connection = await asyncpg.connect(_asyncpg_dsn(owner_url))
    try:
        exists = await connection.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role)
        if not exists:
            await connection.execute(
                f"CREATE ROLE {quote_ident(role)} LOGIN NOSUPERUSER NOBYPASSRLS "
                "NOCREATEDB NOCREATEROLE"
            )
        if password is not None:
            await connection.execute(
                f"ALTER ROLE {quote_ident(role)} PASSWORD {_literal(password)}"
            )
    finally:
        await connection.close()


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


@dataclass
class DatabaseTarget:
    """Where the service connects, and who owns the schema."""

    app_url: str
    owner_url: str
    embedded: EmbeddedPostgres | None = None


def prepare_embedded(settings: Settings) -> EmbeddedPostgres:
    server = EmbeddedPostgres(settings.data_dir)
    server.ensure_running()
    asyncio.run(_prepare_embedded_database(server, settings.app_role))
    return server


async def _prepare_embedded_database(server: EmbeddedPostgres, role: str) -> None:
    await _ensure_database(server.superuser_dsn("postgres"), DATABASE_NAME)
    await ensure_app_role(server.superuser_dsn(), role)


def resolve_target(settings: Settings) -> DatabaseTarget:
    """The configured server, or the embedded one (started if needed)."""
    if settings.database_url is not None:
        return DatabaseTarget(
            app_url=settings.database_url,
            owner_url=settings.database_owner_url or settings.database_url,
        )
    server = prepare_embedded(settings)
    return DatabaseTarget(
        app_url=server.app_dsn(settings.app_role),
        owner_url=server.superuser_dsn(),
        embedded=server,
    )


def migrate_to_head(target: DatabaseTarget) -> None:
    migrate.upgrade(target.owner_url, "head")
