"""Routing: the route class that owns the unit of work, and routers that claim only their paths.

``UnitOfWorkRoute`` commits the request's session after the endpoint has produced its response
and *before* that response is handed to the server, so a failed commit becomes an error
response instead of following a 2xx the client already received.

``PrefixedRouter`` answers "no match" at once for a path outside its prefix. FastAPI matches an
included router by asking every route it holds, recursively, prefix or not: a request for the
GraphQL endpoint, or for a router included late, walked every earlier route of the API (about
0.35 ms for ``/graphql``, 0.5 ms for a contact's 360 view, on each request).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from fastapi import Request
from fastapi.routing import APIRoute, APIRouter
from sqlalchemy.ext.asyncio import AsyncSession
from starlette._utils import get_route_path  # the path as routes match it (no root path)
from starlette.responses import Response
from starlette.routing import Match
from starlette.types import Scope

from app.kit.errors import BODY_RESPONSES
from app.kit.idempotency import IdempotencyGuard, IdempotentReplay, PendingKey, record_outcome


class UnitOfWorkRoute(APIRoute):
    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        methods = {method.upper() for method in kwargs.get("methods") or ()}
        if "POST" in methods:
            # Every POST accepts Idempotency-Key (and documents it in OpenAPI).
            kwargs["dependencies"] = [*(kwargs.get("dependencies") or []), IdempotencyGuard]
        if methods & {"POST", "PUT", "PATCH"}:
            # The request guard and JSON parsing can refuse any body (400, 413, 415).
            kwargs["responses"] = {**BODY_RESPONSES, **(kwargs.get("responses") or {})}
        super().__init__(path, endpoint, **kwargs)

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def unit_of_work(request: Request) -> Response:
            try:
                response = await handler(request)
            except IdempotentReplay as replay:
                await _finish(request, commit=False)
                return replay.response
            except BaseException:
                await _finish(request, commit=False)
                raise
            session: AsyncSession | None = getattr(request.state, "session", None)
            pending: PendingKey | None = getattr(request.state, "idempotency", None)
            if session is not None and pending is not None and 200 <= response.status_code < 300:
                await record_outcome(session, pending, response)
            await _finish(request, commit=response.status_code < 400)
            return response

        return unit_of_work


async def _finish(request: Request, *, commit: bool) -> None:
    before_finish: Callable[[], Awaitable[None]] | None = getattr(
        request.state, "before_finish", None
    )
    if before_finish is not None:
        await before_finish()
    session: AsyncSession | None = getattr(request.state, "session", None)
    if session is None or not session.in_transaction():
        return
    if commit:
        await session.commit()
    else:
        await session.rollback()


class PrefixedRouter(APIRouter):
    """An ``APIRouter`` that matches nothing outside the path it is served under.

    The path is its own prefix under those of the ``PrefixedRouter``s that include it (and
    their include prefixes), up to the first path parameter. Include one only from another
    ``PrefixedRouter``, or from the application without a prefix: an outer prefix it cannot
    see would make it refuse every path (``tests/test_routing.py`` routes every documented
    operation, so such a slip fails there).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.served_under = ""
        self._included: list[tuple[str, PrefixedRouter]] = []

    @property
    def served_prefix(self) -> str:
        """The literal start of every path this router's routes match."""
        return (self.served_under + self.prefix).split("{", 1)[0]

    def include_router(self, router: APIRouter, *args: Any, **kwargs: Any) -> None:
        super().include_router(router, *args, **kwargs)
        if isinstance(router, PrefixedRouter):
            self._included.append((kwargs.get("prefix") or "", router))
            self._serve_included()

    def _serve_included(self) -> None:
        for prefix, router in self._included:
            router.served_under = self.served_prefix + prefix
            router._serve_included()

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if not get_route_path(scope).startswith(self.served_prefix):
            return Match.NONE, {}
        return super().matches(scope)
