"""Building blocks for the purchase tests: contacts, purchases and outbox reads."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import WorkspaceHandle

WHEN = "2026-11-20T10:30:00+07:00"
MISSING = "01a203ac-1022-7102-9d8c-88190aa27e2e"


def thb(amount: str) -> dict[str, str]:
    return {"amount": amount, "currency": "THB"}


def vnd(amount: str) -> dict[str, str]:
    return {"amount": amount, "currency": "VND"}


def basket(contact_id: str, **overrides: Any) -> dict[str, Any]:
    """A THB receipt: 2 x 450.00 less 50.00, plus 1 x 400.50 = 1250.50."""
    body: dict[str, Any] = {
        "contact_id": contact_id,
        "occurred_at": WHEN,
        "channel": "store",
        "store_id": "BKK-SIAM",
        "total": thb("1250.50"),
        "items": [
            {
                "sku": "TEA-01",
                "name": "ชาไทย Thai tea set",
                "category": "beverage",
                "quantity": 2,
                "unit_price": thb("450.00"),
                "discount": thb("50.00"),
            },
            {"sku": "CUP-9", "name": "Cup", "quantity": 1, "unit_price": thb("400.50")},
        ],
        "attributes": {"cashier": "A7"},
        "external_ids": {"pos": "R-0001"},
    }
    body.update(overrides)
    return body


async def new_contact(client: httpx.AsyncClient, ws: WorkspaceHandle, name: str = "Somsri") -> str:
    response = await client.post("/v1/contacts", headers=ws.headers, json={"given_name": name})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def post_purchase(
    client: httpx.AsyncClient, ws: WorkspaceHandle, body: dict[str, Any]
) -> httpx.Response:
    return await client.post("/v1/purchases", headers=ws.headers, json=body)


async def new_purchase(
    client: httpx.AsyncClient, ws: WorkspaceHandle, body: dict[str, Any]
) -> dict[str, Any]:
    response = await post_purchase(client, ws, body)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


async def simple_purchase(
    client: httpx.AsyncClient,
    ws: WorkspaceHandle,
    contact_id: str,
    total: dict[str, str],
    **overrides: Any,
) -> dict[str, Any]:
    """A purchase of one line worth ``total``."""
    body: dict[str, Any] = {
        "contact_id": contact_id,
        "occurred_at": WHEN,
        "total": total,
        "items": [{"name": "Thing", "quantity": 1, "unit_price": total}],
    }
    body.update(overrides)
    return await new_purchase(client, ws, body)


async def refund(
    client: httpx.AsyncClient, ws: WorkspaceHandle, purchase_id: str, **body: Any
) -> httpx.Response:
    return await client.post(f"/v1/purchases/{purchase_id}/refunds", headers=ws.headers, json=body)


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


def fields_of(problem: dict[str, Any]) -> list[str]:
    return [error["field"] for error in problem["errors"]]
