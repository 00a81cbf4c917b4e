from __future__ import annotations

import httpx

from tests.conftest import WorkspaceHandle


async def test_workspace_is_returned_with_an_etag(
    client: httpx.AsyncClient, workspace: WorkspaceHandle
) -> None:
    response = await client.get("/v1/workspace", headers=workspace.headers)
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == str(workspace.id)
    assert body["version"] == 1
    assert body["created_at"].endswith("Z")
    assert response.headers["etag"] == '"1"'
