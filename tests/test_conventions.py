"""The API kit's conventions, proven on the workspace and API-key resources."""

from __future__ import annotations

import httpx
import pytest

from app.auth.scopes import Scope
from tests.conftest import WorkspaceHandle

PROBLEM = "application/problem+json"


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["status"] == status
    assert body["code"] == code
    assert {"type", "title", "detail", "errors"} <= body.keys()
    assert "Traceback" not in response.text
    return body  # type: ignore[no-any-return]


async def test_unknown_route_is_a_problem(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get("/v1/nothing-here"), 404, "not_found")


async def test_wrong_method_is_a_problem(
    client: httpx.AsyncClient, workspace: WorkspaceHandle
) -> None:
    response = await client.put("/v1/workspace", headers=workspace.headers, json={})
    assert_problem(response, 405, "method_not_allowed")


async def test_missing_and_invalid_keys_are_401(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/workspace")
    assert_problem(response, 401, "unauthenticated")
    assert response.headers["www-authenticate"].startswith("Bearer")
    for header in (
        "Bearer nonsense",
        "Basic dXNlcjpwYXNz",
        "Bearer crm_aaaaaaaaaaaa_" + "A" * 43,
        "Bearer ",
    ):
        response = await client.get("/v1/workspace", headers={"Authorization": header})
        assert_problem(response, 401, "unauthenticated")


async def test_key_without_scope_is_403(
    client: httpx.AsyncClient, workspace: WorkspaceHandle
) -> None:
    reader = await workspace.key(Scope.contacts_read)
    assert (await client.get("/v1/workspace", headers=reader)).status_code == 200
    assert_problem(await client.get("/v1/api-keys", headers=reader), 403, "forbidden")
    response = await client.patch("/v1/workspace", headers=reader, json={"name": "x"})
    assert_problem(response, 403, "forbidden")


async def test_another_workspaces_object_is_404(
    client: httpx.AsyncClient, make_workspace: object
) -> None:
    first: WorkspaceHandle = await make_workspace()  # type: ignore[operator]
    second: WorkspaceHandle = await make_workspace()  # type: ignore[operator]
    response = await client.get(f"/v1/api-keys/{first.admin_key_id}", headers=second.headers)
    assert_problem(response, 404, "not_found")
    response = await client.delete(f"/v1/api-keys/{first.admin_key_id}", headers=second.headers)
    assert_problem(response, 404, "not_found")
    # and the key is untouched
    assert (await client.get("/v1/workspace", headers=first.headers)).status_code == 200


async def test_malformed_json_is_400(client: httpx.AsyncClient, workspace: WorkspaceHandle) -> None:
    response = await client.post(
        "/v1/api-keys",
        headers={**workspace.headers, "Content-Type": "application/json"},
        content=b'{"name": "x", "scopes": [',
    )
    assert_problem(response, 400, "malformed_body")


async def test_non_json_body_is_415(client: httpx.AsyncClient, workspace: WorkspaceHandle) -> None:
    response = await client.post(
        "/v1/api-keys",
        headers={**workspace.headers, "Content-Type": "text/plain"},
        content=b"name=x",
    )
    assert_problem(response, 415, "unsupported_media_type")


async def test_body_over_one_mebibyte_is_413(
    client: httpx.AsyncClient, workspace: WorkspaceHandle
) -> None:
    big = b'{"name": "' + b"x" * (1024 * 1024) + b'"}'
    response = await client.patch(
        "/v1/workspace",
        headers={**workspace.headers, "Content-Type": "application/json"},
        content=big,
    )
    assert_problem(response, 413, "payload_too_large")


async def test_streamed_body_over_the_limit_is_413(
    client: httpx.AsyncClient, workspace: WorkspaceHandle
) -> None:
    async def chunks():  # type: ignore[no-untyped-def]
        for _ in range(20):
            yield b"x" * 65536

    response = await client.patch(
        "/v1/workspace",
        headers={**workspace.headers, "Content-Type": "application/json"},
        content=chunks(),
    )
    assert_problem(response, 413, "payload_too_large")
    name = (await client.get("/v1/workspace", headers=workspace.headers)).json()["name"]
    assert name == "Test workspace"


async def test_bad_uuid_in_path_names_the_parameter(
    client: httpx.AsyncClient, workspace: WorkspaceHandle
) -> None:
    response = await client.get("/v1/api-keys/not-a-uuid", headers=workspace.headers)
    body = assert_problem(response, 422, "validation_error")
    assert body["errors"][0]["field"] == "path.api_key_id"  # type: ignore[index]


async def test_request_id_is_echoed_or_generated(
    client: httpx.AsyncClient, workspace: WorkspaceHandle
) -> None:
    response = await client.get(
        "/v1/workspace", headers={**workspace.headers, "X-Request-ID": "abc-123"}
    )
    assert response.headers["x-request-id"] == "abc-123"
    response = await client.get("/v1/nowhere", headers={"X-Request-ID": "bad id with spaces"})
    assert response.headers["x-request-id"] != "bad id with spaces"
    assert response.json()["request_id"] == response.headers["x-request-id"]


async def test_cors_preflight_allows_configured_origin(client: httpx.AsyncClient) -> None:
    response = await client.options(
        "/v1/workspace",
        headers={
            "Origin": "https://app.example.com",
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization",
        },
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "https://app.example.com"
    denied = await client.options(
        "/v1/workspace",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
    )
    assert "access-control-allow-origin" not in denied.headers


class TestWorkspaceEtagsAndMergePatch:
    async def test_if_none_match_returns_304(
        self, client: httpx.AsyncClient, workspace: WorkspaceHandle
    ) -> None:
        first = await client.get("/v1/workspace", headers=workspace.headers)
        etag = first.headers["etag"]
        again = await client.get(
            "/v1/workspace", headers={**workspace.headers, "If-None-Match": etag}
        )
        assert again.status_code == 304
        assert again.content == b""
        assert again.headers["etag"] == etag

    async def test_patch_changes_only_given_fields_and_bumps_the_etag(
        self, client: httpx.AsyncClient, workspace: WorkspaceHandle
    ) -> None:
        before = (await client.get("/v1/workspace", headers=workspace.headers)).json()
        response = await client.patch(
            "/v1/workspace",
            headers={**workspace.headers, "If-Match": '"1"'},
            json={"name": "ร้านสมชาย", "default_currency": "vnd"},
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["name"] == "ร้านสมชาย"
        assert body["default_currency"] == "VND"
        assert body["timezone"] == before["timezone"]
        assert body["version"] == 2
        assert response.headers["etag"] == '"2"'

    async def test_stale_if_match_is_412_and_changes_nothing(
        self, client: httpx.AsyncClient, workspace: WorkspaceHandle
    ) -> None:
        await client.patch("/v1/workspace", headers=workspace.headers, json={"name": "v2"})
        response = await client.patch(
            "/v1/workspace",
            headers={**workspace.headers, "If-Match": '"1"'},
            json={"name": "lost update"},
        )
        assert_problem(response, 412, "precondition_failed")
        assert response.headers["etag"] == '"2"'
        current = (await client.get("/v1/workspace", headers=workspace.headers)).json()
        assert current["name"] == "v2"

    @pytest.mark.parametrize(
        ("patch", "field"),
        [
            ({"id": "01a203ac-1022-7102-9d8c-88190aa27e2e"}, "id"),
            ({"version": 7}, "version"),
            ({"created_at": "2020-01-01T00:00:00Z"}, "created_at"),
            ({"colour": "blue"}, "colour"),
            ({"name": None}, "name"),
            ({"name": ""}, "name"),
            ({"name": "x" * 201}, "name"),
            ({"timezone": "Mars/Olympus"}, "timezone"),
            ({"default_region": "XX"}, "default_region"),
            ({"default_currency": "ABC"}, "default_currency"),
            ({"locale": "zz-ZZ-nonsense"}, "locale"),
        ],
    )
    async def test_invalid_patch_is_422_naming_the_field(
        self,
        client: httpx.AsyncClient,
        workspace: WorkspaceHandle,
        patch: dict[str, object],
        field: str,
    ) -> None:
        response = await client.patch("/v1/workspace", headers=workspace.headers, json=patch)
        body = assert_problem(response, 422, "validation_error")
        assert field in [error["field"] for error in body["errors"]]  # type: ignore[attr-defined]
        current = (await client.get("/v1/workspace", headers=workspace.headers)).json()
        assert current["version"] == 1

    async def test_non_object_patch_is_422(
        self, client: httpx.AsyncClient, workspace: WorkspaceHandle
    ) -> None:
        response = await client.patch("/v1/workspace", headers=workspace.headers, json=[1, 2])
        assert_problem(response, 422, "validation_error")


async def test_nul_in_the_url_is_refused(
    client: httpx.AsyncClient, workspace: WorkspaceHandle
) -> None:
    response = await client.get("/v1/api-keys?sort=name%00x", headers=workspace.headers)
    assert_problem(response, 422, "validation_error")
    response = await client.get(
        "/v1/contacts", headers=workspace.headers, params={"owner_id": "a\x00b"}
    )
    assert_problem(response, 422, "validation_error")


async def test_cors_headers_reach_hot_routes(
    client: httpx.AsyncClient, workspace: WorkspaceHandle
) -> None:
    """Hot routes answer below the CORS middleware, like every other route."""
    created = await client.post("/v1/contacts", headers=workspace.headers, json={"given_name": "C"})
    response = await client.get(
        f"/v1/contacts/{created.json()['id']}",
        headers={**workspace.headers, "Origin": "https://app.example.com"},
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "https://app.example.com"
    assert "ETag" in response.headers["access-control-expose-headers"]
