"""The application factory."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from sqlalchemy import text
from starlette.middleware.cors import CORSMiddleware

from app import api, health
from app.auth.dependencies import key_cache, key_usage
from app.config import Settings, get_settings
from app.db import migrate
from app.db.bootstrap import migrate_to_head, resolve_target
from app.db.session import Database
from app.graphql.router import create_graphql_router
from app.jobs.registry import periodic_jobs
from app.jobs.runner import run_forever
from app.kit.hot import HotRoutes
from app.kit.logging import configure_logging
from app.kit.middleware import RequestContextMiddleware, RequestGuardMiddleware
from app.kit.problems import install_problem_handlers
from app.web.docs import install_docs

logger = logging.getLogger("crm")
# How often API keys' last_used_at is written (it is shown rounded to this, at most).
KEY_USAGE_FLUSH_SECONDS = 30

API_DESCRIPTION = """
One shared customer store: contacts and accounts, their interactions on every channel,
purchases, opportunities, cases and loyalty, behind REST and GraphQL.

Authenticate with `Authorization: Bearer <api key>`. Errors are `application/problem+json`
with a stable `code`. Lists use keyset cursors. Every POST accepts `Idempotency-Key`.
"""


def _install_openapi(app: FastAPI) -> None:
    """The generated spec, plus the bearer-key security every /v1 operation requires."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            schema.setdefault("components", {})["securitySchemes"] = {
                "apiKey": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An API key: `Authorization: Bearer crm_<prefix>_<secret>`.",
                }
            }
            for path, operations in schema.get("paths", {}).items():
                if path.startswith("/v1/"):
                    for operation in operations.values():
                        operation["security"] = [{"apiKey": []}]
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _operation_id(route: APIRoute) -> str:
    return f"{route.tags[0]}-{route.name}" if route.tags else route.name


async def _connect(settings: Settings) -> Database:
    if settings.database_url is None:
        # Started without `crm serve` (e.g. `uvicorn --factory app.main:create_app`).
        target = await asyncio.to_thread(resolve_target, settings)
        if settings.migrate_on_start:
            await asyncio.to_thread(migrate_to_head, target)
        return Database.connect(target.app_url, settings)
    return Database.connect(settings.database_url, settings)


async def _warn_if_rls_bypassed(database: Database) -> None:
    try:
        async with database.engine.connect() as connection:
            row = (
                await connection.execute(
                    text(
                        "SELECT r.rolsuper OR r.rolbypassrls AS bypasses, "
                        "EXISTS (SELECT 1 FROM pg_tables t WHERE t.tablename = 'workspaces' "
                        "AND t.tableowner = current_user) AS owns "
                        "FROM pg_roles r WHERE r.rolname = current_user"
                    )
                )
            ).one()
    except Exception as exc:  # the database may be down at start; /readyz reports it
        logger.warning("could not inspect the database role: %s", exc.__class__.__name__)
        return
    if row.bypasses or row.owns:
        logger.warning(
            "the service's database role is a superuser or owns the tables: row-level "
            "security does not apply to it; connect as a dedicated role (see README)"
        )


async def _prune_idempotency_keys(database: Database, ttl_hours: int) -> None:
    while True:
        try:
            async with database.engine.begin() as connection:
                await connection.execute(
                    text("SELECT crm_prune_idempotency_keys(:hours)"), {"hours": ttl_hours}
                )
        except Exception as exc:  # retried on the next round; never kills the service
            logger.warning("pruning idempotency keys failed: %s", exc.__class__.__name__)
        await asyncio.sleep(3600)


# Collections start every this many net new objects (Python's default is 700): a request
# handling a batch of a thousand items makes tens of thousands, and each start costs a pass.
GC_FIRST_GENERATION_THRESHOLD = 10_000


def serve_app() -> FastAPI:
    """The factory ``crm serve`` hands to uvicorn's worker processes."""
    app = build_app()
    tune_garbage_collector()
    return app


def build_app() -> FastAPI:
    """The application as configured by the environment, logging included."""
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format)
    return create_app(settings)


def tune_garbage_collector() -> None:
    """Keep the garbage collector off what lives as long as the process.

    Modules, routes, schemas and mappers are some 300,000 objects that never become garbage,
    yet every full collection walked them all again: a third of the CPU a 1,000-item ingest
    batch costs went to the collector. Frozen after start-up, they are left out of every
    collection; only what requests create is examined.
    """
    gc.collect()
    gc.freeze()
    _, second, third = gc.get_threshold()
    gc.set_threshold(GC_FIRST_GENERATION_THRESHOLD, second, third)


BACKGROUND_TASK_PREFIX = "crm-background:"


async def _record_key_usage(database: Database) -> None:
    try:
        while True:
            await asyncio.sleep(KEY_USAGE_FLUSH_SECONDS)
            try:
                await key_usage.flush(database.sessionmaker)
            except Exception as exc:  # the next round writes the newer moments anyway
                logger.warning("recording API key usage failed: %s", exc.__class__.__name__)
    finally:
        with contextlib.suppress(Exception):
            await asyncio.shield(key_usage.flush(database.sessionmaker))


def create_app(settings: Settings | None = None, database: Database | None = None) -> FastAPI:
    settings = settings or get_settings()
    key_cache.ttl_seconds = settings.auth_cache_seconds

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = database is None
        app.state.database = database or await _connect(settings)
        await _warn_if_rls_bypassed(app.state.database)
        # Named, so that logs and statement counts can tell their work from requests'.
        background = [
            asyncio.create_task(
                _prune_idempotency_keys(app.state.database, settings.idempotency_ttl_hours),
                name=f"{BACKGROUND_TASK_PREFIX}prune-idempotency-keys",
            ),
            asyncio.create_task(
                _record_key_usage(app.state.database),
                name=f"{BACKGROUND_TASK_PREFIX}record-key-usage",
            ),
        ]
        if settings.run_jobs:
            background += [
                asyncio.create_task(
                    run_forever(app.state.database, job),
                    name=f"{BACKGROUND_TASK_PREFIX}job:{job.name}",
                )
                for job in periodic_jobs()
            ]
        try:
            yield
        finally:
            for task in background:
                task.cancel()
            for task in background:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if owned:
                await app.state.database.dispose()

    app = FastAPI(
        title="CRM",
        version="0.1.0",
        description=API_DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        generate_unique_id_function=_operation_id,
        # Metrics and logs are the service's own (Prometheus at /metrics, JSON lines).
        telemetry={"tracing": settings.otel_tracing, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    app.state.schema_head = migrate.head_revision()
    install_problem_handlers(app)
    app.include_router(health.router)
    app.include_router(api.router)
    app.include_router(create_graphql_router(settings), prefix="/graphql")
    install_docs(app)
    _install_openapi(app)

    # Innermost (added first): hot routes answer below CORS, the guard and the logs.
    app.add_middleware(HotRoutes, routes=api.hot_routes)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PATCH", "PUT", "DELETE", "OPTIONS"],
            allow_headers=["Authorization", "Content-Type", "Idempotency-Key", "If-Match",
                           "If-None-Match", "X-Request-ID"],
            expose_headers=["ETag", "Location", "Idempotent-Replayed", "X-Request-ID"],
            max_age=600,
        )  # fmt: skip
    app.add_middleware(
        RequestGuardMiddleware,
        max_body_bytes=settings.max_body_bytes,
        guarded_prefixes=("/v1/", "/graphql"),
    )
    app.add_middleware(RequestContextMiddleware)
    return app
