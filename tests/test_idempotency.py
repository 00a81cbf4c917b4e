from __future__ import annotations

import asyncio

import httpx
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.auth.scopes import Scope
from tests.conftest import WorkspaceHandle
from tests.test_conventions import assert_problem

BODY = {"name": "Shopify sync", "scopes": ["contacts:write"]}


async def count_keys(client: httpx.AsyncClient, workspace: WorkspaceHandle) -> int:
    page = (await client.get("/v1/api-keys", headers=workspace.headers)).json()
    return len(page["data"])


async def test_retry_replays_the_first_response_and_does_nothing_again(
    client: httpx.AsyncClient, workspace: WorkspaceHandle
) -> None:
    headers = {**workspace.headers, "Idempotency-Key": "order-7781"}
    first = await client.post("/v1/api-keys", headers=headers, json=BODY)
    assert first.status_code == 201
    assert "idempotent-replayed" not in first.headers
    # Same body, other key order and spacing: the same request.
    second = await client.post(
        "/v1/api-keys",
        headers={**headers, "Content-Type": "application/json"},
        content=b'{ "scopes": ["contacts:write"],   "name": "Shopify sync" }',
    )
    assert second.status_code == 201
    assert second.headers["idempotent-replayed"] == "true"
    assert second.json() == first.json()
    assert second.headers["location"] == first.headers["location"]
    assert second.headers["etag"] == first.headers["etag"]
    assert await count_keys(client, workspace) == 2


async def test_same_key_with_another_body_is_422(
    client: httpx.AsyncClient, workspace: WorkspaceHandle
) -> None:
    headers = {**workspace.headers, "Idempotency-Key": "k-1"}
    assert (await client.post("/v1/api-keys", headers=headers, json=BODY)).status_code == 201
    response = await client.post(
        "/v1/api-keys", headers=headers, json={**BODY, "name": "something else"}
    )
    assert_problem(response, 422, "idempotency_key_reused")
    assert await count_keys(client, workspace) == 2


async def test_failed_requests_are_not_remembered(
    client: httpx.AsyncClient, workspace: WorkspaceHandle
) -> None:
    headers = {**workspace.headers, "Idempotency-Key": "fix-and-retry"}
    bad = await client.post("/v1/api-keys", headers=headers, json={**BODY, "scopes": ["x"]})
    assert bad.status_code == 422
    good = await client.post("/v1/api-keys", headers=headers, json=BODY)
    assert good.status_code == 201
    assert "idempotent-replayed" not in good.headers


async def test_keys_are_scoped_to_the_api_key_and_workspace(
    client: httpx.AsyncClient, workspace: WorkspaceHandle, make_workspace: object
) -> None:
    other: WorkspaceHandle = await make_workspace()  # type: ignore[operator]
    second_admin = await workspace.key(Scope.admin)
    for headers in (workspace.headers, second_admin, other.headers):
        response = await client.post(
            "/v1/api-keys", headers={**headers, "Idempotency-Key": "shared"}, json=BODY
        )
        assert response.status_code == 201
        assert "idempotent-replayed" not in response.headers


async def test_key_length_is_bounded(client: httpx.AsyncClient, workspace: WorkspaceHandle) -> None:
    for key in ("", "k" * 256):
        response = await client.post(
            "/v1/api-keys", headers={**workspace.headers, "Idempotency-Key": key}, json=BODY
        )
        assert_problem(response, 422, "validation_error")
    assert await count_keys(client, workspace) == 1


async def test_expired_keys_are_new_again(
    client: httpx.AsyncClient, workspace: WorkspaceHandle, owner_engine: AsyncEngine
) -> None:
    headers = {**workspace.headers, "Idempotency-Key": "daily-sync"}
    assert (await client.post("/v1/api-keys", headers=headers, json=BODY)).status_code == 201
    async with owner_engine.begin() as connection:
        await connection.execute(
            text(
                "UPDATE idempotency_keys SET created_at = now() - interval '25 hours' "
                "WHERE workspace_id = :workspace_id"
            ),
            {"workspace_id": workspace.id},
        )
    again = await client.post("/v1/api-keys", headers=headers, json=BODY)
    assert again.status_code == 201
    assert "idempotent-replayed" not in again.headers
    assert await count_keys(client, workspace) == 3


async def test_pruning_removes_only_expired_records(
    client: httpx.AsyncClient, workspace: WorkspaceHandle, owner_engine: AsyncEngine
) -> None:
    for key in ("old", "fresh"):
        await client.post(
            "/v1/api-keys", headers={**workspace.headers, "Idempotency-Key": key}, json=BODY
        )
    async with owner_engine.begin() as connection:
        await connection.execute(
            text(
                "UPDATE idempotency_keys SET created_at = now() - interval '30 hours' "
                "WHERE workspace_id = :w AND key = 'old'"
            ),
            {"w": workspace.id},
        )
        await connection.execute(text("SELECT crm_prune_idempotency_keys(24)"))
        remaining = (
            (
                await connection.execute(
                    text("SELECT key FROM idempotency_keys WHERE workspace_id = :w"),
                    {"w": workspace.id},
                )
            )
            .scalars()
            .all()
        )
    assert remaining == ["fresh"]


async def test_concurrent_duplicates_create_exactly_one(
    app: FastAPI, workspace: WorkspaceHandle
) -> None:
    transport = httpx.ASGITransport(app=app)
    headers = {**workspace.headers, "Idempotency-Key": "burst"}
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        responses = await asyncio.gather(
            *[client.post("/v1/api-keys", headers=headers, json=BODY) for _ in range(20)]
        )
        statuses = [response.status_code for response in responses]
        assert all(status in (201, 409) for status in statuses), statuses
        created_ids = {r.json()["id"] for r in responses if r.status_code == 201}
        assert len(created_ids) == 1
        for response in responses:
            if response.status_code == 409:
                assert response.json()["code"] == "idempotency_key_in_progress"
        assert await count_keys(client, workspace) == 2
