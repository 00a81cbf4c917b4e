"""Authenticating ``Authorization: Bearer`` API keys and checking scopes."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.auth import keys
from app.auth.scopes import Scope, grants
from app.db.direct import DirectPool, direct_pool
from app.db.session import SessionDep, bind_workspace
from app.kit.errors import Forbidden, Unauthenticated

# A key is found before any workspace is bound, outside the request's transaction: on the
# direct pool, whatever the request does next.
_FIND_KEY = (
    "SELECT id, workspace_id, secret_hash, scopes, expires_at, revoked_at FROM crm_find_api_key($1)"
)
_TOUCH_KEYS = text(
    "UPDATE api_keys SET last_used_at = GREATEST(COALESCE(last_used_at, :at), :at) "
    "WHERE workspace_id = :workspace_id AND id = ANY(:ids)"
)


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
    fresh_until: float


@dataclass
class KeyCache:
    """Verified keys, by digest, for a few seconds: most requests skip the lookup.

    Concurrent requests with the same uncached key share one lookup instead of each making
    their own (a cold cache under load would otherwise send a burst of identical queries).
    """

    ttl_seconds: float
    _entries: dict[str, _CachedKey] = field(default_factory=dict)
    _in_flight: dict[str, asyncio.Future[_CachedKey]] = field(default_factory=dict)

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


@dataclass
class KeyUsage:
    """When each key was last used, written in batches off the request path.

    Writing ``last_used_at`` during requests would make every read a write, and concurrent
    requests with one key would queue on that row's lock.
    """

    _seen: dict[uuid.UUID, tuple[uuid.UUID, datetime]] = field(default_factory=dict)

    def mark(self, context: AuthContext) -> None:
        self._seen[context.api_key_id] = (context.workspace_id, datetime.now(UTC))

    async def flush(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        if not self._seen:
            return
        pending, self._seen = self._seen, {}
        by_workspace: dict[uuid.UUID, dict[datetime, list[uuid.UUID]]] = {}
        for key_id, (workspace_id, at) in pending.items():
            by_workspace.setdefault(workspace_id, {}).setdefault(at, []).append(key_id)
        async with sessionmaker() as session, session.begin():
            for workspace_id, moments in by_workspace.items():
                await bind_workspace(session, workspace_id)
                for at, ids in moments.items():
                    await session.execute(
                        _TOUCH_KEYS, {"workspace_id": workspace_id, "ids": ids, "at": at}
                    )


# One of each per process; create_app sets the cache's TTL from settings.
key_cache = KeyCache(ttl_seconds=10.0)
key_usage = KeyUsage()


def _bearer_token(request: Request) -> str:
    header = request.headers.get("authorization")
    if not header:
        raise Unauthenticated("Send an API key as 'Authorization: Bearer <key>'")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("Send an API key as 'Authorization: Bearer <key>'")
    return token.strip()


async def _lookup(token: str, direct: DirectPool, cache: KeyCache) -> _CachedKey:
    digest = keys.digest(token)
    cached = cache.get(digest)
    if cached is not None:
        return cached
    in_flight = cache._in_flight.get(digest)
    if in_flight is not None:
        return await asyncio.shield(in_flight)
    future: asyncio.Future[_CachedKey] = asyncio.get_running_loop().create_future()
    cache._in_flight[digest] = future
    try:
        entry = await _fetch(token, digest, direct, cache)
    except BaseException as exc:
        future.set_exception(exc)
        future.exception()  # retrieved: waiters may be none
        raise
    else:
        future.set_result(entry)
        return entry
    finally:
        cache._in_flight.pop(digest, None)


async def _fetch(token: str, digest: str, direct: DirectPool, cache: KeyCache) -> _CachedKey:
    prefix = keys.parse_prefix(token)
    if prefix is None:
        raise Unauthenticated("The API key is malformed")
    row = await direct.fetchrow(_FIND_KEY, prefix)
    if row is None or not keys.matches(token, row["secret_hash"]):
        raise Unauthenticated("The API key is not valid")
    if row["revoked_at"] is not None:
        raise Unauthenticated("The API key has been revoked")
    entry = _CachedKey(
        context=AuthContext(
            workspace_id=row["workspace_id"],
            api_key_id=row["id"],
            scopes=frozenset(row["scopes"]),
        ),
        expires_at=row["expires_at"],
        fresh_until=time.monotonic() + cache.ttl_seconds,
    )
    cache.put(digest, entry)
    return entry


async def _resolve(request: Request) -> AuthContext:
    token = _bearer_token(request)
    entry = await _lookup(token, direct_pool(request), key_cache)
    if entry.expires_at is not None and entry.expires_at <= datetime.now(UTC):
        raise Unauthenticated("The API key has expired")
    key_usage.mark(entry.context)
    return entry.context


async def authenticate(request: Request, session: AsyncSession) -> AuthContext:
    """Verify the bearer key and bind the request's transaction to its workspace."""
    cached_context = getattr(request.state, "auth", None)
    if isinstance(cached_context, AuthContext):
        return cached_context
    context = await _resolve(request)
    await bind_workspace(session, context.workspace_id)
    # Only once bound: later callers in this request reuse the context and the binding.
    request.state.auth = context
    return context


async def authorize(request: Request, scope: Scope) -> AuthContext:
    """For the single-statement operations (app.db.direct): a valid key holding ``scope``,
    with no session.

    The workspace is not bound here: each operation's database function binds it itself.
    """
    context = await _resolve(request)
    if not context.has(scope):
        raise Forbidden(f"This needs the '{scope.value}' scope")
    return context


class Authenticator:
    """``Depends(Authenticator(Scope.x))``: a valid key, holding scope x (or admin)."""

    def __init__(self, scope: Scope | None = None) -> None:
        self.scope = scope

    async def __call__(self, request: Request, session: SessionDep) -> AuthContext:
        context = await authenticate(request, session)
        if self.scope is not None and not context.has(self.scope):
            raise Forbidden(f"This needs the '{self.scope.value}' scope")
        return context


class ReadAuthenticator:
    """``Depends(ReadAuthenticator(Scope.x))`` for the single-statement reads: no session."""

    def __init__(self, scope: Scope) -> None:
        self.scope = scope

    async def __call__(self, request: Request) -> AuthContext:
        return await authorize(request, self.scope)


AnyKey = Annotated[AuthContext, Depends(Authenticator())]
AdminKey = Annotated[AuthContext, Depends(Authenticator(Scope.admin))]
ContactsRead = Annotated[AuthContext, Depends(Authenticator(Scope.contacts_read))]
ContactsWrite = Annotated[AuthContext, Depends(Authenticator(Scope.contacts_write))]
ContactsReadNoSession = Annotated[AuthContext, Depends(ReadAuthenticator(Scope.contacts_read))]
# Accounts are read and written with the contacts scopes: the scope list has no accounts area.
AccountsRead = ContactsRead
AccountsWrite = ContactsWrite
PurchasesRead = Annotated[AuthContext, Depends(Authenticator(Scope.purchases_read))]
PurchasesWrite = Annotated[AuthContext, Depends(Authenticator(Scope.purchases_write))]
InteractionsRead = Annotated[AuthContext, Depends(Authenticator(Scope.interactions_read))]
InteractionsWrite = Annotated[AuthContext, Depends(Authenticator(Scope.interactions_write))]
LoyaltyRead = Annotated[AuthContext, Depends(Authenticator(Scope.loyalty_read))]
LoyaltyWrite = Annotated[AuthContext, Depends(Authenticator(Scope.loyalty_write))]
OpportunitiesRead = Annotated[AuthContext, Depends(Authenticator(Scope.opportunities_read))]
OpportunitiesWrite = Annotated[AuthContext, Depends(Authenticator(Scope.opportunities_write))]
CasesRead = Annotated[AuthContext, Depends(Authenticator(Scope.cases_read))]
CasesWrite = Annotated[AuthContext, Depends(Authenticator(Scope.cases_write))]
