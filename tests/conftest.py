"""Test fixtures: a real PostgreSQL (embedded, or CRM_TEST_DATABASE_URL), a fresh database
migrated once per run, the app served in-process over real HTTP semantics (httpx ASGI), and a
new workspace per test.

Tests commit for real, as production does: commit-before-response, deferred constraints and
concurrent writers can only be tested that way. Isolation comes from tenancy itself: every
test works in workspaces of its own, deleted (with everything in them) when it ends.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from app.auth.scopes import Scope
from app.config import Settings
from app.db import migrate
from app.db.embedded import EmbeddedPostgres
from app.db.scratch import create_database, drop_database, plain_dsn
from app.db.session import Database
from app.main import create_app
from app.workspace.service import workspace as workspace_service

TEST_APP_ROLE = "crm_test_app"


@dataclass(frozen=True)
class ProvisionedDatabase:
    owner_url: str
    app_url: str
    name: str


@pytest.fixture(scope="session")
def server_url() -> Iterator[str]:
    """A superuser URL to a maintenance database on a server we may create databases on."""
    configured = os.environ.get("CRM_TEST_DATABASE_URL")
    if configured:
        url = make_url(configured)
        if url.drivername in ("postgresql", "postgres"):
            url = url.set(drivername="postgresql+asyncpg")
        yield url.render_as_string(hide_password=False)
        return
    data_dir = Path(tempfile.mkdtemp(prefix="crm-test-", dir="/tmp"))
    server = EmbeddedPostgres(data_dir)
    server.ensure_running()
    try:
        yield server.superuser_dsn("postgres")
    finally:
        server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


async def _create_database(server_url: str) -> ProvisionedDatabase:
    name = await create_database(server_url, "crm_test")
    password = secrets.token_urlsafe(16)
    connection = await asyncpg.connect(plain_dsn(server_url))
    try:
        exists = await connection.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1",
                                           TEST_APP_ROLE)  # fmt: skip
        if not exists:
            await connection.execute(
                f"CREATE ROLE {TEST_APP_ROLE} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB"
            )
        await connection.execute(f"ALTER ROLE {TEST_APP_ROLE} PASSWORD '{password}'")
    finally:
        await connection.close()
    owner = make_url(server_url).set(database=name)
    app = owner.set(username=TEST_APP_ROLE, password=password)
    return ProvisionedDatabase(
        owner_url=owner.render_as_string(hide_password=False),
        app_url=app.render_as_string(hide_password=False),
        name=name,
    )


def _upgrade(owner_url: str) -> None:
    config = migrate.alembic_config(owner_url)
    config.attributes["app_role"] = TEST_APP_ROLE
    from alembic import command

    command.upgrade(config, "head")


@pytest.fixture(scope="session")
async def test_database(server_url: str) -> AsyncIterator[ProvisionedDatabase]:
    database = await _create_database(server_url)
    try:
        await asyncio.to_thread(_upgrade, database.owner_url)
        yield database
    finally:
        await drop_database(server_url, database.name)


@pytest.fixture(scope="session")
def settings(test_database: ProvisionedDatabase) -> Settings:
    return Settings(
        database_url=test_database.app_url,
        database_owner_url=test_database.owner_url,
        app_role=TEST_APP_ROLE,
        migrate_on_start=False,
        # Tests run periodic jobs themselves, when they mean to.
        run_jobs=False,
        log_level="WARNING",
        cors_origins=["https://app.example.com"],
    )


@pytest.fixture(scope="session")
async def database(
    settings: Settings, test_database: ProvisionedDatabase
) -> AsyncIterator[Database]:
    db = Database.connect(test_database.app_url, settings)
    try:
        yield db
    finally:
        await db.dispose()


@pytest.fixture(scope="session")
async def owner_engine(test_database: ProvisionedDatabase) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(test_database.owner_url, pool_size=2)
    try:
        yield engine
    finally:
        await engine.dispose()


@pytest.fixture(scope="session")
async def app(settings: Settings, database: Database) -> AsyncIterator[FastAPI]:
    application = create_app(settings, database=database)
    async with LifespanManager(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield http


@dataclass
class WorkspaceHandle:
    id: uuid.UUID
    admin_key: str
    admin_key_id: uuid.UUID
    database: Database
    extra_keys: dict[str, str] = field(default_factory=dict)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_key}"}

    async def key(self, *scopes: Scope | str, name: str = "test") -> dict[str, str]:
        """Authorization headers for a new key of this workspace with exactly ``scopes``."""
        from app.api_key.service import api_key as api_key_service
        from app.db.session import bind_workspace

        async with self.database.sessionmaker() as session, session.begin():
            await bind_workspace(session, self.id)
            created = await api_key_service.issue(
                session, workspace_id=self.id, name=name,
                scopes=[str(getattr(scope, "value", scope)) for scope in scopes],
            )  # fmt: skip
        return {"Authorization": f"Bearer {created.token}"}


@pytest.fixture
async def make_workspace(database: Database, owner_engine: AsyncEngine) -> AsyncIterator[object]:
    created: list[uuid.UUID] = []

    async def make(name: str = "Test workspace") -> WorkspaceHandle:
        async with database.sessionmaker() as session, session.begin():
            new = await workspace_service.create(session, name=name)
        created.append(new.workspace.id)
        return WorkspaceHandle(
            id=new.workspace.id,
            admin_key=new.admin_key.token,
            admin_key_id=new.admin_key.record.id,
            database=database,
        )

    yield make
    if created:
        async with owner_engine.begin() as connection:
            await connection.execute(
                text("DELETE FROM workspaces WHERE id = ANY(:ids)"), {"ids": created}
            )


@pytest.fixture
async def workspace(make_workspace: object) -> WorkspaceHandle:
    return await make_workspace()  # type: ignore[operator, no-any-return]
