"""Throwaway databases on a server: for comparing models with migrations, and for tests."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator

import asyncpg
from sqlalchemy.engine import make_url


def plain_dsn(url: str) -> str:
    """A SQLAlchemy URL as asyncpg takes it."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def create_database(server_url: str, prefix: str) -> str:
    """A new empty UTF-8 database with the collation the service expects; its name.

    ``LC_CTYPE`` must be ``C.UTF-8``: under ``C``, trigram search treats every Thai and
    Vietnamese letter as a separator.
    """
    name = f"{prefix}_{secrets.token_hex(4)}"
    connection = await asyncpg.connect(plain_dsn(server_url))
    try:
        version = int(await connection.fetchval("SHOW server_version_num"))
        locale = (
            "LOCALE_PROVIDER builtin BUILTIN_LOCALE 'C.UTF-8' LC_COLLATE 'C' LC_CTYPE 'C.UTF-8'"
            if version >= 170000
            else "LC_COLLATE 'C.UTF-8' LC_CTYPE 'C.UTF-8'"
        )
        await connection.execute(
            f"CREATE DATABASE {name} TEMPLATE template0 ENCODING 'UTF8' {locale}"
        )
        # Durability buys nothing in a throwaway database and costs an fsync per commit.
        await connection.execute(f"ALTER DATABASE {name} SET synchronous_commit = off")
    finally:
        await connection.close()
    return name


async def drop_database(server_url: str, name: str) -> None:
    connection = await asyncpg.connect(plain_dsn(server_url))
    try:
        await connection.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    finally:
        await connection.close()


@contextlib.asynccontextmanager
async def scratch_database(server_url: str, prefix: str) -> AsyncIterator[str]:
    """The URL of a new database on the server of ``server_url``, dropped afterwards."""
    name = await create_database(server_url, prefix)
    try:
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        await drop_database(server_url, name)
