"""Per-request GraphQL context: the caller, one database session, and the DataLoaders.

Strawberry resolves sibling fields concurrently, and an ``AsyncSession`` must never be used by
two tasks at once. The request's resolvers therefore share one session behind a lock: DataLoaders
already batch their reads, so little concurrency is lost, the whole query sees one snapshot and
one workspace binding, and a query holds one pooled connection instead of one per resolver.

Database work runs in a task shielded from cancellation. graphql-core cancels in-flight sibling
resolvers when an error aborts the operation, and a query cancelled half-way through leaves the
connection unusable; shielded, the work finishes and the request's end waits for it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.fastapi import BaseContext

from app.auth.dependencies import AuthContext
from app.auth.scopes import Scope
from app.graphql.dataloaders import Loaders
from app.kit.errors import Forbidden, Unauthenticated

T = TypeVar("T")


class RequestFinished(RuntimeError):
    """A resolver asked for the database after its request's transaction ended."""


@dataclass
class Context(BaseContext):
    http_request: Request
    session: AsyncSession
    auth_context: AuthContext | None
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _closed: bool = False

    def __post_init__(self) -> None:
        super().__init__()
        self.loaders = Loaders(self)

    def require(self, scope: Scope | None = None) -> AuthContext:
        if self.auth_context is None:
            raise Unauthenticated()
        if scope is not None and not self.auth_context.has(scope):
            raise Forbidden(f"This needs the '{scope.value}' scope")
        return self.auth_context

    async def read(self, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
        """Run ``work`` on the request's session, one resolver at a time."""
        return await self._run(work, savepoint=False)

    async def write(self, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
        """A mutation's unit of work: a savepoint, released on success and rolled back on
        error, so one failed mutation leaves the effects of the request's others intact."""
        return await self._run(work, savepoint=True)

    async def _run(self, work: Callable[[AsyncSession], Awaitable[T]], *, savepoint: bool) -> T:
        async def guarded() -> T:
            async with self._lock:
                if self._closed:
                    raise RequestFinished("the GraphQL request has already finished")
                if not savepoint:
                    return await work(self.session)
                async with self.session.begin_nested():
                    return await work(self.session)

        task = asyncio.ensure_future(guarded())
        # Retrieve the outcome even if nobody awaits it any more (the resolver was cancelled).
        task.add_done_callback(lambda done: done.cancelled() or done.exception())
        return await asyncio.shield(task)

    async def close(self) -> None:
        """Wait for database work still running, then refuse more: the request ends."""
        async with self._lock:
            self._closed = True
