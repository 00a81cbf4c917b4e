"""Liveness, readiness and metrics: public, and outside the unit-of-work machinery."""

from __future__ import annotations

import asyncio
import logging

from fastapi import APIRouter, Request
from sqlalchemy import text
from starlette.responses import JSONResponse, Response

from app.kit import metrics

router = APIRouter(include_in_schema=False)
_HAS_VERSION_TABLE = text("SELECT to_regclass('alembic_version') IS NOT NULL")
_VERSION = text("SELECT version_num FROM alembic_version")
logger = logging.getLogger("crm.health")


@router.get("/healthz")
async def healthz() -> Response:
    return JSONResponse({"status": "ok"})


@router.get("/readyz")
async def readyz(request: Request) -> Response:
    database = request.app.state.database
    expected = request.app.state.schema_head
    try:
        async with asyncio.timeout(2.0), database.engine.connect() as connection:
            if (await connection.execute(_HAS_VERSION_TABLE)).scalar_one():
                current = (await connection.execute(_VERSION)).scalar_one_or_none()
            else:
                current = None
    except Exception as exc:  # any failure to reach the database means "not ready"
        logger.warning("readiness check failed: %s", exc.__class__.__name__)
        return JSONResponse({"status": "unavailable", "database": "unreachable"}, status_code=503)
    if current != expected:
        return JSONResponse(
            {"status": "unavailable", "database": "not migrated",
             "schema": current, "expected": expected},
            status_code=503,
        )  # fmt: skip
    return JSONResponse({"status": "ok", "schema": current})


@router.get("/metrics")
async def metrics_endpoint(request: Request) -> Response:
    pool = request.app.state.database.engine.pool
    metrics.POOL_CHECKED_OUT.set(getattr(pool, "checkedout", lambda: 0)())
    metrics.POOL_SIZE.set(getattr(pool, "size", lambda: 0)())
    body, content_type = metrics.render()
    return Response(body, media_type=content_type)
