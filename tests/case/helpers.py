"""Building blocks for the case tests: contacts, calendars, policies, cases, back-dating."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import WorkspaceHandle

THAI_HOURS = {
    day: [["08:30", "12:00"], ["13:00", "17:30"]] for day in ("mon", "tue", "wed", "thu", "fri")
}


async def new_contact(
    client: httpx.AsyncClient, ws: WorkspaceHandle, name: str = "Somchai", **extra: Any
) -> str:
    response = await client.post(
        "/v1/contacts", headers=ws.headers, json={"given_name": name, **extra}
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def post(
    client: httpx.AsyncClient, ws: WorkspaceHandle, path: str, body: dict[str, Any], **headers: str
) -> httpx.Response:
    return await client.post(path, headers={**ws.headers, **headers}, json=body)


async def created(
    client: httpx.AsyncClient, ws: WorkspaceHandle, path: str, body: dict[str, Any]
) -> dict[str, Any]:
    response = await post(client, ws, path, body)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


async def new_case(
    client: httpx.AsyncClient, ws: WorkspaceHandle, contact_id: str, **fields: Any
) -> dict[str, Any]:
    body = {"contact_id": contact_id, "subject": "Parcel never arrived", "channel": "email"}
    return await created(client, ws, "/v1/cases", {**body, **fields})


async def transition(
    client: httpx.AsyncClient, ws: WorkspaceHandle, case_id: str, to: str, **extra: Any
) -> httpx.Response:
    return await client.post(
        f"/v1/cases/{case_id}/transitions", headers=ws.headers, json={"to": to, **extra}
    )


async def thai_calendar(client: httpx.AsyncClient, ws: WorkspaceHandle, **extra: Any) -> str:
    body = {
        "name": "Bangkok office",
        "time_zone": "Asia/Bangkok",
        "hours": THAI_HOURS,
        "holidays": ["2026-12-07"],
        **extra,
    }
    return str((await created(client, ws, "/v1/business-calendars", body))["id"])


async def policy(
    client: httpx.AsyncClient, ws: WorkspaceHandle, calendar_id: str, **extra: Any
) -> dict[str, Any]:
    body = {
        "name": "High",
        "priority": "high",
        "calendar_id": calendar_id,
        "first_response_minutes": 60,
        "resolution_minutes": 480,
        **extra,
    }
    return await created(client, ws, "/v1/sla-policies", body)


async def get_case(client: httpx.AsyncClient, ws: WorkspaceHandle, case_id: str) -> dict[str, Any]:
    response = await client.get(f"/v1/cases/{case_id}", headers=ws.headers)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def events(engine: AsyncEngine, ws: WorkspaceHandle, *types: str) -> list[Any]:
    async with engine.connect() as connection:
        rows = await connection.execute(
            text(
                "SELECT type, aggregate_id, data FROM outbox_events "
                "WHERE workspace_id = :w AND type = ANY(:types) ORDER BY id"
            ),
            {"w": ws.id, "types": list(types)},
        )
        return list(rows.all())


async def rewrite_history(
    engine: AsyncEngine,
    ws: WorkspaceHandle,
    case_id: str,
    created_at: datetime,
    statuses: list[tuple[str, datetime]],
    **columns: Any,
) -> None:
    """Back-date a case: its creation, its status history and any case columns given.

    History rows are append-only (UPDATE is refused by a trigger), so they are replaced.
    """
    async with engine.begin() as connection:
        assignments = ", ".join(f"{name} = :{name}" for name in ["created_at", *columns])
        await connection.execute(
            text(f"UPDATE cases SET {assignments} WHERE workspace_id = :w AND id = :id"),
            {"w": ws.id, "id": case_id, "created_at": created_at, **columns},
        )
        await connection.execute(
            text("DELETE FROM case_history WHERE workspace_id = :w AND case_id = :id "
                 "AND field = 'status'"),
            {"w": ws.id, "id": case_id},
        )  # fmt: skip
        previous = None
        for status, at in statuses:
            await connection.execute(
                text(
                    "INSERT INTO case_history (workspace_id, id, case_id, field, from_value, "
                    "to_value, at) VALUES (:w, gen_random_uuid(), :id, 'status', :old, :new, :at)"
                ),
                {"w": ws.id, "id": case_id, "old": previous, "new": status, "at": at},
            )
            previous = status


async def set_columns(
    engine: AsyncEngine, ws: WorkspaceHandle, case_id: str, **columns: Any
) -> None:
    """Write case columns directly (a fixed data set for reports)."""
    async with engine.begin() as connection:
        assignments = ", ".join(f"{name} = :{name}" for name in columns)
        await connection.execute(
            text(f"UPDATE cases SET {assignments} WHERE workspace_id = :w AND id = :id"),
            {"w": ws.id, "id": case_id, **columns},
        )
