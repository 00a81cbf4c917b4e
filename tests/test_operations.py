"""Health, readiness, metrics, logs, and behaviour when the database goes away."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import secrets
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from sqlalchemy.engine import make_url

from app.api import hot_routes
from app.config import Settings
from app.db.bootstrap import DatabaseTarget, _ensure_database, ensure_app_role, migrate_to_head
from app.db.embedded import EmbeddedPostgres
from app.db.session import Database
from app.kit.context import request_id_var
from app.kit.logging import JsonFormatter, configure_logging
from app.main import create_app
from app.workspace.service import workspace as workspace_service
from tests.conftest import ProvisionedDatabase, WorkspaceHandle
from tests.test_conventions import assert_problem


async def test_liveness_and_readiness(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["status"] == "ok"


async def test_readiness_is_503_on_an_unmigrated_database(
    settings: Settings, test_database: ProvisionedDatabase
) -> None:
    owner = make_url(test_database.owner_url)
    name = f"crm_empty_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(
        owner.set(drivername="postgresql", database="postgres").render_as_string(False)
    )
    await admin.execute(f"CREATE DATABASE {name} TEMPLATE template0")
    try:
        url = owner.set(database=name).render_as_string(hide_password=False)
        database = Database.connect(url, settings)
        app = create_app(settings, database=database)
        async with LifespanManager(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                response = await client.get("/readyz")
                assert response.status_code == 503
                assert response.json()["database"] == "not migrated"
                assert (await client.get("/healthz")).status_code == 200
        await database.dispose()
    finally:
        await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await admin.close()


async def test_metrics_label_requests_by_route_template(
    client: httpx.AsyncClient, workspace: WorkspaceHandle
) -> None:
    await client.get("/v1/workspace", headers=workspace.headers)
    await client.get(f"/v1/api-keys/{workspace.admin_key_id}", headers=workspace.headers)
    await client.get("/no/such/route/123")
    body = (await client.get("/metrics")).text
    assert 'route="/v1/workspace"' in body
    assert 'route="/v1/api-keys/{api_key_id}"' in body
    assert str(workspace.admin_key_id) not in body
    assert 'route="<unmatched>"' in body
    assert "crm_http_request_duration_seconds_bucket" in body
    assert "crm_db_pool_size" in body


@contextlib.contextmanager
def access_log() -> Iterator[list[dict[str, Any]]]:
    """The access-log lines written meanwhile, parsed (filled in when the block ends)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("crm.access")
    previous = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    lines: list[dict[str, Any]] = []
    try:
        yield lines
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)
        lines.extend(json.loads(line) for line in stream.getvalue().splitlines())


async def test_access_log_is_json_with_the_request_id(
    client: httpx.AsyncClient, workspace: WorkspaceHandle
) -> None:
    with access_log() as lines:
        response = await client.get(
            "/v1/workspace", headers={**workspace.headers, "X-Request-ID": "trace-42"}
        )
    entry = next(line for line in lines if line.get("request_id") == "trace-42")
    assert entry["status"] == 200
    assert entry["route"] == "/v1/workspace"
    assert entry["method"] == "GET"
    assert isinstance(entry["duration_ms"], float)
    assert workspace.admin_key not in json.dumps(lines)
    assert response.headers["x-request-id"] == "trace-42"


@pytest.fixture
async def private_server() -> AsyncIterator[EmbeddedPostgres]:
    """A database server of this test's own, which it may stop and start."""
    data_dir = Path(tempfile.mkdtemp(prefix="crm-outage-", dir="/tmp"))
    server = EmbeddedPostgres(data_dir)
    await asyncio.to_thread(server.ensure_running)
    try:
        yield server
    finally:
        await asyncio.to_thread(server.stop)
        shutil.rmtree(data_dir, ignore_errors=True)


async def test_requests_fail_fast_with_503_and_recover_when_the_database_returns(
    private_server: EmbeddedPostgres,
) -> None:
    await _ensure_database(private_server.superuser_dsn("postgres"), "crm")
    await ensure_app_role(private_server.superuser_dsn(), "crm_app")
    target = DatabaseTarget(
        app_url=private_server.app_dsn("crm_app"), owner_url=private_server.superuser_dsn()
    )
    await asyncio.to_thread(migrate_to_head, target)
    settings = Settings(
        database_url=target.app_url,
        db_connect_timeout=1.0,
        db_pool_timeout=2.0,
        auth_cache_seconds=0,
        log_level="ERROR",
    )
    database = Database.connect(target.app_url, settings)
    async with database.sessionmaker() as session, session.begin():
        created = await workspace_service.create(session, name="Outage drill")
    headers = {"Authorization": f"Bearer {created.admin_key.token}"}
    app = create_app(settings, database=database)
    try:
        async with LifespanManager(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                assert (await client.get("/v1/workspace", headers=headers)).status_code == 200

                await asyncio.to_thread(private_server.stop)
                for _ in range(3):
                    response = await client.get("/v1/workspace", headers=headers)
                    assert_problem(response, 503, "service_unavailable")
                    assert response.headers["retry-after"] == "1"
                assert (await client.get("/readyz")).status_code == 503
                assert (await client.get("/healthz")).status_code == 200

                await asyncio.to_thread(private_server.ensure_running)
                response = await client.get("/v1/workspace", headers=headers)
                assert response.status_code == 200, response.text
                assert (await client.get("/readyz")).status_code == 200
    finally:
        await database.dispose()


def test_configured_logging_writes_json_lines_from_its_own_thread(
    capsys: pytest.CaptureFixture[str],
) -> None:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    listener = configure_logging("INFO", "json")
    token = request_id_var.set("req-7")
    try:
        log = logging.getLogger("crm.test")
        log.info("hello %s", "there", extra={"route": "/v1/x"})
        try:
            raise ZeroDivisionError("boom")
        except ZeroDivisionError:
            log.exception("failed")
    finally:
        request_id_var.reset(token)
        listener.stop()  # drains the queue
        root.handlers[:], _ = saved
        root.setLevel(saved[1])
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    hello = next(line for line in lines if line["message"] == "hello there")
    assert hello["request_id"] == "req-7"
    assert hello["route"] == "/v1/x"
    assert hello["level"] == "info"
    assert hello["logger"] == "crm.test"
    failed = next(line for line in lines if line["message"] == "failed")
    assert failed["request_id"] == "req-7"
    assert "ZeroDivisionError: boom" in failed["exception"]


async def test_hot_routes_are_logged_and_measured_by_their_template(
    client: httpx.AsyncClient, workspace: WorkspaceHandle
) -> None:
    created = await client.post("/v1/contacts", headers=workspace.headers, json={"given_name": "M"})
    with access_log() as lines:
        read = await client.get(f"/v1/contacts/{created.json()['id']}", headers=workspace.headers)
    assert read.status_code == 200
    entry = lines[0]
    assert entry["route"] == "/v1/contacts/{contact_id}"
    assert entry["status"] == 200
    body = (await client.get("/metrics")).text
    assert 'route="/v1/contacts/{contact_id}"' in body
    assert created.json()["id"] not in body


def test_every_hot_route_is_a_documented_operation(app: FastAPI) -> None:
    """A hot route answers for an endpoint; it must not be an undocumented path of its own."""
    paths = app.openapi()["paths"]
    assert hot_routes
    for route in hot_routes:
        assert route.method.lower() in paths.get(route.path, {}), route.path
