"""Routers claim only the paths under their prefix, and every documented operation still routes."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute, Match

from app.kit.routing import PrefixedRouter
from app.main import create_app

_PARAMETER = re.compile(r"\{([^}]+)\}")


def _scope(method: str, path: str) -> dict[str, Any]:
    return {
        "type": "http",
        "method": method,
        "path": path,
        "root_path": "",
        "headers": [],
        "query_string": b"",
    }


def _matched(app: FastAPI, method: str, path: str) -> BaseRoute | None:
    """The top-level route the application hands the request to, as its router picks it."""
    for route in app.router.routes:
        match, _ = route.matches(_scope(method, path))
        if match == Match.FULL:
            return route
    return None


def _prefixed_routers(routes: list[BaseRoute]) -> list[PrefixedRouter]:
    """Every PrefixedRouter included under ``routes``, however deep."""
    found: list[PrefixedRouter] = []
    for route in routes:
        router = getattr(route, "original_router", None)
        if isinstance(router, PrefixedRouter):
            found.append(router)
            found += _prefixed_routers(router.routes)
    return found


def _example(operation: dict[str, Any], name: str) -> str:
    for parameter in operation.get("parameters", []):
        if parameter["name"] == name and parameter["in"] == "path":
            if parameter.get("schema", {}).get("format") == "uuid":
                return str(uuid.uuid4())
            break
    return "x"


@pytest.fixture(scope="module")
def app() -> FastAPI:
    return create_app()


def test_every_documented_operation_is_matched(app: FastAPI) -> None:
    paths = app.openapi()["paths"]
    unmatched = []
    for template, operations in paths.items():
        for method, operation in operations.items():
            path = _PARAMETER.sub(
                lambda found, operation=operation: _example(operation, found.group(1)), template
            )
            if _matched(app, method.upper(), path) is None:
                unmatched.append(f"{method.upper()} {template}")
    assert len(paths) > 50
    assert unmatched == []


def test_the_api_routers_are_served_under_their_full_prefixes(app: FastAPI) -> None:
    routers = _prefixed_routers(app.router.routes)
    prefixes = {router.served_prefix for router in routers}
    assert "/v1" in prefixes
    assert {"/v1/contacts", "/v1/loyalty", "/v1/cases", "/v1/workspace"} <= prefixes
    assert all(prefix.startswith("/v1") for prefix in prefixes)


def test_graphql_and_health_are_not_under_the_api_prefix(app: FastAPI) -> None:
    assert _matched(app, "POST", "/graphql") is not None
    assert _matched(app, "GET", "/healthz") is not None
    assert _matched(app, "GET", "/v1/no-such-thing") is None


class _CountingRoute(APIRoute):
    asked = 0

    def matches(self, scope: Any) -> tuple[Match, Any]:
        type(self).asked += 1
        return super().matches(scope)


def _tree(include_prefix: str = "") -> tuple[FastAPI, PrefixedRouter]:
    async def thing(thing_id: uuid.UUID) -> dict[str, str]:
        return {"id": str(thing_id)}

    outer = PrefixedRouter(prefix="/v9")
    inner = PrefixedRouter(prefix="/things", route_class=_CountingRoute)
    inner.add_api_route("/{thing_id}", thing, methods=["GET"])
    outer.include_router(inner, prefix=include_prefix)
    app = FastAPI()
    app.include_router(outer)
    _CountingRoute.asked = 0
    return app, inner


def test_a_path_outside_the_prefix_never_asks_the_routers_routes() -> None:
    app, _ = _tree()
    assert _matched(app, "GET", "/elsewhere/things/1") is None
    assert _matched(app, "GET", "/v9/other/1") is None
    assert _CountingRoute.asked == 0
    assert _matched(app, "GET", f"/v9/things/{uuid.uuid4()}") is not None
    assert _CountingRoute.asked > 0


def test_an_include_prefix_is_part_of_the_served_prefix() -> None:
    app, inner = _tree(include_prefix="/extra")
    assert inner.served_prefix == "/v9/extra/things"
    assert _matched(app, "GET", f"/v9/extra/things/{uuid.uuid4()}") is not None
    assert _matched(app, "GET", f"/v9/things/{uuid.uuid4()}") is None


def test_a_router_included_after_its_own_includes_passes_its_prefix_down() -> None:
    inner = PrefixedRouter(prefix="/things")
    middle = PrefixedRouter(prefix="/v9")
    middle.include_router(inner)
    top = PrefixedRouter(prefix="/api")
    top.include_router(middle)
    assert middle.served_prefix == "/api/v9"
    assert inner.served_prefix == "/api/v9/things"


def test_a_prefix_with_a_path_parameter_is_compared_up_to_the_parameter() -> None:
    router = PrefixedRouter(prefix="/owners/{owner_id}/pets")
    assert router.served_prefix == "/owners/"
