"""The route class that owns the unit of work.

It commits the request's session after the endpoint has produced its response and *before*
that response is handed to the server, so a failed commit becomes an error response instead
of following a 2xx the client already received.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from fastapi import Request
from fastapi.routing import APIRoute
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

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
