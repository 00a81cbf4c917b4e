"""Rendering every error, expected or not, as ``application/problem+json``."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, cast

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm.exc import StaleDataError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from app.kit.context import request_id_var
from app.kit.errors import (
    BadRequest,
    Conflict,
    CRMError,
    Duplicate,
    FieldError,
    MalformedBody,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    ServiceUnavailable,
    UnsupportedMediaType,
    ValidationFailed,
)

logger = logging.getLogger("crm.errors")

PROBLEM_MEDIA_TYPE = "application/problem+json"


class ProblemResponse(Response):
    media_type = PROBLEM_MEDIA_TYPE

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def problem_response(error: CRMError) -> ProblemResponse:
    return ProblemResponse(
        error.problem(request_id_var.get()), status_code=error.status_code, headers=error.headers
    )


def field_path(location: Sequence[int | str]) -> str:
    """``("body", "emails", 0)`` -> ``emails.0``; other sources keep their prefix."""
    parts = [str(part) for part in location]
    if parts and parts[0] == "body":
        parts = parts[1:]
    return ".".join(parts) or "body"


def validation_problem(errors: Sequence[Any]) -> CRMError:
    field_errors: list[FieldError] = []
    for error in errors:
        if error.get("type") == "json_invalid":
            return MalformedBody(f"Invalid JSON: {error.get('ctx', {}).get('error', 'syntax')}")
        message = str(error.get("msg", "Invalid value")).removeprefix("Value error, ")
        if error.get("type") == "extra_forbidden":
            message = "Unknown or read-only field"
        field_errors.append(FieldError(field=field_path(error.get("loc", ())), message=message))
    names = ", ".join(sorted({item.field for item in field_errors})) or "request"
    return ValidationFailed(f"Invalid input: {names}", errors=field_errors)


_STATUS_ERRORS: dict[int, type[CRMError]] = {
    400: BadRequest,
    404: NotFound,
    405: MethodNotAllowed,
    413: PayloadTooLarge,
    415: UnsupportedMediaType,
    422: ValidationFailed,
}


def unavailable_state(state: str | None) -> bool:
    """An SQLSTATE that blames the server or the connection, not the request: connection
    exception (08) or operator intervention (57: shutdown, admin kill, statement timeout)."""
    return state is not None and state[:2] in {"08", "57"}


def _sqlstate(error: sa_exc.DBAPIError) -> str | None:
    original = getattr(error, "orig", None)
    for candidate in (original, getattr(original, "__cause__", None)):
        state = getattr(candidate, "sqlstate", None) or getattr(candidate, "pgcode", None)
        if isinstance(state, str):
            return state
    return None


def database_problem(error: sa_exc.SQLAlchemyError) -> CRMError | None:
    """Translate database failures that say something about the request or the server.

    Returns None for everything else, which is then a 500: a bug, not the client's fault.
    """
    if isinstance(error, StaleDataError):
        return Conflict("The record was changed by another request; read it again and retry")
    if isinstance(error, sa_exc.TimeoutError):
        return ServiceUnavailable("No database connection became free in time")
    if isinstance(error, sa_exc.DBAPIError):
        if error.connection_invalidated or isinstance(error, sa_exc.InterfaceError):
            return ServiceUnavailable()
        state = _sqlstate(error)
        if state == "23505":
            return Duplicate("A record with the same unique value already exists")
        if state in {"22021", "22P05"}:
            # Invalid byte sequence / untranslatable character: always text the client sent.
            return ValidationFailed("The input contains characters the database cannot store")
        if state in {"40001", "40P01", "55P03"}:
            return Conflict("A concurrent change conflicted with this one; retry the request")
        if unavailable_state(state):
            return ServiceUnavailable()
    return None


def install_problem_handlers(app: FastAPI) -> None:
    # Starlette types every handler as (Request, Exception); each is registered for one class.
    async def on_crm_error(_: Request, exc: Exception) -> Response:
        return problem_response(cast(CRMError, exc))

    async def on_validation(_: Request, exc: Exception) -> Response:
        return problem_response(validation_problem(cast(RequestValidationError, exc).errors()))

    async def on_http(_: Request, error: Exception) -> Response:
        exc = cast(StarletteHTTPException, error)
        error_class = _STATUS_ERRORS.get(exc.status_code, BadRequest)
        detail = exc.detail if isinstance(exc.detail, str) else None
        if exc.status_code == 404 and detail == "Not Found":
            detail = "No such route"
        error = error_class(detail, headers=dict(exc.headers or {}))
        return problem_response(error)

    async def on_database(request: Request, exc: Exception) -> Response:
        translated = database_problem(cast(sa_exc.SQLAlchemyError, exc))
        if translated is None:
            return await on_unexpected(request, exc)
        if isinstance(translated, ServiceUnavailable):
            logger.warning("database unavailable: %s", exc.__class__.__name__)
        return problem_response(translated)

    async def on_os_error(request: Request, exc: Exception) -> Response:
        # asyncpg raises plain OSError/ConnectionError when the server is unreachable.
        if isinstance(exc, (ConnectionError, OSError)):
            logger.warning("database unreachable: %s", exc)
            return problem_response(ServiceUnavailable())
        return await on_unexpected(request, exc)

    async def on_unexpected(_: Request, exc: Exception) -> Response:
        logger.exception("unhandled error", exc_info=exc)
        return problem_response(CRMError("An unexpected error occurred"))

    app.add_exception_handler(CRMError, on_crm_error)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(sa_exc.SQLAlchemyError, on_database)
    app.add_exception_handler(OSError, on_os_error)
    app.add_exception_handler(Exception, on_unexpected)
