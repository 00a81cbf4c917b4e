"""Running migrations and knowing where the schema stands."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from app.config import get_settings

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def alembic_config(url: str | None = None) -> Config:
    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(PROJECT_ROOT / "migrations"))
    if url is not None:
        config.attributes["url"] = url
    return config


def upgrade(url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str = "base") -> None:
    command.downgrade(alembic_config(url), revision)


def head_revision() -> str:
    heads = ScriptDirectory.from_config(alembic_config()).get_heads()
    if len(heads) != 1:
        raise RuntimeError(f"expected one migration head, found {heads}")
    return heads[0]


async def current_revision(connection: AsyncConnection) -> str | None:
    result = await connection.execute(text("SELECT version_num FROM alembic_version"))
    return result.scalar_one_or_none()


@contextlib.contextmanager
def owner_url_for_cli() -> Iterator[str]:
    """The schema owner's URL for a bare ``alembic`` command, starting the embedded server
    when no database is configured (and stopping it again if nobody else is using it)."""
    settings = get_settings()
    url = settings.database_owner_url or settings.database_url
    if url is not None:
        yield url
        return
    from app.db.bootstrap import prepare_embedded

    server = prepare_embedded(settings)
    try:
        yield server.superuser_dsn()
    finally:
        if server.started_here:
            server.stop(only_if_unserved=True)
