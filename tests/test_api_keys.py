from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.auth.dependencies import key_usage
from app.db.session import Database
from tests.conftest import WorkspaceHandle
from tests.test_conventions import assert_problem


async def create_key(
    client: httpx.AsyncClient, workspace: WorkspaceHandle, **body: object
) -> httpx.Response:
    payload = {"name": "POS terminal 7", "scopes": ["contacts:read", "purchases:write"], **body}
    return await client.post("/v1/api-keys", headers=workspace.headers, json=payload)


async def test_create_shows_the_secret_once_and_stores_only_a_hash(
    client: httpx.AsyncClient, workspace: WorkspaceHandle, owner_engine: AsyncEngine
) -> None:
    response = await create_key(client, workspace)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["key"].startswith(f"crm_{body['prefix']}_")
    assert body["scopes"] == ["contacts:read", "purchases:write"]
    assert response.headers["location"] == f"/v1/api-keys/{body['id']}"
    assert response.headers["etag"] == '"1"'
    assert uuid.UUID(body["id"]).version == 7

    shown = await client.get(f"/v1/api-keys/{body['id']}", headers=workspace.headers)
    assert shown.status_code == 200
    assert "key" not in shown.json()
    assert body["key"] not in shown.text

    async with owner_engine.connect() as connection:
        stored = (
            await connection.execute(
                text("SELECT secret_hash FROM api_keys WHERE id = :id"), {"id": body["id"]}
            )
        ).scalar_one()
    assert body["key"] not in stored
    assert len(stored) == 64


async def test_new_key_works_with_its_scopes_only(
    client: httpx.AsyncClient, workspace: WorkspaceHandle
) -> None:
    key = (await create_key(client, workspace)).json()["key"]
    headers = {"Authorization": f"Bearer {key}"}
    assert (await client.get("/v1/workspace", headers=headers)).status_code == 200
    assert_problem(await client.get("/v1/api-keys", headers=headers), 403, "forbidden")


async def test_last_used_at_is_recorded_in_batches(
    client: httpx.AsyncClient, workspace: WorkspaceHandle, database: Database
) -> None:
    created = (await create_key(client, workspace)).json()
    assert created["last_used_at"] is None
    before = datetime.now(UTC)
    for _ in range(3):
        await client.get("/v1/workspace", headers={"Authorization": f"Bearer {created['key']}"})
    await key_usage.flush(database.sessionmaker)  # what the service does every 30 s
    shown = (await client.get(f"/v1/api-keys/{created['id']}", headers=workspace.headers)).json()
    assert datetime.fromisoformat(shown["last_used_at"]) >= before


async def test_revoked_key_stops_working_at_once(
    client: httpx.AsyncClient, workspace: WorkspaceHandle
) -> None:
    created = (await create_key(client, workspace)).json()
    headers = {"Authorization": f"Bearer {created['key']}"}
    assert (await client.get("/v1/workspace", headers=headers)).status_code == 200
    response = await client.delete(f"/v1/api-keys/{created['id']}", headers=workspace.headers)
    assert response.status_code == 204
    assert_problem(await client.get("/v1/workspace", headers=headers), 401, "unauthenticated")
    missing = await client.get(f"/v1/api-keys/{created['id']}", headers=workspace.headers)
    assert_problem(missing, 404, "not_found")
    again = await client.delete(f"/v1/api-keys/{created['id']}", headers=workspace.headers)
    assert_problem(again, 404, "not_found")


async def test_revoke_with_stale_if_match_is_412(
    client: httpx.AsyncClient, workspace: WorkspaceHandle
) -> None:
    created = (await create_key(client, workspace)).json()
    response = await client.delete(
        f"/v1/api-keys/{created['id']}", headers={**workspace.headers, "If-Match": '"9"'}
    )
    assert_problem(response, 412, "precondition_failed")
    assert (
        await client.get(f"/v1/api-keys/{created['id']}", headers=workspace.headers)
    ).status_code == 200


async def test_expired_key_is_refused(
    client: httpx.AsyncClient, workspace: WorkspaceHandle, owner_engine: AsyncEngine
) -> None:
    soon = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    created = (await create_key(client, workspace, expires_at=soon)).json()
    async with owner_engine.begin() as connection:
        await connection.execute(
            text("UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE id = :id"),
            {"id": created["id"]},
        )
    response = await client.get(
        "/v1/workspace", headers={"Authorization": f"Bearer {created['key']}"}
    )
    assert_problem(response, 401, "unauthenticated")


async def test_invalid_create_input_is_422_and_writes_nothing(
    client: httpx.AsyncClient, workspace: WorkspaceHandle
) -> None:
    cases: list[tuple[dict[str, object], str]] = [
        ({"scopes": ["nope:read"]}, "scopes.0"),
        ({"scopes": []}, "scopes"),
        ({"name": ""}, "name"),
        ({"name": "k" * 201}, "name"),
        ({"expires_at": "2030-01-01T00:00:00"}, "expires_at"),  # naive timestamp
        ({"expires_at": "2001-01-01T00:00:00Z"}, "expires_at"),  # in the past
        ({"prefix": "abc"}, "prefix"),  # read-only
        ({"secret_hash": "x"}, "secret_hash"),
    ]
    for body, field in cases:
        response = await create_key(client, workspace, **body)
        problem = assert_problem(response, 422, "validation_error")
        assert field in [e["field"] for e in problem["errors"]], (body, problem)  # type: ignore[attr-defined]
    listing = (await client.get("/v1/api-keys", headers=workspace.headers)).json()
    assert len(listing["data"]) == 1  # only the admin key


class TestListing:
    async def test_pages_follow_cursors_without_repeats_or_gaps(
        self, client: httpx.AsyncClient, workspace: WorkspaceHandle
    ) -> None:
        for index in range(7):
            await create_key(client, workspace, name=f"key {index}")
        seen: list[str] = []
        cursor = None
        pages = 0
        while True:
            params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
            page = (
                await client.get("/v1/api-keys", headers=workspace.headers, params=params)
            ).json()
            pages += 1
            seen += [item["id"] for item in page["data"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
            # Writes between pages neither repeat nor skip what was already there.
            await create_key(client, workspace, name=f"late {pages}")
        assert pages == 3
        assert len(seen) == len(set(seen)) == 8  # 7 + the admin key
        assert seen == sorted(seen, reverse=True)  # newest first (UUIDv7 order)

    async def test_sort_by_name_ascending(
        self, client: httpx.AsyncClient, workspace: WorkspaceHandle
    ) -> None:
        for name in ("charlie", "alpha", "bravo"):
            await create_key(client, workspace, name=name)
        names: list[str] = []
        cursor = None
        while True:
            params: dict[str, object] = {"limit": 2, "sort": "name"}
            if cursor:
                params["cursor"] = cursor
            page = (
                await client.get("/v1/api-keys", headers=workspace.headers, params=params)
            ).json()
            names += [item["name"] for item in page["data"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert names == ["admin", "alpha", "bravo", "charlie"]

    async def test_revoked_keys_are_listed_only_on_request(
        self, client: httpx.AsyncClient, workspace: WorkspaceHandle
    ) -> None:
        created = (await create_key(client, workspace)).json()
        await client.delete(f"/v1/api-keys/{created['id']}", headers=workspace.headers)
        live = (await client.get("/v1/api-keys", headers=workspace.headers)).json()["data"]
        assert created["id"] not in [item["id"] for item in live]
        every = (
            await client.get(
                "/v1/api-keys", headers=workspace.headers, params={"include_revoked": "true"}
            )
        ).json()["data"]
        revoked = [item for item in every if item["id"] == created["id"]]
        assert len(revoked) == 1
        assert revoked[0]["revoked_at"] is not None

    async def test_bad_list_parameters(
        self, client: httpx.AsyncClient, workspace: WorkspaceHandle
    ) -> None:
        h = workspace.headers
        assert_problem(
            await client.get("/v1/api-keys", headers=h, params={"limit": 0}),
            422, "validation_error",
        )  # fmt: skip
        assert_problem(
            await client.get("/v1/api-keys", headers=h, params={"limit": 201}),
            422, "validation_error",
        )  # fmt: skip
        assert_problem(
            await client.get("/v1/api-keys", headers=h, params={"sort": "secret_hash"}),
            422, "validation_error",
        )  # fmt: skip
        for cursor in ("garbage", "WyJ4Il0", "!!!", "W10", "a" * 2000):
            response = await client.get("/v1/api-keys", headers=h, params={"cursor": cursor})
            assert response.status_code in (400, 422), (cursor, response.text)
            assert response.json()["code"] in ("invalid_cursor", "validation_error")
        page = (await client.get("/v1/api-keys", headers=h, params={"limit": 1})).json()
        # a cursor made for one sort order is refused under another
        await create_key(client, workspace)
        page = (await client.get("/v1/api-keys", headers=h, params={"limit": 1})).json()
        response = await client.get(
            "/v1/api-keys", headers=h, params={"cursor": page["next_cursor"], "sort": "name"}
        )
        assert_problem(response, 400, "invalid_cursor")


async def test_concurrent_revocations_do_not_fail(app: object, workspace: WorkspaceHandle) -> None:
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        created = (await create_key(client, workspace)).json()
        results = await asyncio.gather(
            *[
                client.delete(f"/v1/api-keys/{created['id']}", headers=workspace.headers)
                for _ in range(5)
            ]
        )
    statuses = sorted(response.status_code for response in results)
    assert statuses.count(204) == 1
    assert all(status in (204, 404, 409) for status in statuses), statuses


async def test_concurrent_first_uses_of_a_key_share_one_lookup(
    app: object, workspace: WorkspaceHandle, database: Database
) -> None:
    from tests.test_graphql import count_statements

    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        created = (await create_key(client, workspace)).json()
        headers = {"Authorization": f"Bearer {created['key']}"}
        with count_statements(database) as statements:
            responses = await asyncio.gather(
                *[client.get("/v1/workspace", headers=headers) for _ in range(16)]
            )
    assert all(response.status_code == 200 for response in responses)
    lookups = [sql for sql in statements if "crm_find_api_key" in sql]
    assert len(lookups) == 1
    assert not [sql for sql in statements if sql.lstrip().upper().startswith("UPDATE")]
