"""Every change writes its domain event to the outbox, in the same transaction."""

from __future__ import annotations

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import WorkspaceHandle


async def events(engine: AsyncEngine, workspace: WorkspaceHandle) -> list[dict[str, object]]:
    async with engine.connect() as connection:
        rows = await connection.execute(
            text(
                "SELECT type, aggregate_type, aggregate_id, data, changed_fields "
                "FROM outbox_events WHERE workspace_id = :w ORDER BY id"
            ),
            {"w": workspace.id},
        )
        return [dict(row._mapping) for row in rows]


async def test_workspace_creation_and_update_are_recorded(
    client: httpx.AsyncClient, workspace: WorkspaceHandle, owner_engine: AsyncEngine
) -> None:
    await client.patch(
        "/v1/workspace", headers=workspace.headers, json={"name": "Renamed", "locale": "vi-VN"}
    )
    recorded = await events(owner_engine, workspace)
    types = [event["type"] for event in recorded]
    assert types == ["workspace.created", "api_key.created", "workspace.updated"]
    updated = recorded[-1]
    assert updated["changed_fields"] == ["locale", "name"]
    assert updated["data"]["name"] == "Renamed"  # type: ignore[index]
    assert updated["data"]["version"] == 2  # type: ignore[index]
    assert "secret_hash" not in str(recorded)


async def test_api_key_events_never_carry_the_secret(
    client: httpx.AsyncClient, workspace: WorkspaceHandle, owner_engine: AsyncEngine
) -> None:
    created = await client.post(
        "/v1/api-keys", headers=workspace.headers, json={"name": "n", "scopes": ["cases:read"]}
    )
    key = created.json()
    await client.delete(f"/v1/api-keys/{key['id']}", headers=workspace.headers)
    recorded = await events(owner_engine, workspace)
    mine = [event for event in recorded if str(event["aggregate_id"]) == key["id"]]
    assert [event["type"] for event in mine] == ["api_key.created", "api_key.revoked"]
    assert mine[1]["changed_fields"] == ["revoked_at"]
    assert key["key"] not in str(recorded)


async def test_failed_change_writes_no_event(
    client: httpx.AsyncClient, workspace: WorkspaceHandle, owner_engine: AsyncEngine
) -> None:
    before = await events(owner_engine, workspace)
    response = await client.patch(
        "/v1/workspace", headers={**workspace.headers, "If-Match": '"5"'}, json={"name": "x"}
    )
    assert response.status_code == 412
    assert await events(owner_engine, workspace) == before


async def test_unchanged_patch_writes_no_event(
    client: httpx.AsyncClient, workspace: WorkspaceHandle, owner_engine: AsyncEngine
) -> None:
    before = await events(owner_engine, workspace)
    response = await client.patch(
        "/v1/workspace", headers=workspace.headers, json={"name": "Test workspace"}
    )
    assert response.status_code == 200
    assert response.json()["version"] == 1
    assert await events(owner_engine, workspace) == before
