"""Hot routes: a few high-volume reads answered before the framework's router.

FastAPI matches a request by walking every included router, re-checking each one's routes
on the way, and then solves the endpoint's dependencies: on a by-id read that answers from
one database statement, this costs more than the read itself. A hot route is matched by one
regular expression and calls the same function its FastAPI endpoint calls, so behaviour,
errors and documentation stay those of the endpoint (``tests/test_conventions.py`` checks that
each hot route is also a documented operation).

A request a hot route cannot answer exactly as the endpoint would (a malformed id, an
oversized header) is not claimed: it falls through to the framework, which validates it.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from app.kit.errors import CRMError
from app.kit.problems import problem_response

# Canonical lowercase or uppercase hyphenated UUIDs; anything else is left to the framework.
_UUID = "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_PARAMETER = re.compile(r"\{([a-z_]+)\}")

Handler = Callable[[Request, Mapping[str, uuid.UUID]], Awaitable[Response | None]]


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
                if params is None:
                    continue
                if await self._answer(route, params, scope, receive, send):
                    return
                break
        await self.app(scope, receive, send)

    @staticmethod
    async def _answer(
        route: HotRoute,
        params: dict[str, uuid.UUID],
        scope: Scope,
        receive: Receive,
        send: Send,
    ) -> bool:
        request = Request(scope, receive)
        try:
            response = await route.handler(request, params)
        except CRMError as error:
            response = problem_response(error)
        if response is None:
            return False
        # What the router would have recorded, for access logs and metrics by route.
        scope["route"] = route
        scope["path_params"] = {name: str(value) for name, value in params.items()}
        await response(scope, receive, send)
        return True
