"""Per-request GraphQL context: the caller, one database session, and the DataLoaders.

Strawberry resolves sibling fields concurrently, and an ``AsyncSession`` must never be used by
two tasks at once. The request's resolvers therefore share one session behind a lock: DataLoaders
already batch their reads, so little concurrency is lost, the whole query sees one snapshot and
one workspace binding, and a query holds one pooled connection instead of one per resolver.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.fastapi import BaseContext

from app.auth.dependencies import AuthContext
from app.auth.scopes import Scope
from app.kit.errors import Forbidden, Unauthenticated


@dataclass
class Context(BaseContext):
    http_request: Request
    session: AsyncSession
    auth_context: AuthContext | None
    loaders: dict[str, Any] = field(default_factory=dict)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def __post_init__(self) -> None:
        super().__init__()

    def require(self, scope: Scope | None = None) -> AuthContext:
        if self.auth_context is None:
            raise Unauthenticated()
        if scope is not None and not self.auth_context.has(scope):
            raise Forbidden(f"This needs the '{scope.value}' scope")
        return self.auth_context

    @contextlib.asynccontextmanager
    async def db(self) -> AsyncIterator[AsyncSession]:
        """The request's session, for one resolver at a time."""
        async with self._lock:
            yield self.session

    @contextlib.asynccontextmanager
    async def unit_of_work(self) -> AsyncIterator[AsyncSession]:
        """A mutation's unit of work: a savepoint, released on success, rolled back on error,
        so one failed mutation in a request leaves the others' effects intact."""
        async with self._lock, self.session.begin_nested():
            yield self.session
