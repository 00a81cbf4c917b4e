from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import WorkspaceHandle
from tests.purchase.helpers import (
    MISSING,
    WHEN,
    count_rows,
    events,
    fields_of,
    new_contact,
    new_purchase,
    refund,
    simple_purchase,
    thb,
    vnd,
)
from tests.test_conventions import assert_problem


async def _purchase(client: httpx.AsyncClient, ws: WorkspaceHandle, **body: Any) -> dict[str, Any]:
    contact_id = await new_contact(client, ws)
    return await new_purchase(client, ws, {"contact_id": contact_id, "occurred_at": WHEN, **body})


async def _get(client: httpx.AsyncClient, ws: WorkspaceHandle, purchase_id: str) -> dict[str, Any]:
    response = await client.get(f"/v1/purchases/{purchase_id}", headers=ws.headers)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def test_refund_by_amount_until_nothing_remains(
    client: httpx.AsyncClient, workspace: WorkspaceHandle, owner_engine: AsyncEngine
) -> None:
    purchase = await _purchase(client, workspace, total=thb("1000.00"))
    first = await refund(
        client, workspace, purchase["id"], amount=thb("250.50"), reason="damaged box"
    )
    assert first.status_code == 201, first.text
    body = first.json()
    assert first.headers["location"] == f"/v1/purchases/{purchase['id']}/refunds/{body['id']}"
    assert body["amount"] == thb("250.50")
    assert body["items"] == []
    assert body["reason"] == "damaged box"
    assert body["contact_id"] == purchase["contact_id"]
    assert body["purchase_status"] == "partially_refunded"
    assert body["purchase_refunded"] == thb("250.50")
    assert body["purchase_version"] == 2
    after = await _get(client, workspace, purchase["id"])
    assert after["status"] == "partially_refunded"
    assert after["refunded"] == thb("250.50")
    assert after["net"] == thb("749.50")
    assert after["version"] == 2

    too_much = await refund(client, workspace, purchase["id"], amount=thb("749.51"))
    problem = assert_problem(too_much, 422, "refund_exceeds_paid")
    assert problem["remaining"] == thb("749.50")
    assert fields_of(problem) == ["amount"]

    rest = await refund(
        client,
        workspace,
        purchase["id"],
        amount=thb("749.50"),
        occurred_at="2026-11-21T09:00:00+07:00",
    )
    assert rest.status_code == 201
    assert rest.json()["purchase_status"] == "refunded"
    assert rest.json()["occurred_at"] == "2026-11-21T02:00:00Z"
    assert_problem(
        await refund(client, workspace, purchase["id"], amount=thb("0.01")),
        422,
        "refund_exceeds_paid",
    )

    listed = await client.get(f"/v1/purchases/{purchase['id']}/refunds", headers=workspace.headers)
    assert listed.status_code == 200
    assert [r["amount"]["amount"] for r in listed.json()["data"]] == ["250.50", "749.50"]
    page = await client.get(
        f"/v1/purchases/{purchase['id']}/refunds", headers=workspace.headers, params={"limit": 1}
    )
    second = await client.get(
        f"/v1/purchases/{purchase['id']}/refunds",
        headers=workspace.headers,
        params={"limit": 1, "cursor": page.json()["next_cursor"]},
    )
    assert [r["id"] for r in page.json()["data"] + second.json()["data"]] == [
        r["id"] for r in listed.json()["data"]
    ]
    one = await client.get(first.headers["location"], headers=workspace.headers)
    assert one.status_code == 200
    assert one.json()["id"] == body["id"]
    missing = await client.get(
        f"/v1/purchases/{purchase['id']}/refunds/{MISSING}", headers=workspace.headers
    )
    assert_problem(missing, 404, "not_found")

    refunded = [
        e
        for e in await events(owner_engine, workspace, "purchase")
        if e.type == "purchase.refunded"
    ]
    assert len(refunded) == 2
    assert refunded[0].data["amount"] == thb("250.50")
    assert refunded[0].data["purchase_status"] == "partially_refunded"
    assert refunded[1].data["purchase_refunded"] == thb("1000.00")
    assert refunded[1].data["purchase_status"] == "refunded"


async def test_refund_by_items_shares_the_discount_exactly(
    client: httpx.AsyncClient, workspace: WorkspaceHandle
) -> None:
    # Line 1: 3 x 100.00 less 10.00 = 290.00; line 2: 1 x 50.00.
    purchase = await _purchase(
        client,
        workspace,
        total=thb("340.00"),
        items=[
            {"name": "Mug", "quantity": 3, "unit_price": thb("100.00"), "discount": thb("10.00")},
            {"name": "Spoon", "quantity": 1, "unit_price": thb("50.00")},
        ],
    )
    one = await refund(client, workspace, purchase["id"], items=[{"line": 1, "quantity": 1}])
    assert one.status_code == 201, one.text
    # The first unit carries ceil(10.00 / 3) = 3.34 of the discount.
    assert one.json()["amount"] == thb("96.66")
    assert one.json()["items"] == [{"line": 1, "quantity": 1, "amount": thb("96.66")}]
    state = await _get(client, workspace, purchase["id"])
    assert [item["refunded_quantity"] for item in state["items"]] == [1, 0]

    over = await refund(client, workspace, purchase["id"], items=[{"line": 1, "quantity": 3}])
    problem = assert_problem(over, 422, "refund_exceeds_paid")
    assert fields_of(problem) == ["items.0.quantity"]

    rest = await refund(
        client,
        workspace,
        purchase["id"],
        items=[{"line": 2, "quantity": 1}, {"line": 1, "quantity": 2}],
    )
    assert rest.status_code == 201, rest.text
    assert rest.json()["items"] == [
        {"line": 1, "quantity": 2, "amount": thb("193.34")},
        {"line": 2, "quantity": 1, "amount": thb("50.00")},
    ]
    assert rest.json()["purchase_status"] == "refunded"
    final = await _get(client, workspace, purchase["id"])
    assert final["refunded"] == final["total"]
    assert [item["refunded_quantity"] for item in final["items"]] == [3, 1]


async def test_items_refund_is_limited_by_money_already_refunded(
    client: httpx.AsyncClient, workspace: WorkspaceHandle
) -> None:
    purchase = await _purchase(
        client,
        workspace,
        total=vnd("300000"),
        items=[{"name": "Áo dài", "quantity": 3, "unit_price": vnd("100000")}],
    )
    assert (
        await refund(client, workspace, purchase["id"], amount=vnd("250000"))
    ).status_code == 201
    response = await refund(client, workspace, purchase["id"], items=[{"line": 1, "quantity": 1}])
    problem = assert_problem(response, 422, "refund_exceeds_paid")
    assert problem["remaining"] == vnd("50000")
    state = await _get(client, workspace, purchase["id"])
    assert state["items"][0]["refunded_quantity"] == 0


BAD_REFUNDS: list[tuple[str, dict[str, Any], str, int]] = [
    ("another currency", {"amount": vnd("10")}, "validation_error", 422),
    ("three decimals", {"amount": thb("1.001")}, "validation_error", 422),
    ("a float", {"amount": {"amount": 1.5, "currency": "THB"}}, "validation_error", 422),
    ("zero", {"amount": thb("0")}, "validation_error", 422),
    ("negative", {"amount": thb("-5.00")}, "validation_error", 422),
    ("both", {"amount": thb("1"), "items": [{"line": 1, "quantity": 1}]}, "validation_error", 422),
    ("neither", {"reason": "?"}, "validation_error", 422),
    ("no items", {"items": []}, "validation_error", 422),
    ("unknown line", {"items": [{"line": 7, "quantity": 1}]}, "validation_error", 422),
    ("line twice", {"items": [{"line": 1, "quantity": 1}] * 2}, "validation_error", 422),
    ("zero units", {"items": [{"line": 1, "quantity": 0}]}, "validation_error", 422),
    ("more than paid", {"amount": thb("100.01")}, "refund_exceeds_paid", 422),
    (
        "naive time",
        {"amount": thb("1"), "occurred_at": "2026-11-20T10:00:00"},
        "validation_error",
        422,
    ),
    ("extra field", {"amount": thb("1"), "status": "refunded"}, "validation_error", 422),
    ("NUL", {"amount": thb("1"), "reason": "a\x00b"}, "validation_error", 422),
]


@pytest.mark.parametrize(
    ("case", "body", "code", "status"), BAD_REFUNDS, ids=[c[0] for c in BAD_REFUNDS]
)
async def test_bad_refunds_store_nothing(
    client: httpx.AsyncClient,
    workspace: WorkspaceHandle,
    owner_engine: AsyncEngine,
    case: str,
    body: dict[str, Any],
    code: str,
    status: int,
) -> None:
    purchase = await simple_purchase(
        client, workspace, await new_contact(client, workspace), thb("100.00")
    )
    response = await refund(client, workspace, purchase["id"], **body)
    assert_problem(response, status, code)
    assert await count_rows(owner_engine, workspace, "purchase_refunds") == 0
    assert (await _get(client, workspace, purchase["id"]))["version"] == 1


async def test_free_items_give_nothing_back(
    client: httpx.AsyncClient, workspace: WorkspaceHandle
) -> None:
    purchase = await _purchase(
        client,
        workspace,
        total=thb("0.00"),
        items=[{"name": "Sample", "quantity": 1, "unit_price": thb("0")}],
    )
    response = await refund(client, workspace, purchase["id"], items=[{"line": 1, "quantity": 1}])
    assert response.status_code == 422


async def test_cancelled_purchase_cannot_be_refunded(
    client: httpx.AsyncClient, workspace: WorkspaceHandle
) -> None:
    purchase = await simple_purchase(
        client, workspace, await new_contact(client, workspace), thb("100.00"), status="cancelled"
    )
    response = await refund(client, workspace, purchase["id"], amount=thb("1.00"))
    assert_problem(response, 409, "conflict")


async def test_refund_external_id_makes_it_idempotent(
    client: httpx.AsyncClient, workspace: WorkspaceHandle, owner_engine: AsyncEngine
) -> None:
    purchase = await simple_purchase(
        client, workspace, await new_contact(client, workspace), thb("100.00")
    )
    first = await refund(client, workspace, purchase["id"], amount=thb("30.00"), external_id="RT-1")
    assert first.status_code == 201
    assert first.json()["external_id"] == "RT-1"
    again = await asyncio.gather(
        *(
            refund(client, workspace, purchase["id"], amount=thb("30.00"), external_id="RT-1")
            for _ in range(5)
        )
    )
    assert [response.status_code for response in again] == [200] * 5
    assert {response.json()["id"] for response in again} == {first.json()["id"]}
    assert (await _get(client, workspace, purchase["id"]))["refunded"] == thb("30.00")
    assert await count_rows(owner_engine, workspace, "purchase_refunds") == 1


async def test_concurrent_refunds_never_exceed_the_total(
    client: httpx.AsyncClient, workspace: WorkspaceHandle
) -> None:
    purchase = await simple_purchase(
        client, workspace, await new_contact(client, workspace), thb("1000.00")
    )
    amounts = ["70.00", "130.00", "90.00", "250.00", "45.50"] * 5  # 2927.50 asked for
    responses = await asyncio.gather(
        *(refund(client, workspace, purchase["id"], amount=thb(amount)) for amount in amounts)
    )
    succeeded = [r for r in responses if r.status_code == 201]
    refused = [r for r in responses if r.status_code != 201]
    assert succeeded
    assert refused
    for response in refused:
        assert_problem(response, 422, "refund_exceeds_paid")
    paid_back = sum(int(r.json()["amount"]["amount"].replace(".", "")) for r in succeeded)
    assert paid_back <= 100000
    state = await _get(client, workspace, purchase["id"])
    assert int(state["refunded"]["amount"].replace(".", "")) == paid_back
    assert state["version"] == 1 + len(succeeded)
    listed = await client.get(
        f"/v1/purchases/{purchase['id']}/refunds", headers=workspace.headers, params={"limit": 200}
    )
    assert len(listed.json()["data"]) == len(succeeded)


async def test_concurrent_item_returns_never_exceed_the_units_bought(
    client: httpx.AsyncClient, workspace: WorkspaceHandle
) -> None:
    purchase = await _purchase(
        client,
        workspace,
        total=thb("500.00"),
        items=[{"name": "Soap", "quantity": 5, "unit_price": thb("100.00")}],
    )
    responses = await asyncio.gather(
        *(
            refund(client, workspace, purchase["id"], items=[{"line": 1, "quantity": 1}])
            for _ in range(12)
        )
    )
    assert sorted(r.status_code for r in responses) == [201] * 5 + [422] * 7
    state = await _get(client, workspace, purchase["id"])
    assert state["items"][0]["refunded_quantity"] == 5
    assert state["status"] == "refunded"
