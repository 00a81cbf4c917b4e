"""Hot routes: a few high-volume operations answered before the framework's router.

FastAPI matches a request by walking every included router, re-checking each one's routes
on the way, and then solves the endpoint's dependencies: on a by-id read that answers from
one database statement, this costs more than the read itself. A hot route is matched by one
regular expression and calls the same function its FastAPI endpoint calls, so behaviour,
errors and documentation stay those of the endpoint (``tests/test_conventions.py`` checks that
each hot route is also a documented operation).

A request a hot route cannot answer exactly as the endpoint would (a malformed id, an
oversized header, a body its schema refuses) is not claimed: it falls through to the
framework, which validates it, and is handed the body the hot route read, as it arrived.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.kit.errors import CRMError
from app.kit.problems import problem_response

# Canonical lowercase or uppercase hyphenated UUIDs; anything else is left to the framework.
_UUID = "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_PARAMETER = re.compile(r"\{([a-z_]+)\}")

Handler = Callable[[Request, Mapping[str, uuid.UUID]], Awaitable[Response | None]]
Body = TypeVar("Body", bound=BaseModel)


async def parse_body(request: Request, schema: type[Body]) -> Body | None:
    """The JSON body as the endpoint's ``schema``, parsed as the framework parses it; None
    for anything the framework would refuse (it answers that, once the route falls through)."""
    try:
        return schema.model_validate(json.loads(await request.body()))
    except (ValueError, RecursionError):  # pydantic's ValidationError is a ValueError
        return None


@dataclass(frozen=True)
class HotRoute:
    """``path`` is the operation's documented path; each ``{parameter}`` in it is a UUID."""

    method: str
    path: str
    handler: Handler
    pattern: re.Pattern[str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        parts = _PARAMETER.split(self.path)
        regex = "".join(
            f"(?P<{part}>{_UUID})" if index % 2 else re.escape(part)
            for index, part in enumerate(parts)
        )
        object.__setattr__(self, "pattern", re.compile(regex))

    def match(self, scope: Scope) -> dict[str, uuid.UUID] | None:
        if scope["method"] != self.method:
            return None
        found = self.pattern.fullmatch(scope["path"])
        if found is None:
            return None
        return {name: uuid.UUID(value) for name, value in found.groupdict().items()}


class HotRoutes:
    """ASGI middleware answering the hot routes; everything else goes on to the app."""

    def __init__(self, app: ASGIApp, routes: Sequence[HotRoute]) -> None:
        self.app = app
        self.routes = tuple(routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            for route in self.routes:
                params = route.match(scope)
                if params is not None:
                    await self._answer(route, params, scope, receive, send)
                    return
        await self.app(scope, receive, send)

    async def _answer(
        self,
        route: HotRoute,
        params: dict[str, uuid.UUID],
        scope: Scope,
        receive: Receive,
        send: Send,
    ) -> None:
        received = _Recorded(receive)
        request = Request(scope, received)
        try:
            response = await route.handler(request, params)
        except CRMError as error:
            response = problem_response(error)
        if response is None:
            await self.app(scope, received.replay(), send)
            return
        # What the router would have recorded, for access logs and metrics by route.
        scope["route"] = route
        scope["path_params"] = {name: str(value) for name, value in params.items()}
        await response(scope, receive, send)


class _Recorded:
    """``receive``, keeping the body's messages so that a route falling through can hand the
    framework the request as it arrived."""

    def __init__(self, receive: Receive) -> None:
        self.receive = receive
        self.messages: list[Message] = []

    async def __call__(self) -> Message:
        message = await self.receive()
        if message["type"] == "http.request":
            self.messages.append(message)
        return message

    def replay(self) -> Receive:
        pending = list(self.messages)

        async def receive() -> Message:
            return pending.pop(0) if pending else await self.receive()

        return receive
