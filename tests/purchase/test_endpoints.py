from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from app.auth.scopes import Scope
from tests.conftest import WorkspaceHandle
from tests.purchase.helpers import (
    MISSING,
    WHEN,
    basket,
    count_rows,
    events,
    fields_of,
    new_contact,
    new_purchase,
    post_purchase,
    refund,
    simple_purchase,
    thb,
    vnd,
)
from tests.test_conventions import assert_problem

# -- create and read -------------------------------------------------------------------------


async def test_create_reads_back_with_etags(
    client: httpx.AsyncClient, workspace: WorkspaceHandle
) -> None:
    contact_id = await new_contact(client, workspace)
    response = await post_purchase(client, workspace, basket(contact_id))
    assert response.status_code == 201, response.text
    body = response.json()
    assert response.headers["location"] == f"/v1/purchases/{body['id']}"
    assert response.headers["etag"] == '"1"'
    assert body["contact_id"] == contact_id
    assert body["occurred_at"] == "2026-11-20T03:30:00Z"
    assert body["status"] == "completed"
    assert body["total"] == {"amount": "1250.50", "currency": "THB"}
    assert body["refunded"] == {"amount": "0.00", "currency": "THB"}
    assert body["net"] == body["total"]
    assert [item["line"] for item in body["items"]] == [1, 2]
    first = body["items"][0]
    assert first["name"] == "ชาไทย Thai tea set"
    assert first["amount"] == thb("850.00")
    assert first["discount"] == thb("50.00")
    assert body["items"][1]["discount"] == thb("0.00")
    assert body["external_ids"] == {"pos": "R-0001"}
    assert body["version"] == 1

    fetched = await client.get(f"/v1/purchases/{body['id']}", headers=workspace.headers)
    assert fetched.status_code == 200
    assert fetched.json() == body
    assert fetched.headers["etag"] == '"1"'
    cached = await client.get(
        f"/v1/purchases/{body['id']}", headers={**workspace.headers, "If-None-Match": '"1"'}
    )
    assert cached.status_code == 304
    by_key = await client.get("/v1/purchases/by-external-id/pos/R-0001", headers=workspace.headers)
    assert by_key.status_code == 200
    assert by_key.json()["id"] == body["id"]
    missing = await client.get("/v1/purchases/by-external-id/pos/nope", headers=workspace.headers)
    assert_problem(missing, 404, "not_found")


async def test_receipt_without_items_in_vnd(
    client: httpx.AsyncClient, workspace: WorkspaceHandle
) -> None:
    contact_id = await new_contact(client, workspace)
    body = await new_purchase(
        client,
        workspace,
        {"contact_id": contact_id, "occurred_at": WHEN, "total": vnd("150000"), "channel": "web"},
    )
    assert body["items"] == []
    assert body["total"] == {"amount": "150000", "currency": "VND"}
    assert body["channel"] == "web"
    assert body["store_id"] is None


async def test_cancelled_purchase_can_be_recorded_but_not_refunded_states(
    client: httpx.AsyncClient, workspace: WorkspaceHandle
) -> None:
    contact_id = await new_contact(client, workspace)
    body = await simple_purchase(client, workspace, contact_id, thb("10.00"), status="cancelled")
    assert body["status"] == "cancelled"
    for status in ("refunded", "partially_refunded", "void"):
        response = await post_purchase(client, workspace, basket(contact_id, status=status))
        assert fields_of(assert_problem(response, 422, "validation_error")) == ["status"]


BAD_BODIES: list[tuple[str, dict[str, Any], list[str]]] = [
    ("lines do not add up", {"total": thb("1250.00")}, ["total.amount"]),
    (
        "a line in another currency",
        {
            "items": [
                {"name": "A", "quantity": 2, "unit_price": thb("450.00"), "discount": thb("50.00")},
                {"name": "B", "quantity": 1, "unit_price": vnd("400")},
            ]
        },
        ["items.1.unit_price.currency"],
    ),
    (
        "a discount in another currency",
        {
            "total": thb("900.00"),
            "items": [
                {"name": "A", "quantity": 2, "unit_price": thb("450.00"), "discount": vnd("0")},
            ],
        },
        ["items.0.discount.currency"],
    ),
    (
        "a discount larger than the line",
        {
            "total": thb("0.00"),
            "items": [
                {"name": "A", "quantity": 1, "unit_price": thb("5.00"), "discount": thb("6.00")}
            ],
        },
        ["items.0.discount.amount"],
    ),
    ("a negative total", {"total": thb("-1.00"), "items": []}, ["total.amount"]),
    (
        "a negative price",
        {"total": thb("-1.00"), "items": [{"name": "A", "quantity": 1, "unit_price": thb("-1")}]},
        ["total.amount", "items.0.unit_price.amount"],
    ),
    ("an unknown currency", {"total": {"amount": "1", "currency": "XYZ"}}, ["total.currency"]),
    ("a float amount", {"total": {"amount": 1250.5, "currency": "THB"}}, ["total.amount"]),
    ("three decimals in THB", {"total": thb("1250.505")}, ["total"]),
    ("decimals in VND", {"total": vnd("1.5"), "items": []}, ["total"]),
    ("an amount over the maximum", {"total": thb("1e16"), "items": []}, ["total.amount"]),
    ("a naive time", {"occurred_at": "2026-11-20T10:30:00"}, ["occurred_at"]),
    ("an unknown channel", {"channel": "carrier_pigeon"}, ["channel"]),
    ("an extra field", {"refunded": thb("1.00")}, ["refunded"]),
    ("a NUL character", {"store_id": "BKK\x00"}, ["store_id"]),
    ("a missing total", {"total": None}, ["total"]),
]


@pytest.mark.parametrize(("case", "changes", "fields"), BAD_BODIES, ids=[c[0] for c in BAD_BODIES])
async def test_bad_purchases_are_422_and_store_nothing(
    client: httpx.AsyncClient,
    workspace: WorkspaceHandle,
    owner_engine: AsyncEngine,
    case: str,
    changes: dict[str, Any],
    fields: list[str],
) -> None:
    contact_id = await new_contact(client, workspace)
    body = basket(contact_id, **changes)
    if body["total"] is None:
        del body["total"]
    response = await post_purchase(client, workspace, body)
    problem = assert_problem(response, 422, "validation_error")
    assert sorted(fields_of(problem)) == sorted(fields), problem
    assert await count_rows(owner_engine, workspace, "purchases") == 0
    assert await count_rows(owner_engine, workspace, "purchase_external_ids") == 0


@pytest.mark.parametrize("quantity", [0, -1, 1_000_001, 1.5, "2", True, 2**70])
async def test_quantities_are_bounded_integers(
    client: httpx.AsyncClient, workspace: WorkspaceHandle, quantity: Any
) -> None:
    contact_id = await new_contact(client, workspace)
    body = basket(
        contact_id,
        total=thb("10.00"),
        items=[{"name": "A", "quantity": quantity, "unit_price": thb("10.00")}],
    )
    response = await post_purchase(client, workspace, body)
    assert "items.0.quantity" in fields_of(assert_problem(response, 422, "validation_error"))


async def test_line_products_too_large_for_storage_are_422(
    client: httpx.AsyncClient, workspace: WorkspaceHandle
) -> None:
    contact_id = await new_contact(client, workspace)
    price = {"amount": "999999999999999", "currency": "CLF"}  # 4 decimals: beyond 64 bits
    body = basket(
        contact_id,
        total={"amount": "0", "currency": "CLF"},
        items=[{"name": "A", "quantity": 1_000_000, "unit_price": price, "discount": price}],
    )
    response = await post_purchase(client, workspace, body)
    problem = assert_problem(response, 422, "validation_error")
    assert "items.0.quantity" in fields_of(problem)


async def test_too_many_items_is_422(client: httpx.AsyncClient, workspace: WorkspaceHandle) -> None:
    contact_id = await new_contact(client, workspace)
    items = [{"name": "A", "quantity": 1, "unit_price": thb("1.00")}] * 501
    response = await post_purchase(
        client, workspace, basket(contact_id, total=thb("501.00"), items=items)
    )
    assert fields_of(assert_problem(response, 422, "validation_error")) == ["items"]


async def test_buyer_must_be_a_live_contact_of_the_workspace(
    client: httpx.AsyncClient, make_workspace: Any, owner_engine: AsyncEngine
) -> None:
    ours: WorkspaceHandle = await make_workspace()
    theirs: WorkspaceHandle = await make_workspace()
    response = await post_purchase(client, ours, basket(MISSING))
    assert fields_of(assert_problem(response, 404, "not_found")) == ["contact_id"]
    foreign = await new_contact(client, theirs)
    assert_problem(await post_purchase(client, ours, basket(foreign)), 404, "not_found")

    survivor = await new_contact(client, ours, "Survivor")
    absorbed = await new_contact(client, ours, "Absorbed")
    merged = await client.post(
        f"/v1/contacts/{survivor}/merge", headers=ours.headers, json={"absorb": [absorbed]}
    )
    assert merged.status_code == 200, merged.text
    problem = assert_problem(await post_purchase(client, ours, basket(absorbed)), 404, "not_found")
    assert problem["merged_into"] == survivor
    assert await count_rows(owner_engine, ours, "purchases") == 0


# -- idempotent ingest -----------------------------------------------------------------------


async def test_same_external_id_returns_the_stored_purchase(
    client: httpx.AsyncClient, workspace: WorkspaceHandle, owner_engine: AsyncEngine
) -> None:
    contact_id = await new_contact(client, workspace)
    first = await post_purchase(client, workspace, basket(contact_id))
    assert first.status_code == 201
    again = await post_purchase(client, workspace, basket(contact_id, store_id="elsewhere"))
    assert again.status_code == 200, again.text
    assert again.json() == first.json()
    assert again.headers["location"] == first.headers["location"]
    # Another key of the same system is another order.
    other = await post_purchase(client, workspace, basket(contact_id, external_ids={"pos": "R-2"}))
    assert other.status_code == 201
    assert await count_rows(owner_engine, workspace, "purchases") == 2
    created = await events(owner_engine, workspace, "purchase")
    assert [e.type for e in created] == ["purchase.created", "purchase.created"]


async def test_concurrent_duplicates_store_one_purchase(
    client: httpx.AsyncClient, workspace: WorkspaceHandle, owner_engine: AsyncEngine
) -> None:
    contact_id = await new_contact(client, workspace)
    body = basket(contact_id, external_ids={"shopify": "5001", "pos": "R-77"})
    responses = await asyncio.gather(*(post_purchase(client, workspace, body) for _ in range(12)))
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [200] * 11 + [201], [r.text for r in responses]
    assert len({response.json()["id"] for response in responses}) == 1
    assert await count_rows(owner_engine, workspace, "purchases") == 1
    assert await count_rows(owner_engine, workspace, "purchase_external_ids") == 2


async def test_external_ids_of_two_purchases_in_one_body_is_a_conflict(
    client: httpx.AsyncClient, workspace: WorkspaceHandle
) -> None:
    contact_id = await new_contact(client, workspace)
    one = await new_purchase(client, workspace, basket(contact_id, external_ids={"pos": "A"}))
    two = await new_purchase(client, workspace, basket(contact_id, external_ids={"web": "B"}))
    response = await post_purchase(
        client, workspace, basket(contact_id, external_ids={"pos": "A", "web": "B"})
    )
    problem = assert_problem(response, 409, "duplicate")
    assert problem["existing_id"] in (one["id"], two["id"])


# -- listing ---------------------------------------------------------------------------------


async def _listing(
    client: httpx.AsyncClient, ws: WorkspaceHandle, **params: Any
) -> list[dict[str, Any]]:
    response = await client.get("/v1/purchases", headers=ws.headers, params=params)
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


async def test_list_filters_sorts_and_pages(
    client: httpx.AsyncClient, workspace: WorkspaceHandle
) -> None:
    somsri = await new_contact(client, workspace, "Somsri")
    lan = await new_contact(client, workspace, "Lan")
    made = {
        "old": await simple_purchase(
            client, workspace, somsri, thb("100.00"), occurred_at="2025-01-05T09:00:00+07:00"
        ),
        "web": await simple_purchase(
            client,
            workspace,
            somsri,
            thb("200.00"),
            occurred_at="2026-03-01T12:00:00Z",
            channel="web",
        ),
        "hanoi": await simple_purchase(
            client,
            workspace,
            lan,
            vnd("99000"),
            occurred_at="2026-06-01T08:00:00+07:00",
            store_id="HN-1",
        ),
        "cancelled": await simple_purchase(
            client,
            workspace,
            lan,
            vnd("5000"),
            occurred_at="2026-07-01T08:00:00+07:00",
            status="cancelled",
        ),
    }
    ids = {name: body["id"] for name, body in made.items()}

    def named(rows: list[dict[str, Any]]) -> list[str]:
        by_id = {value: key for key, value in ids.items()}
        return [by_id[row["id"]] for row in rows]

    assert named(await _listing(client, workspace)) == ["cancelled", "hanoi", "web", "old"]
    assert named(await _listing(client, workspace, sort="occurred_at")) == [
        "old",
        "web",
        "hanoi",
        "cancelled",
    ]
    assert named(await _listing(client, workspace, sort="created_at")) == [
        "old",
        "web",
        "hanoi",
        "cancelled",
    ]
    assert named(await _listing(client, workspace, contact_id=somsri)) == ["web", "old"]
    assert named(await _listing(client, workspace, currency="vnd")) == ["cancelled", "hanoi"]
    assert named(await _listing(client, workspace, channel="web")) == ["web"]
    assert named(await _listing(client, workspace, store_id="HN-1")) == ["hanoi"]
    assert named(await _listing(client, workspace, status="cancelled")) == ["cancelled"]
    assert named(
        await _listing(client, workspace, status=["completed", "cancelled"], contact_id=lan)
    ) == ["cancelled", "hanoi"]
    assert named(
        await _listing(
            client,
            workspace,
            occurred_after="2026-03-01T12:00:00Z",
            occurred_before="2026-06-01T01:00:01Z",
        )
    ) == ["hanoi", "web"]
    assert (await _listing(client, workspace))[0]["items"][0]["name"] == "Thing"

    for sort in ("-occurred_at", "occurred_at", "created_at", "-created_at"):
        seen: list[str] = []
        cursor = None
        while True:
            params: dict[str, Any] = {"limit": 1, "sort": sort}
            if cursor:
                params["cursor"] = cursor
            page = await client.get("/v1/purchases", headers=workspace.headers, params=params)
            assert page.status_code == 200, page.text
            seen += [row["id"] for row in page.json()["data"]]
            cursor = page.json()["next_cursor"]
            if cursor is None:
                break
        assert sorted(seen) == sorted(ids.values()), sort
        assert len(seen) == 4, sort

    first_page = await client.get(
        "/v1/purchases", headers=workspace.headers, params={"limit": 1, "sort": "occurred_at"}
    )
    stale = first_page.json()["next_cursor"]
    mixed = await client.get("/v1/purchases", headers=workspace.headers, params={"cursor": stale})
    assert_problem(mixed, 400, "invalid_cursor")
    bad = await client.get("/v1/purchases", headers=workspace.headers, params={"cursor": "zz"})
    assert_problem(bad, 400, "invalid_cursor")
    unknown = await client.get("/v1/purchases", headers=workspace.headers, params={"sort": "total"})
    assert_problem(unknown, 422, "validation_error")
    for params in ({"currency": "XYZ"}, {"occurred_after": "2026-01-01T00:00:00"}, {"limit": 0}):
        response = await client.get("/v1/purchases", headers=workspace.headers, params=params)
        assert_problem(response, 422, "validation_error")


# -- change and delete -----------------------------------------------------------------------


async def test_patch_changes_safe_fields_with_if_match(
    client: httpx.AsyncClient, workspace: WorkspaceHandle, owner_engine: AsyncEngine
) -> None:
    contact_id = await new_contact(client, workspace)
    created = await new_purchase(client, workspace, basket(contact_id))
    url = f"/v1/purchases/{created['id']}"
    response = await client.patch(
        url,
        headers={**workspace.headers, "If-Match": '"1"'},
        json={
            "channel": "mobile_app",
            "store_id": None,
            "attributes": {"cashier": None, "note": "gift"},
            "external_ids": {"shopify": "9"},
        },
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert response.headers["etag"] == '"2"'
    assert body["version"] == 2
    assert body["channel"] == "mobile_app"
    assert body["store_id"] is None
    assert body["attributes"] == {"note": "gift"}
    assert body["external_ids"] == {"pos": "R-0001", "shopify": "9"}
    assert body["items"] == created["items"]
    stale = await client.patch(
        url, headers={**workspace.headers, "If-Match": '"1"'}, json={"channel": "web"}
    )
    assert_problem(stale, 412, "precondition_failed")

    # Only external ids change: still a new version.
    renamed = await client.patch(
        url, headers=workspace.headers, json={"external_ids": {"pos": None}}
    )
    assert renamed.json()["external_ids"] == {"shopify": "9"}
    assert renamed.json()["version"] == 3
    gone = await client.get("/v1/purchases/by-external-id/pos/R-0001", headers=workspace.headers)
    assert_problem(gone, 404, "not_found")

    unchanged = await client.patch(url, headers=workspace.headers, json={"channel": "mobile_app"})
    assert unchanged.json()["version"] == 3

    immutables: list[dict[str, Any]] = [
        {"total": thb("1.00")},
        {"items": []},
        {"contact_id": contact_id},
        {"occurred_at": WHEN},
        {"refunded": thb("0.00")},
        {"version": 9},
        {"status": "completed"},
        {"status": "refunded"},
        {"status": None},
        {"channel": None},
    ]
    for immutable in immutables:
        response = await client.patch(url, headers=workspace.headers, json=immutable)
        assert_problem(response, 422, "validation_error")

    updates = [
        e for e in await events(owner_engine, workspace, "purchase") if e.type != "purchase.created"
    ]
    assert [e.type for e in updates] == ["purchase.updated", "purchase.updated"]
    assert updates[0].changed_fields == ["attributes", "channel", "external_ids", "store_id"]
    assert updates[1].changed_fields == ["external_ids"]


async def test_external_id_of_another_purchase_is_409(
    client: httpx.AsyncClient, workspace: WorkspaceHandle
) -> None:
    contact_id = await new_contact(client, workspace)
    one = await new_purchase(client, workspace, basket(contact_id, external_ids={"pos": "A"}))
    two = await new_purchase(client, workspace, basket(contact_id, external_ids={"pos": "B"}))
    response = await client.patch(
        f"/v1/purchases/{two['id']}", headers=workspace.headers, json={"external_ids": {"pos": "A"}}
    )
    assert assert_problem(response, 409, "duplicate")["existing_id"] == one["id"]


async def test_cancel_only_without_refunds(
    client: httpx.AsyncClient, workspace: WorkspaceHandle
) -> None:
    contact_id = await new_contact(client, workspace)
    kept = await simple_purchase(client, workspace, contact_id, thb("100.00"))
    refunded = await simple_purchase(client, workspace, contact_id, thb("100.00"))
    assert (await refund(client, workspace, refunded["id"], amount=thb("1.00"))).status_code == 201
    cancelled = await client.patch(
        f"/v1/purchases/{kept['id']}", headers=workspace.headers, json={"status": "cancelled"}
    )
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    refused = await client.patch(
        f"/v1/purchases/{refunded['id']}", headers=workspace.headers, json={"status": "cancelled"}
    )
    assert_problem(refused, 409, "conflict")


async def test_delete_then_404(
    client: httpx.AsyncClient, workspace: WorkspaceHandle, owner_engine: AsyncEngine
) -> None:
    contact_id = await new_contact(client, workspace)
    created = await new_purchase(client, workspace, basket(contact_id))
    await refund(client, workspace, created["id"], amount=thb("10.00"))
    url = f"/v1/purchases/{created['id']}"
    stale = await client.delete(url, headers={**workspace.headers, "If-Match": '"1"'})
    assert_problem(stale, 412, "precondition_failed")
    assert (await client.delete(url, headers=workspace.headers)).status_code == 204
    assert_problem(await client.get(url, headers=workspace.headers), 404, "not_found")
    assert_problem(await client.delete(url, headers=workspace.headers), 404, "not_found")
    for table in ("purchases", "purchase_items", "purchase_refunds", "purchase_external_ids"):
        assert await count_rows(owner_engine, workspace, table) == 0, table
    # The order id is free again.
    assert (await post_purchase(client, workspace, basket(contact_id))).status_code == 201
    deleted = [
        e for e in await events(owner_engine, workspace, "purchase") if e.type == "purchase.deleted"
    ]
    assert deleted[0].data == {"id": created["id"], "contact_id": contact_id}


async def test_events_carry_the_purchase(
    client: httpx.AsyncClient, workspace: WorkspaceHandle, owner_engine: AsyncEngine
) -> None:
    contact_id = await new_contact(client, workspace)
    created = await new_purchase(client, workspace, basket(contact_id))
    recorded = await events(owner_engine, workspace, "purchase")
    assert [e.type for e in recorded] == ["purchase.created"]
    assert recorded[0].data == created
    assert recorded[0].data["contact_id"] == contact_id
    assert len(recorded[0].data["items"]) == 2


# -- tenancy and scopes ----------------------------------------------------------------------


async def test_another_workspaces_purchase_is_404(
    client: httpx.AsyncClient, make_workspace: Any
) -> None:
    ours: WorkspaceHandle = await make_workspace()
    theirs: WorkspaceHandle = await make_workspace()
    contact_id = await new_contact(client, theirs)
    foreign = await new_purchase(client, theirs, basket(contact_id))
    url = f"/v1/purchases/{foreign['id']}"
    assert_problem(await client.get(url, headers=ours.headers), 404, "not_found")
    patched = await client.patch(url, headers=ours.headers, json={"channel": "web"})
    assert_problem(patched, 404, "not_found")
    assert_problem(await client.delete(url, headers=ours.headers), 404, "not_found")
    assert_problem(await refund(client, ours, foreign["id"], amount=thb("1.00")), 404, "not_found")
    assert_problem(await client.get(f"{url}/refunds", headers=ours.headers), 404, "not_found")
    by_key = await client.get("/v1/purchases/by-external-id/pos/R-0001", headers=ours.headers)
    assert_problem(by_key, 404, "not_found")
    assert (await client.get("/v1/purchases", headers=ours.headers)).json()["data"] == []
    # Their order id is no duplicate of ours.
    mine = await new_contact(client, ours)
    assert (await post_purchase(client, ours, basket(mine))).status_code == 201
    assert (await client.get(url, headers=theirs.headers)).status_code == 200


async def test_scopes(client: httpx.AsyncClient, workspace: WorkspaceHandle) -> None:
    contact_id = await new_contact(client, workspace)
    created = await new_purchase(client, workspace, basket(contact_id))
    url = f"/v1/purchases/{created['id']}"
    contacts_only = await workspace.key(Scope.contacts_read, Scope.contacts_write)
    for response in (
        await client.get("/v1/purchases", headers=contacts_only),
        await client.get(url, headers=contacts_only),
        await client.post("/v1/purchases", headers=contacts_only, json=basket(contact_id)),
        await client.post(f"{url}/refunds", headers=contacts_only, json={"amount": thb("1")}),
    ):
        assert_problem(response, 403, "forbidden")
    reader = await workspace.key(Scope.purchases_read)
    assert (await client.get(url, headers=reader)).status_code == 200
    assert (await client.get(f"{url}/refunds", headers=reader)).status_code == 200
    assert_problem(
        await client.patch(url, headers=reader, json={"channel": "web"}), 403, "forbidden"
    )
    assert_problem(await client.delete(url, headers=reader), 403, "forbidden")
    writer = await workspace.key(Scope.purchases_write, Scope.purchases_read)
    response = await client.post(
        "/v1/purchases", headers=writer, json=basket(contact_id, external_ids={"pos": "W"})
    )
    assert response.status_code == 201
