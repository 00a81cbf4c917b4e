"""Property-based tests: every REST operation against its own OpenAPI description.

Schemathesis turns each operation of ``app.openapi()`` into a Hypothesis strategy of requests,
both conforming (``GenerationMode.POSITIVE``) and malformed (``NEGATIVE``: wrong types, values
out of range, missing or unknown fields, bodies that are not JSON at all). Every response goes
through schemathesis' own checks (no 5xx, status code documented, content type documented,
body valid against the documented schema, invalid input rejected) plus one of ours: every 4xx
is ``application/problem+json`` with ``type``, ``title``, ``status``, ``detail`` and ``code``.

How the requests reach the app
------------------------------
Schemathesis' own ASGI support (``from_asgi`` / ``case.call(app=...)``) does not fit this suite:
it runs the app on a private event loop in a portal thread and starts the app's lifespan there a
second time, while the ``app`` fixture's lifespan, and the asyncpg engine under it, live on
pytest-asyncio's session loop. Connections made on one loop cannot be used on another, so every
request has to run on the session loop. Hypothesis, on the other hand, drives a synchronous
test function and must not block that loop. So:

1. the pytest test is async and runs on the session loop, owning the workspace and the client;
2. it hands the synchronous ``@given`` function to a worker thread (``asyncio.to_thread``), so
   the loop stays free while Hypothesis generates, runs and shrinks examples;
3. each example is serialised by schemathesis exactly as it would put it on the wire
   (``case.as_transport_kwargs`` -> a prepared ``requests`` request), then sent with
   ``asyncio.run_coroutine_threadsafe`` to the session loop, where ``httpx.ASGITransport``
   calls the real app (middleware, auth, database and all);
4. the answer comes back to the worker thread as a ``schemathesis.Response`` and is judged by
   ``case.validate_response``, so a failure is a schemathesis report with a curl reproduction,
   and Hypothesis shrinks it like any other.

Reproducible and bounded: ``derandomize=True`` (a fixed seed per test), no example database, a
fixed ``max_examples`` per operation and generation mode, ``deadline=None`` (the database sets
the pace, not the code under test).

What is generated
-----------------
Requests carry the admin key of a workspace made for the test, so they reach the handlers. To
get past "not found" to the interesting branches (ETags, 304, 412, revocation), path parameters
are also drawn from resources that exist, and conditional headers from ETags that can match.
Schema-scoped ``flatmap_body`` / ``flatmap_query`` hooks put U+0000 into some generated strings:
it is valid JSON and valid for every ``type: string``, yet PostgreSQL text cannot hold it, and
random text almost never contains it. A separate, smaller run sends no key, malformed keys,
unknown keys and a revoked key, and expects 401.
"""

from __future__ import annotations

import asyncio
import copy as copy_module
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import Case, CheckContext, GenerationMode, HookContext
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.specs.openapi.schemas import OpenApiSchema

from tests.conftest import WorkspaceHandle

BASE_URL = "http://testserver"
COMMITTED_SPEC = Path(__file__).resolve().parent.parent / "openapi" / "openapi.json"
HTTP_METHODS = frozenset({"get", "put", "post", "patch", "delete", "head", "options", "trace"})
MAX_EXAMPLES = 60
AUTH_MAX_EXAMPLES = 20
REQUEST_TIMEOUT = 30.0
# Values for If-Match / If-None-Match that match (or nearly match) a fresh resource's ETag.
ETAGS = ("*", '"1"', 'W/"1"', '"2", "1"', '"2"', "")
SEEDED_RESOURCES = 4

HYPOTHESIS_SETTINGS = settings(
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=False,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)


def _committed_operation_ids() -> list[str]:
    spec = json.loads(COMMITTED_SPEC.read_text(encoding="utf-8"))
    return sorted(
        operation["operationId"]
        for path_item in spec["paths"].values()
        for method, operation in path_item.items()
        if method in HTTP_METHODS
    )


# Read from the committed spec so that each operation is a test item of its own;
# test_every_operation_is_covered fails when the app's live schema differs from it.
OPERATION_IDS = _committed_operation_ids()


# --- checks -----------------------------------------------------------------------------------


def problem_details_on_client_errors(
    ctx: CheckContext, response: schemathesis.Response, case: Case[Any]
) -> None:
    """Every 4xx is an RFC 9457 problem document carrying our stable ``code``."""
    if not 400 <= response.status_code < 500:
        return
    content_type = next(iter(response.headers.get("content-type", [])), "")
    media_type = content_type.split(";")[0].strip().lower()
    assert media_type == "application/problem+json", (
        f"{response.status_code} sent as {content_type!r}, not application/problem+json"
    )
    body = response.json()
    assert isinstance(body, dict), f"problem document is not an object: {body!r}"
    for name in ("type", "title", "detail", "code"):
        assert isinstance(body.get(name), str), f"problem lacks {name!r}: {body}"
        assert body[name], f"problem has an empty {name!r}: {body}"
    assert body.get("status") == response.status_code, f"problem status mismatch: {body}"


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
    problem_details_on_client_errors,
]
# Not positive_data_acceptance: a schema-valid request may still be refused with a 422 for
# rules JSON Schema does not express (an IANA time zone, an expiry in the past, a used
# Idempotency-Key); status_code_conformance already requires that 422 to be documented.


# --- generation -------------------------------------------------------------------------------


def _string_paths(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(value, str) and value:
        yield path
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _string_paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _string_paths(item, (*path, index))


def _replace_at(value: Any, path: tuple[Any, ...], change: Callable[[str], str]) -> Any:
    if not path:
        return change(value)
    head, rest = path[0], path[1:]
    copy: Any = dict(value) if isinstance(value, dict) else list(value)
    copy[head] = _replace_at(value[head], rest, change)
    return copy


def _sometimes_nul(context: HookContext, value: Any) -> st.SearchStrategy[Any]:
    """One time in four, one character of one generated string becomes U+0000.

    Same length, same type: a string that matched its schema still does.
    """
    paths = list(_string_paths(value))
    if not paths:
        return st.just(value)

    def inject(choice: tuple[tuple[Any, ...], int]) -> Any:
        path, position = choice

        def change(text: str) -> str:
            at = position % len(text)
            return f"{text[:at]}\x00{text[at + 1 :]}"

        return _replace_at(value, path, change)

    injected = st.tuples(st.sampled_from(paths), st.integers(0, 255)).map(inject)
    return st.sampled_from((True, False, False, False)).flatmap(
        lambda yes: injected if yes else st.just(value)
    )


def _without_security(spec: dict[str, Any]) -> dict[str, Any]:
    """The spec as the harness sees it: it sends the API key itself (the auth tests below cover
    requests without one), so schemathesis must not treat a missing key as invalid input."""
    copy = copy_module.deepcopy(spec)
    for operations in copy.get("paths", {}).values():
        for operation in operations.values():
            if isinstance(operation, dict):
                operation.pop("security", None)
    return copy


def _schema(app: FastAPI) -> OpenApiSchema:
    schema: OpenApiSchema = schemathesis.openapi.from_dict(_without_security(app.openapi()))
    schema.hook("flatmap_body")(_sometimes_nul)
    schema.hook("flatmap_query")(_sometimes_nul)
    return schema


def _strategy(
    schema: OpenApiSchema,
    operation_id: str,
    mode: GenerationMode,
    existing: dict[str, list[str]],
) -> st.SearchStrategy[Case[Any]]:
    """Generated requests, some aimed at resources that exist and at ETags that match."""
    operation = schema.find_operation_by_id(operation_id)
    plain = operation.as_strategy(generation_mode=mode)
    path_names = [p.name for p in operation.path_parameters if existing.get(p.name)]
    conditional = [
        p.name for p in operation.headers if p.name.lower() in ("if-match", "if-none-match")
    ]
    if mode.is_negative:
        # Fixing a header would leave less to negate; aim only the path at real resources.
        conditional = []
    if not path_names and not conditional:
        return plain
    paths = st.fixed_dictionaries({name: st.sampled_from(existing[name]) for name in path_names})
    headers = st.fixed_dictionaries(
        {}, optional={name: st.sampled_from(ETAGS) for name in conditional}
    )
    cache: dict[str, st.SearchStrategy[Case[Any]]] = {}

    def aimed(fixed: tuple[dict[str, str], dict[str, str]]) -> st.SearchStrategy[Case[Any]]:
        key = json.dumps(fixed, sort_keys=True)
        if key not in cache:
            cache[key] = operation.as_strategy(
                generation_mode=mode, path_parameters=fixed[0] or None, headers=fixed[1] or None
            )
        return cache[key]

    return st.one_of(plain, st.tuples(paths, headers).flatmap(aimed))


# --- transport --------------------------------------------------------------------------------


class AppCaller:
    """Sends schemathesis cases to the app on the session loop, from Hypothesis' thread."""

    def __init__(self, client: httpx.AsyncClient, loop: asyncio.AbstractEventLoop) -> None:
        self.client = client
        self.loop = loop

    def __call__(self, case: Case[Any], headers: dict[str, str]) -> schemathesis.Response:
        kwargs = case.as_transport_kwargs(base_url=BASE_URL, headers=headers)
        fields = ("method", "url", "headers", "params", "cookies", "json", "data", "files")
        prepared = requests.Request(**{key: kwargs[key] for key in fields if key in kwargs})
        future = asyncio.run_coroutine_threadsafe(self._send(prepared.prepare()), self.loop)
        try:
            return future.result(timeout=REQUEST_TIMEOUT)
        except TimeoutError:
            future.cancel()
            raise

    async def _send(self, prepared: requests.PreparedRequest) -> schemathesis.Response:
        # Header octets as a server would pass them on; requests already set Content-Length.
        raw_headers = [
            (name.encode("latin-1"), value.encode("latin-1") if isinstance(value, str) else value)
            for name, value in prepared.headers.items()
        ]
        body = prepared.body.encode() if isinstance(prepared.body, str) else prepared.body
        assert body is None or isinstance(body, bytes), "only whole bodies are generated here"
        response = await self.client.request(
            str(prepared.method), str(prepared.url), headers=raw_headers, content=body
        )
        headers: dict[str, list[str]] = {}
        for name, value in response.headers.multi_items():
            headers.setdefault(name.lower(), []).append(value)
        return schemathesis.Response(
            status_code=response.status_code,
            headers=headers,
            content=response.content,
            request=prepared,
            elapsed=response.elapsed.total_seconds(),
            verify=True,
            message=response.reason_phrase,
            encoding=response.encoding,
        )


async def _existing_resources(
    client: httpx.AsyncClient, workspace: WorkspaceHandle
) -> dict[str, list[str]]:
    """A few real resources per path parameter; never the key the requests are made with."""
    api_key_ids = []
    for number in range(SEEDED_RESOURCES):
        response = await client.post(
            "/v1/api-keys", json={"name": f"seed {number}", "scopes": ["contacts:read"]},
            headers=workspace.headers,
        )  # fmt: skip
        assert response.status_code == 201, response.text
        api_key_ids.append(response.json()["id"])
    return {"api_key_id": api_key_ids}


async def _revoked_key(client: httpx.AsyncClient, workspace: WorkspaceHandle) -> str:
    created = await client.post(
        "/v1/api-keys", json={"name": "revoked", "scopes": ["admin"]}, headers=workspace.headers
    )
    assert created.status_code == 201, created.text
    body: dict[str, Any] = created.json()
    revoked = await client.delete(f"/v1/api-keys/{body['id']}", headers=workspace.headers)
    assert revoked.status_code == 204, revoked.text
    return str(body["key"])


def _is_json(body: object) -> bool:
    if not body:
        return True  # no body is not a malformed one
    if not isinstance(body, (bytes, str)):
        return False
    try:
        json.loads(body)
    except ValueError:
        return False
    return True


# --- tests ------------------------------------------------------------------------------------


async def test_every_operation_is_covered(app: FastAPI) -> None:
    live = app.openapi()
    ids = sorted(
        operation.get("operationId", f"{method.upper()} {path}")
        for path, path_item in live["paths"].items()
        for method, operation in path_item.items()
        if method in HTTP_METHODS
    )
    assert ids == OPERATION_IDS, "openapi/openapi.json is stale: run `crm export-schema`"
    assert not any(path.startswith("/graphql") for path in live["paths"])


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=str)
@pytest.mark.parametrize("operation_id", OPERATION_IDS)
async def test_operation_conforms_to_its_description(
    app: FastAPI, workspace: WorkspaceHandle, operation_id: str, mode: GenerationMode
) -> None:
    schema = _schema(app)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
        existing = await _existing_resources(client, workspace)
        call = AppCaller(client, asyncio.get_running_loop())
        strategy = _strategy(schema, operation_id, mode, existing)

        @settings(HYPOTHESIS_SETTINGS, max_examples=MAX_EXAMPLES)
        @given(case=strategy)
        def run(case: Case[Any]) -> None:
            response = call(case, workspace.headers)
            case.validate_response(response, checks=CHECKS, headers=workspace.headers)

        await asyncio.to_thread(run)


BOGUS_AUTHORIZATION = st.one_of(
    st.none(),
    st.sampled_from(["", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "bearer crm_x_y", "Token abc"]),
    st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=80).map(
        lambda token: f"Bearer {token}"
    ),
    st.from_regex(r"crm_[a-z0-9]{12}_[A-Za-z0-9_-]{43}", fullmatch=True).map(
        lambda token: f"Bearer {token}"
    ),
)


@pytest.mark.parametrize("operation_id", OPERATION_IDS)
async def test_operation_refuses_missing_and_bogus_keys(
    app: FastAPI, workspace: WorkspaceHandle, operation_id: str
) -> None:
    schema = _schema(app)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
        existing = await _existing_resources(client, workspace)
        revoked_key = await _revoked_key(client, workspace)
        call = AppCaller(client, asyncio.get_running_loop())
        cases = st.one_of(
            _strategy(schema, operation_id, GenerationMode.POSITIVE, existing),
            _strategy(schema, operation_id, GenerationMode.NEGATIVE, existing),
        )
        authorizations = st.one_of(BOGUS_AUTHORIZATION, st.just(f"Bearer {revoked_key}"))

        @settings(HYPOTHESIS_SETTINGS, max_examples=AUTH_MAX_EXAMPLES)
        @given(case=cases, authorization=authorizations)
        def run(case: Case[Any], authorization: str | None) -> None:
            headers = {} if authorization is None else {"Authorization": authorization}
            response = call(case, headers)
            case.validate_response(response, checks=CHECKS, headers=headers)
            if response.status_code == 400 and not _is_json(response.request.body):
                # Framing is judged before the key, as the request guard does for 413 and 415:
                # FastAPI parses a JSON body (bad_request when it is not even UTF-8) before it
                # resolves any dependency.
                assert response.json()["code"] in ("malformed_body", "bad_request")
                return
            if response.status_code == 422 and "%00" in str(response.request.url):
                # So is a NUL in the URL, refused by the request guard before any routing.
                assert response.json()["code"] == "validation_error"
                return
            assert response.status_code == 401, response.content
            assert response.headers.get("www-authenticate") == ['Bearer realm="crm"']

        await asyncio.to_thread(run)
