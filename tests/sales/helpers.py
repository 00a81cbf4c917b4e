"""Building blocks for the sales tests: contacts, accounts, pipelines, opportunities."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import WorkspaceHandle

MISSING = "01a203ac-1022-7102-9d8c-88190aa27e2e"
FAR = "2099-12-31"


def thb(amount: str) -> dict[str, str]:
    return {"amount": amount, "currency": "THB"}


def vnd(amount: str) -> dict[str, str]:
    return {"amount": amount, "currency": "VND"}


async def new_contact(
    client: httpx.AsyncClient, ws: WorkspaceHandle, name: str = "Somsri", **extra: Any
) -> str:
    response = await client.post(
        "/v1/contacts", headers=ws.headers, json={"given_name": name, **extra}
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def new_account(client: httpx.AsyncClient, ws: WorkspaceHandle, name: str = "Siam Co") -> str:
    response = await client.post("/v1/accounts", headers=ws.headers, json={"name": name})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def default_pipeline(client: httpx.AsyncClient, ws: WorkspaceHandle) -> dict[str, Any]:
    response = await client.get("/v1/pipelines", headers=ws.headers)
    assert response.status_code == 200, response.text
    [pipeline] = [p for p in response.json()["data"] if p["is_default"]]
    result: dict[str, Any] = pipeline
    return result


def stage_ids(pipeline: dict[str, Any]) -> dict[str, str]:
    return {stage["name"]: stage["id"] for stage in pipeline["stages"]}


async def new_pipeline(
    client: httpx.AsyncClient, ws: WorkspaceHandle, name: str, stages: list[dict[str, Any]]
) -> dict[str, Any]:
    response = await client.post(
        "/v1/pipelines", headers=ws.headers, json={"name": name, "stages": stages}
    )
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


async def post_opportunity(
    client: httpx.AsyncClient, ws: WorkspaceHandle, **body: Any
) -> httpx.Response:
    body.setdefault("name", "Deal")
    body.setdefault("amount", thb("1000.00"))
    body.setdefault("expected_close_date", FAR)
    return await client.post("/v1/opportunities", headers=ws.headers, json=body)


async def new_opportunity(
    client: httpx.AsyncClient, ws: WorkspaceHandle, **body: Any
) -> dict[str, Any]:
    response = await post_opportunity(client, ws, **body)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


async def move(
    client: httpx.AsyncClient,
    ws: WorkspaceHandle,
    opportunity_id: str,
    stage_id: str,
    **extra: Any,
) -> httpx.Response:
    headers = dict(ws.headers)
    if "if_match" in extra:
        headers["If-Match"] = extra.pop("if_match")
    return await client.post(
        f"/v1/opportunities/{opportunity_id}/stage",
        headers=headers,
        json={"stage_id": stage_id, **extra},
    )


async def events(engine: AsyncEngine, ws: WorkspaceHandle, aggregate_type: str) -> list[Any]:
    async with engine.connect() as connection:
        rows = await connection.execute(
            text(
                "SELECT type, aggregate_id, changed_fields, data FROM outbox_events "
                "WHERE workspace_id = :w AND aggregate_type = :t ORDER BY id"
            ),
            {"w": ws.id, "t": aggregate_type},
        )
        return list(rows.all())


async def count_rows(engine: AsyncEngine, ws: WorkspaceHandle, table: str) -> int:
    async with engine.connect() as connection:
        result = await connection.execute(
            text(f"SELECT count(*) FROM {table} WHERE workspace_id = :w"), {"w": ws.id}
        )
        return int(result.scalar_one())


async def execute(engine: AsyncEngine, sql: str, **params: Any) -> None:
    """Test set-up only: e.g. moving recorded times into the past, which no API can do."""
    async with engine.begin() as connection:
        await connection.execute(text(sql), params)


def fields_of(problem: dict[str, Any]) -> list[str]:
    return [error["field"] for error in problem["errors"]]
