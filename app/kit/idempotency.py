"""``Idempotency-Key`` on POST: a retry returns the first outcome and does nothing again.

The stored outcome is written in the same transaction as the work, so it exists if and only if
the work committed. Requests that fail (4xx, 5xx) roll back and store nothing: correcting the
body and retrying with the same key works. A transaction-scoped advisory lock on the key makes
a concurrent duplicate fail fast with 409 instead of waiting behind the first.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated

import orjson
from fastapi import Depends, Header, Request
from sqlalchemy import text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from app.auth.dependencies import AuthContext, authenticate
from app.db.session import SessionDep
from app.kit.errors import IdempotencyKeyInFlight, IdempotencyKeyReused
from app.models import IdempotencyKey

IDEMPOTENCY_KEY = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
# Response headers worth replaying; the rest (date, request id) describe the new response.
_KEPT_HEADERS = ("content-type", "location", "etag")

_TRY_LOCK = text("SELECT pg_try_advisory_xact_lock(hashtextextended(:lock_key, 7243))")
_FIND = text(
    "SELECT method, path, request_hash, response_status, response_headers, response_body "
    "FROM idempotency_keys "
    "WHERE workspace_id = :workspace_id AND principal_id = :principal_id AND key = :key "
    "AND created_at > now() - make_interval(hours => :ttl_hours)"
)


class IdempotentReplay(Exception):
    """Raised by the guard when a stored outcome answers the request."""

    def __init__(self, response: Response) -> None:
        self.response = response
        super().__init__("replay")


@dataclass
class PendingKey:
    auth: AuthContext
    key: str
    method: str
    path: str
    request_hash: str


def _request_hash(method: str, path: str, query: str, body: bytes) -> str:
    try:
        # Equal JSON documents are the same request, whatever their key order or spacing.
        canonical = orjson.dumps(orjson.loads(body), option=orjson.OPT_SORT_KEYS) if body else b""
    except orjson.JSONDecodeError:
        canonical = body
    digest = hashlib.sha256()
    for part in (method.encode(), path.encode(), query.encode(), canonical):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


async def idempotency_guard(
    request: Request,
    session: SessionDep,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias=IDEMPOTENCY_KEY,
            min_length=1,
            max_length=255,
            description="Makes a retried POST safe: the same key and body within 24 hours "
            "returns the first response and does nothing again.",
        ),
    ] = None,
) -> None:
    if idempotency_key is None:
        return
    auth = await authenticate(request, session)
    settings = request.app.state.settings
    body = await request.body()
    pending = PendingKey(
        auth=auth,
        key=idempotency_key,
        method=request.method,
        path=request.url.path,
        request_hash=_request_hash(request.method, request.url.path, request.url.query, body),
    )
    lock_key = f"{auth.workspace_id}:{auth.api_key_id}:{idempotency_key}"
    if not (await session.execute(_TRY_LOCK, {"lock_key": lock_key})).scalar_one():
        raise IdempotencyKeyInFlight()
    stored = (
        await session.execute(
            _FIND,
            {
                "workspace_id": auth.workspace_id,
                "principal_id": auth.api_key_id,
                "key": idempotency_key,
                "ttl_hours": settings.idempotency_ttl_hours,
            },
        )
    ).one_or_none()
    if stored is not None:
        if (stored.method, stored.path, stored.request_hash) != (
            pending.method,
            pending.path,
            pending.request_hash,
        ):
            raise IdempotencyKeyReused(
                "This Idempotency-Key was first used with a different request body or path"
            )
        headers = dict(stored.response_headers)
        headers[REPLAYED_HEADER] = "true"
        raise IdempotentReplay(
            Response(
                content=bytes(stored.response_body),
                status_code=stored.response_status,
                headers=headers,
            )
        )
    request.state.idempotency = pending


async def record_outcome(session: AsyncSession, pending: PendingKey, response: Response) -> None:
    headers = {name: response.headers[name] for name in _KEPT_HEADERS if name in response.headers}
    values = {
        "workspace_id": pending.auth.workspace_id,
        "principal_id": pending.auth.api_key_id,
        "key": pending.key,
        "method": pending.method,
        "path": pending.path,
        "request_hash": pending.request_hash,
        "response_status": response.status_code,
        "response_headers": headers,
        "response_body": bytes(response.body),
    }
    statement = insert(IdempotencyKey).values(**values)
    # An expired record with the same key is replaced: past the TTL the key is new again.
    statement = statement.on_conflict_do_update(
        index_elements=["workspace_id", "principal_id", "key"],
        set_={**{k: statement.excluded[k] for k in values}, "created_at": text("now()")},
    )
    await session.execute(statement)


IdempotencyGuard = Depends(idempotency_guard)
IDEMPOTENCY_TTL = timedelta(hours=24)
