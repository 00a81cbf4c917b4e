"""Pure ASGI middleware: request ids, access logs, metrics, body limits and content types.

Pure ASGI rather than ``BaseHTTPMiddleware``: it runs on every request, and the wrapper class
costs a task and a queue per request.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.kit import metrics
from app.kit.context import request_id_var
from app.kit.errors import (
    CRMError,
    FieldError,
    PayloadTooLarge,
    UnsupportedMediaType,
    ValidationFailed,
)
from app.kit.problems import problem_response

access_logger = logging.getLogger("crm.access")
logger = logging.getLogger("crm.errors")

# Request ids: a random per-process prefix and a counter, unique without a system call per
# request (uuid4 reads the OS's random source each time). Forked workers draw their own prefix.
_request_counter = itertools.count(1)
_request_prefix = os.urandom(8).hex()


def _renew_prefix() -> None:
    global _request_prefix
    _request_prefix = os.urandom(8).hex()


os.register_at_fork(after_in_child=_renew_prefix)


def new_request_id() -> str:
    return f"{_request_prefix}{next(_request_counter):016x}"


_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_JSON_TYPES = ("application/json", "application/merge-patch+json", "application/graphql")


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return str(value.decode("latin-1"))
    return None


def route_template(scope: Scope) -> str:
    """``/v1/api-keys/{api_key_id}`` for a matched request; one label for all unmatched ones,
    so random 404 paths cannot blow up metric cardinality."""
    if scope.get("route") is None:
        return "<unmatched>"
    params = {str(value): name for name, value in (scope.get("path_params") or {}).items()}
    segments = str(scope["path"]).split("/")
    return "/".join(f"{{{params[s]}}}" if s in params else s for s in segments)


class RequestContextMiddleware:
    """Request id in and out, one JSON access-log line, Prometheus metrics, last-resort 500."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if "state" in scope:
            # request.state is this dict: it caches the verified key and holds the session.
            # Servers hand each request a copy of the lifespan state, but one that passed the
            # dict itself would give the next request this one's key: copy it here as well.
            scope["state"] = dict(scope["state"])
        incoming = _header(scope, b"x-request-id")
        request_id = (
            incoming if incoming and _VALID_REQUEST_ID.match(incoming) else new_request_id()
        )
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status = message["status"]
                response_started = True
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:
            logger.exception("unhandled error", exc_info=exc)
            if not response_started:
                response = problem_response(CRMError("An unexpected error occurred"))
                await response(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            template = route_template(scope)
            metrics.observe_request(scope["method"], template, status, elapsed)
            access_logger.info(
                "%s %s %s",
                scope["method"],
                scope["path"],
                status,
                extra={
                    "method": scope["method"],
                    "path": scope["path"],
                    "route": template,
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 2),
                },
            )
            request_id_var.reset(token)


class RequestGuardMiddleware:
    """Refuses oversized bodies (413) and non-JSON bodies on the API (415) before any work."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int, guarded_prefixes: tuple[str, ...]):
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.guarded_prefixes = guarded_prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # PostgreSQL text cannot hold NUL: refuse it where it arrives, with a clear answer.
        if "\x00" in scope["path"] or b"%00" in scope.get("query_string", b""):
            await self._reject(scope, receive, send, ValidationFailed(
                "The URL contains a NUL character",
                errors=[FieldError(field="query", message="NUL characters are not allowed")],
            ))  # fmt: skip
            return
        if scope["method"] in ("GET", "HEAD", "OPTIONS", "DELETE"):
            await self.app(scope, receive, send)
            return
        limit = self.max_body_bytes
        length = _header(scope, b"content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            await self._reject(
                scope,
                receive,
                send,
                PayloadTooLarge(f"Request bodies are limited to {limit} bytes"),
            )
            return
        has_body = (length is not None and int(length) > 0) or (
            _header(scope, b"transfer-encoding") is not None
        )
        if has_body and scope["path"].startswith(self.guarded_prefixes):
            content_type = (_header(scope, b"content-type") or "").split(";")[0].strip().lower()
            if content_type not in _JSON_TYPES:
                await self._reject(
                    scope,
                    receive,
                    send,
                    UnsupportedMediaType(
                        f"Send JSON (application/json), not {content_type or 'an untyped body'}"
                    ),
                )
                return

        if length is not None:
            # The server (h11/httptools) holds the client to its declared Content-Length.
            await self.app(scope, receive, send)
            return
        # A body of unknown length (chunked) is read here, up to the limit, and replayed:
        # the framework would turn an error raised while it reads into a generic 400.
        chunks: list[bytes] = []
        received = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            received += len(message.get("body", b""))
            if received > limit:
                await self._reject(scope, receive, send, PayloadTooLarge(
                    f"Request bodies are limited to {limit} bytes"
                ))  # fmt: skip
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    @staticmethod
    async def _reject(scope: Scope, receive: Receive, send: Send, error: CRMError) -> None:
        await problem_response(error)(scope, receive, send)
