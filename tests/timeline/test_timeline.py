"""The contact timeline and the single view (360), over REST."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.conftest import WorkspaceHandle
from tests.test_conventions import assert_problem

START = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


async def make_contact(client: httpx.AsyncClient, ws: WorkspaceHandle, **extra: Any) -> str:
    body = {"given_name": "Somchai", "family_name": "Jaidee", **extra}
    response = await client.post("/v1/contacts", headers=ws.headers, json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def add_interaction(
    client: httpx.AsyncClient, ws: WorkspaceHandle, contact_id: str, at: datetime, **extra: Any
) -> dict[str, Any]:
    body = {
        "contact_id": contact_id,
        "channel": "chat",
        "direction": "inbound",
        "type": "message",
        "occurred_at": at.isoformat(),
        **extra,
    }
    response = await client.post("/v1/interactions", headers=ws.headers, json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def add_purchase(
    client: httpx.AsyncClient,
    ws: WorkspaceHandle,
    contact_id: str,
    at: datetime,
    amount: str = "250.00",
    currency: str = "THB",
) -> dict[str, Any]:
    body = {
        "contact_id": contact_id,
        "occurred_at": at.isoformat(),
        "channel": "store",
        "store_id": "BKK-SIAM",
        "total": {"amount": amount, "currency": currency},
        "items": [
            {
                "sku": "TEA-1",
                "name": "Thai milk tea",
                "quantity": 1,
                "unit_price": {"amount": amount, "currency": currency},
            }
        ],
    }
    response = await client.post("/v1/purchases", headers=ws.headers, json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def timeline(
    client: httpx.AsyncClient, ws: WorkspaceHandle, contact_id: str, **params: Any
) -> dict[str, Any]:
    response = await client.get(
        f"/v1/contacts/{contact_id}/timeline", headers=ws.headers, params=params
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


@pytest.fixture
async def history(
    client: httpx.AsyncClient, workspace: WorkspaceHandle
) -> tuple[str, dict[str, str]]:
    """A contact with a call, a chat, a purchase and a refund, an hour apart."""
    contact_id = await make_contact(client, workspace)
    ids = {}
    ids["call"] = (
        await add_interaction(
            client, workspace, contact_id, START, channel="phone", type="call", subject="Hello"
        )
    )["id"]
    purchase = await add_purchase(client, workspace, contact_id, START + timedelta(hours=1))
    ids["purchase"] = purchase["id"]
    ids["chat"] = (
        await add_interaction(client, workspace, contact_id, START + timedelta(hours=2))
    )["id"]
    refund = await client.post(
        f"/v1/purchases/{purchase['id']}/refunds",
        headers=workspace.headers,
        json={
            "amount": {"amount": "50.00", "currency": "THB"},
            "reason": "Too sweet",
            "occurred_at": (START + timedelta(hours=3)).isoformat(),
        },
    )
    assert refund.status_code == 201, refund.text
    ids["refund"] = refund.json()["id"]
    return contact_id, ids


async def test_every_kind_newest_first(
    client: httpx.AsyncClient, workspace: WorkspaceHandle, history: tuple[str, dict[str, str]]
) -> None:
    contact_id, ids = history
    page = await timeline(client, workspace, contact_id)
    assert [(e["kind"], e["id"]) for e in page["data"]] == [
        ("refund", ids["refund"]),
        ("interaction", ids["chat"]),
        ("purchase", ids["purchase"]),
        ("interaction", ids["call"]),
    ]
    assert page["next_cursor"] is None
    refund, chat, purchase, call = page["data"]
    assert refund["summary"] == "Refund of THB50.00: Too sweet"
    assert refund["channel"] == "store"
    assert refund["data"]["amount"] == {"amount": "50.00", "currency": "THB"}
    assert call["summary"] == "inbound call via phone: Hello"
    assert chat["data"]["channel"] == "chat"
    assert purchase["data"]["status"] == "partially_refunded"
    assert purchase["summary"].startswith("Purchase of 1 item for THB250.00 via store at BKK-SIAM")


async def test_pages_with_one_cursor_across_kinds(
    client: httpx.AsyncClient, workspace: WorkspaceHandle, history: tuple[str, dict[str, str]]
) -> None:
    contact_id, ids = history
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 1}
        if cursor:
            params["cursor"] = cursor
        page = await timeline(client, workspace, contact_id, **params)
        seen += [entry["id"] for entry in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [ids["refund"], ids["chat"], ids["purchase"], ids["call"]]


async def test_filters_by_kind_channel_and_time(
    client: httpx.AsyncClient, workspace: WorkspaceHandle, history: tuple[str, dict[str, str]]
) -> None:
    contact_id, ids = history
    by_kind = await timeline(client, workspace, contact_id, kind=["purchase", "refund"])
    assert [e["id"] for e in by_kind["data"]] == [ids["refund"], ids["purchase"]]
    by_channel = await timeline(client, workspace, contact_id, channel="phone")
    assert [e["id"] for e in by_channel["data"]] == [ids["call"]]
    # Refunds take the channel of their purchase.
    in_store = await timeline(client, workspace, contact_id, channel="store")
    assert [e["id"] for e in in_store["data"]] == [ids["refund"], ids["purchase"]]
    window = await timeline(
        client,
        workspace,
        contact_id,
        occurred_after=(START + timedelta(minutes=30)).isoformat(),
        occurred_before=(START + timedelta(hours=2, minutes=30)).isoformat(),
    )
    assert [e["id"] for e in window["data"]] == [ids["chat"], ids["purchase"]]


async def test_kinds_outside_the_keys_scopes_are_left_out(
    client: httpx.AsyncClient, workspace: WorkspaceHandle, history: tuple[str, dict[str, str]]
) -> None:
    contact_id, ids = history
    headers = await workspace.key("contacts:read", "interactions:read")
    response = await client.get(f"/v1/contacts/{contact_id}/timeline", headers=headers)
    assert response.status_code == 200, response.text
    assert [e["id"] for e in response.json()["data"]] == [ids["chat"], ids["call"]]
    interactions_only = await workspace.key("interactions:read")
    response = await client.get(f"/v1/contacts/{contact_id}/timeline", headers=interactions_only)
    assert_problem(response, 403, "forbidden")


async def test_bad_requests(
    client: httpx.AsyncClient,
    workspace: WorkspaceHandle,
    make_workspace: Any,
    history: tuple[str, dict[str, str]],
) -> None:
    contact_id, _ = history
    path = f"/v1/contacts/{contact_id}/timeline"
    assert_problem(
        await client.get(path, headers=workspace.headers, params={"kind": "tweet"}),
        422,
        "validation_error",
    )
    assert_problem(
        await client.get(path, headers=workspace.headers, params={"cursor": "bm9wZQ"}),
        400,
        "invalid_cursor",
    )
    assert_problem(
        await client.get(
            path, headers=workspace.headers, params={"occurred_after": "2026-03-01T09:00:00"}
        ),
        422,
        "validation_error",
    )
    other = await make_workspace()
    assert_problem(await client.get(path, headers=other.headers), 404, "not_found")


async def test_a_merged_contacts_history_follows_the_survivor(
    client: httpx.AsyncClient, workspace: WorkspaceHandle, history: tuple[str, dict[str, str]]
) -> None:
    absorbed_id, ids = history
    survivor_id = await make_contact(client, workspace, given_name="Somchai J.")
    merged = await client.post(
        f"/v1/contacts/{survivor_id}/merge",
        headers=workspace.headers,
        json={"absorb": [absorbed_id]},
    )
    assert merged.status_code == 200, merged.text
    page = await timeline(client, workspace, survivor_id)
    assert {e["id"] for e in page["data"]} == set(ids.values())
    gone = await client.get(f"/v1/contacts/{absorbed_id}/timeline", headers=workspace.headers)
    assert gone.status_code == 404


async def test_single_view(
    client: httpx.AsyncClient, workspace: WorkspaceHandle, history: tuple[str, dict[str, str]]
) -> None:
    contact_id, ids = history
    account = await client.post(
        "/v1/accounts", headers=workspace.headers, json={"name": "Siam Tea House"}
    )
    assert account.status_code == 201, account.text
    patched = await client.patch(
        f"/v1/contacts/{contact_id}",
        headers={**workspace.headers, "Content-Type": "application/merge-patch+json"},
        json={"account_id": account.json()["id"]},
    )
    assert patched.status_code == 200, patched.text
    complaint = await add_interaction(
        client,
        workspace,
        contact_id,
        START + timedelta(hours=4),
        channel="email",
        type="complaint",
        subject="Cold tea",
        feedback={"kind": "direct", "sentiment": "negative", "urgency": "high"},
    )
    await add_purchase(client, workspace, contact_id, START + timedelta(hours=5), "120000", "VND")

    response = await client.get(f"/v1/contacts/{contact_id}/360", headers=workspace.headers)
    assert response.status_code == 200, response.text
    view = response.json()
    assert view["contact"]["id"] == contact_id
    assert view["account"]["name"] == "Siam Tea House"
    assert view["relationships"] == []
    assert view["interactions"]["total"] == 3
    assert view["interactions"]["by_channel"] == {"phone": 1, "chat": 1, "email": 1}
    assert [i["id"] for i in view["interactions"]["recent"]] == [
        complaint["id"],
        ids["chat"],
        ids["call"],
    ]
    assert [i["id"] for i in view["open_feedback"]] == [complaint["id"]]
    summary = view["purchases"]["summary"]
    assert summary["lifetime_count"] == 2
    by_currency = {row["currency"]: row for row in summary["by_currency"]}
    assert by_currency["THB"]["lifetime_spend"] == {"amount": "200.00", "currency": "THB"}
    assert by_currency["VND"]["lifetime_spend"] == {"amount": "120000", "currency": "VND"}
    assert [p["id"] for p in view["purchases"]["recent"]][1] == ids["purchase"]

    limited = await client.get(
        f"/v1/contacts/{contact_id}/360", headers=workspace.headers, params={"recent": 1}
    )
    assert len(limited.json()["interactions"]["recent"]) == 1

    narrow = await client.get(
        f"/v1/contacts/{contact_id}/360", headers=await workspace.key("contacts:read")
    )
    assert narrow.status_code == 200, narrow.text
    assert narrow.json()["interactions"] is None
    assert narrow.json()["purchases"] is None
    assert narrow.json()["contact"]["id"] == contact_id
