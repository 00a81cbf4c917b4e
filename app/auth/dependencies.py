"""Authenticating ``Authorization: Bearer`` API keys and checking scopes."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import keys
from app.auth.scopes import Scope, grants
from app.db.session import SessionDep, bind_workspace
from app.kit.errors import Forbidden, Unauthenticated

_FIND_KEY = text(
    "SELECT id, workspace_id, secret_hash, scopes, expires_at, revoked_at, last_used_at "
    "FROM crm_find_api_key(:prefix)"
)
_TOUCH_KEY = text(
    "UPDATE api_keys SET last_used_at = now() "
    "WHERE workspace_id = :workspace_id AND id = :id "
    "AND (last_used_at IS NULL OR last_used_at < now() - interval '60 seconds')"
)
# last_used_at is written at most this often per key, so reads stay reads.
TOUCH_INTERVAL = timedelta(seconds=60)


@dataclass(frozen=True)
class AuthContext:
    workspace_id: uuid.UUID
    api_key_id: uuid.UUID
    scopes: frozenset[str]

    def has(self, scope: Scope) -> bool:
        return grants(self.scopes, scope)


@dataclass
class _CachedKey:
    context: AuthContext
    expires_at: datetime | None
    last_used_at: datetime | None
    fresh_until: float


@dataclass
class KeyCache:
    """Verified keys, by digest, for a few seconds: most requests skip the lookup."""

    ttl_seconds: float
    _entries: dict[str, _CachedKey] = field(default_factory=dict)

    def get(self, digest: str) -> _CachedKey | None:
        entry = self._entries.get(digest)
        if entry is None or entry.fresh_until < time.monotonic():
            self._entries.pop(digest, None)
            return None
        return entry

    def put(self, digest: str, entry: _CachedKey) -> None:
        if self.ttl_seconds <= 0:
            return
        if len(self._entries) > 10_000:
            self._entries.clear()
        self._entries[digest] = entry

    def forget(self, api_key_id: uuid.UUID) -> None:
        for digest, entry in list(self._entries.items()):
            if entry.context.api_key_id == api_key_id:
                del self._entries[digest]


# One per process; create_app sets its TTL from settings.
key_cache = KeyCache(ttl_seconds=10.0)


def _bearer_token(request: Request) -> str:
    header = request.headers.get("authorization")
    if not header:
        raise Unauthenticated("Send an API key as 'Authorization: Bearer <key>'")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("Send an API key as 'Authorization: Bearer <key>'")
    return token.strip()


async def _lookup(session: AsyncSession, token: str, cache: KeyCache) -> _CachedKey:
    digest = keys.digest(token)
    cached = cache.get(digest)
    if cached is not None:
        return cached
    prefix = keys.parse_prefix(token)
    if prefix is None:
        raise Unauthenticated("The API key is malformed")
    row = (await session.execute(_FIND_KEY, {"prefix": prefix})).one_or_none()
    if row is None or not keys.matches(token, row.secret_hash):
        raise Unauthenticated("The API key is not valid")
    if row.revoked_at is not None:
        raise Unauthenticated("The API key has been revoked")
    entry = _CachedKey(
        context=AuthContext(
            workspace_id=row.workspace_id, api_key_id=row.id, scopes=frozenset(row.scopes)
        ),
        expires_at=row.expires_at,
        last_used_at=row.last_used_at,
        fresh_until=time.monotonic() + cache.ttl_seconds,
    )
    cache.put(digest, entry)
    return entry


async def authenticate(request: Request, session: AsyncSession) -> AuthContext:
    """Verify the bearer key and bind the request's transaction to its workspace."""
    cached_context = getattr(request.state, "auth", None)
    if isinstance(cached_context, AuthContext):
        return cached_context
    token = _bearer_token(request)
    entry = await _lookup(session, token, key_cache)
    now = datetime.now(UTC)
    if entry.expires_at is not None and entry.expires_at <= now:
        raise Unauthenticated("The API key has expired")
    await bind_workspace(session, entry.context.workspace_id)
    if entry.last_used_at is None or now - entry.last_used_at > TOUCH_INTERVAL:
        await session.execute(
            _TOUCH_KEY,
            {"workspace_id": entry.context.workspace_id, "id": entry.context.api_key_id},
        )
        entry.last_used_at = now
    request.state.auth = entry.context
    return entry.context


class Authenticator:
    """``Depends(Authenticator(Scope.x))``: a valid key, holding scope x (or admin)."""

    def __init__(self, scope: Scope | None = None) -> None:
        self.scope = scope

    async def __call__(self, request: Request, session: SessionDep) -> AuthContext:
        context = await authenticate(request, session)
        if self.scope is not None and not context.has(self.scope):
            raise Forbidden(f"This needs the '{self.scope.value}' scope")
        return context


AnyKey = Annotated[AuthContext, Depends(Authenticator())]
AdminKey = Annotated[AuthContext, Depends(Authenticator(Scope.admin))]
ContactsRead = Annotated[AuthContext, Depends(Authenticator(Scope.contacts_read))]
ContactsWrite = Annotated[AuthContext, Depends(Authenticator(Scope.contacts_write))]
