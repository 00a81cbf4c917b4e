from __future__ import annotations

from typing import Any

import httpx

from app.auth.scopes import Scope
from app.db.session import Database
from tests.conftest import WorkspaceHandle
from tests.purchase.helpers import WHEN, new_contact, refund, simple_purchase, thb
from tests.test_graphql import codes, count_statements, gql

PURCHASE_FIELDS = """
  id contactId occurredAt channel storeId status version attributes
  total { amount currency } refunded { amount currency } net { amount currency }
  items { line sku name quantity unitPrice { amount currency } discount { amount }
          amount { amount currency } refundedQuantity }
  externalIds { system value }
"""
CREATE = f"""
mutation($input: PurchaseCreateInput!) {{
  createPurchase(input: $input) {{ {PURCHASE_FIELDS} contact {{ id displayName }} }}
}}"""
PAGE = """
query Page($first: Int, $after: String, $filter: PurchaseFilter, $sort: String) {
  purchases(first: $first, after: $after, filter: $filter, sort: $sort) {
    edges { cursor node {
      id total { amount } items { name amount { amount } }
      contact { id displayName }
      refunds { id amount { amount } items { line quantity } }
    } }
    pageInfo { hasNextPage endCursor }
  }
}"""


def _input(contact_id: str, **overrides: Any) -> dict[str, Any]:
    value: dict[str, Any] = {
        "contactId": contact_id,
        "occurredAt": WHEN,
        "total": {"amount": "1250.50", "currency": "THB"},
        "storeId": "BKK-SIAM",
        "items": [
            {
                "sku": "TEA-01",
                "name": "Thai tea set",
                "quantity": 2,
                "unitPrice": {"amount": "450.00", "currency": "THB"},
                "discount": {"amount": "50.00", "currency": "THB"},
            },
            {"name": "Cup", "quantity": 1, "unitPrice": {"amount": "400.50", "currency": "THB"}},
        ],
        "attributes": {"cashier": "A7"},
        "externalIds": [{"system": "pos", "value": "G-1"}],
    }
    value.update(overrides)
    return value


async def test_create_read_update_refund_delete(
    client: httpx.AsyncClient, workspace: WorkspaceHandle
) -> None:
    contact_id = await new_contact(client, workspace, "Malee")
    result = await gql(client, workspace.headers, CREATE, {"input": _input(contact_id)})
    assert "errors" not in result, result
    created = result["data"]["createPurchase"]
    assert created["contact"] == {"id": contact_id, "displayName": "Malee"}
    assert created["total"] == {"amount": "1250.50", "currency": "THB"}
    assert created["items"][0]["amount"] == {"amount": "850.00", "currency": "THB"}
    assert created["externalIds"] == [{"system": "pos", "value": "G-1"}]
    assert created["status"] == "completed"

    replay = await gql(client, workspace.headers, CREATE, {"input": _input(contact_id)})
    assert replay["data"]["createPurchase"]["id"] == created["id"]

    found = await gql(
        client,
        workspace.headers,
        """query($id: UUID!) {
          purchase(id: $id) { id status }
          purchaseByExternalId(system: "pos", value: "G-1") { id }
        }""",
        {"id": created["id"]},
    )
    assert found["data"]["purchase"] == {"id": created["id"], "status": "completed"}
    assert found["data"]["purchaseByExternalId"] == {"id": created["id"]}

    refunded = await gql(
        client,
        workspace.headers,
        """mutation($id: UUID!, $input: RefundInput!) {
          refundPurchase(id: $id, input: $input) {
            refund { amount { amount currency } items { line quantity amount { amount } } reason }
            purchase { status version refunded { amount } items { refundedQuantity } }
          }
        }""",
        {"id": created["id"], "input": {"items": [{"line": 1, "quantity": 1}], "reason": "chip"}},
    )
    assert "errors" not in refunded, refunded
    outcome = refunded["data"]["refundPurchase"]
    assert outcome["refund"]["amount"] == {"amount": "425.00", "currency": "THB"}
    assert outcome["refund"]["items"] == [
        {"line": 1, "quantity": 1, "amount": {"amount": "425.00"}}
    ]
    assert outcome["purchase"]["status"] == "partially_refunded"
    assert outcome["purchase"]["version"] == 2
    assert [item["refundedQuantity"] for item in outcome["purchase"]["items"]] == [1, 0]

    updated = await gql(
        client,
        workspace.headers,
        """mutation($id: UUID!, $input: PurchaseUpdateInput!, $ifMatch: String) {
          updatePurchase(id: $id, input: $input, ifMatch: $ifMatch) {
            channel storeId version attributes externalIds { system value } } }""",
        {
            "id": created["id"],
            "input": {
                "channel": "web",
                "storeId": None,
                "attributes": {"note": "gift"},
                "externalIds": [{"system": "shopify", "value": "77"}],
            },
            "ifMatch": '"2"',
        },
    )
    assert "errors" not in updated, updated
    assert updated["data"]["updatePurchase"] == {
        "channel": "web",
        "storeId": None,
        "version": 3,
        "attributes": {"cashier": "A7", "note": "gift"},
        "externalIds": [{"system": "pos", "value": "G-1"}, {"system": "shopify", "value": "77"}],
    }

    deleted = await gql(
        client,
        workspace.headers,
        'mutation($id: UUID!) { deletePurchase(id: $id, ifMatch: "1") }',
        {"id": created["id"]},
    )
    assert codes(deleted) == ["precondition_failed"]
    deleted = await gql(
        client,
        workspace.headers,
        "mutation($id: UUID!) { deletePurchase(id: $id) }",
        {"id": created["id"]},
    )
    assert deleted["data"]["deletePurchase"] == created["id"]
    gone = await gql(
        client, workspace.headers, "query($id: UUID!) { purchase(id: $id) { id } }",
        {"id": created["id"]},
    )  # fmt: skip
    assert codes(gone) == ["not_found"]


async def test_errors_carry_the_rest_codes(
    client: httpx.AsyncClient, workspace: WorkspaceHandle
) -> None:
    contact_id = await new_contact(client, workspace)
    off = await gql(
        client,
        workspace.headers,
        CREATE,
        {"input": _input(contact_id, total={"amount": "1.00", "currency": "THB"})},
    )
    assert codes(off) == ["validation_error"]
    assert off["errors"][0]["extensions"]["errors"][0]["field"] == "total.amount"
    naive = await gql(
        client,
        workspace.headers,
        CREATE,
        {"input": _input(contact_id, occurredAt="2026-11-20T10:00:00")},
    )
    assert codes(naive) == ["validation_error"]
    unknown = await gql(
        client,
        workspace.headers,
        CREATE,
        {"input": _input("01a203ac-1022-7102-9d8c-88190aa27e2e")},
    )
    assert codes(unknown) == ["not_found"]

    purchase = await simple_purchase(client, workspace, contact_id, thb("10.00"))
    too_much = await gql(
        client,
        workspace.headers,
        """mutation($id: UUID!, $input: RefundInput!) {
          refundPurchase(id: $id, input: $input) { refund { id } } }""",
        {"id": purchase["id"], "input": {"amount": {"amount": "10.01", "currency": "THB"}}},
    )
    assert codes(too_much) == ["refund_exceeds_paid"]
    assert too_much["data"]["refundPurchase"] is None

    contacts_only = await workspace.key(Scope.contacts_read, Scope.contacts_write)
    denied = await gql(
        client,
        contacts_only,
        "query($id: UUID!) { purchase(id: $id) { id } purchases { edges { cursor } } }",
        {"id": purchase["id"]},
    )
    assert codes(denied) == ["forbidden", "forbidden"]
    assert denied["data"] == {"purchase": None, "purchases": None}
    denied = await gql(client, contacts_only, CREATE, {"input": _input(contact_id)})
    assert codes(denied) == ["forbidden"]


async def _fill(client: httpx.AsyncClient, ws: WorkspaceHandle, count: int, tag: str) -> None:
    for index in range(count):
        contact_id = await new_contact(client, ws, f"Buyer {tag}{index}")
        purchase = await simple_purchase(client, ws, contact_id, thb("100.00"))
        response = await refund(client, ws, purchase["id"], items=[{"line": 1, "quantity": 1}])
        assert response.status_code == 201, response.text


async def test_listing_with_items_contact_and_refunds_is_not_n_plus_one(
    client: httpx.AsyncClient, workspace: WorkspaceHandle, database: Database
) -> None:
    await _fill(client, workspace, 2, "a")
    with count_statements(database) as small:
        result = await gql(client, workspace.headers, PAGE, {"first": 50})
    assert len(result["data"]["purchases"]["edges"]) == 2
    await _fill(client, workspace, 18, "b")
    with count_statements(database) as large:
        result = await gql(client, workspace.headers, PAGE, {"first": 50})
    edges = result["data"]["purchases"]["edges"]
    assert len(edges) == 20
    assert all(edge["node"]["contact"]["displayName"].startswith("Buyer") for edge in edges)
    assert all(len(edge["node"]["refunds"]) == 1 for edge in edges)
    assert all(edge["node"]["items"][0]["name"] == "Thing" for edge in edges)
    assert len(large) == len(small), (small, large)


async def test_connection_pages_with_edge_cursors(
    client: httpx.AsyncClient, workspace: WorkspaceHandle
) -> None:
    contact_id = await new_contact(client, workspace)
    for day in range(1, 6):
        await simple_purchase(
            client, workspace, contact_id, thb("1.00"), occurred_at=f"2026-01-0{day}T00:00:00Z"
        )
    for sort in (None, "occurred_at", "created_at"):
        seen: list[str] = []
        after = None
        while True:
            result = await gql(
                client,
                workspace.headers,
                PAGE,
                {"first": 2, "after": after, "sort": sort, "filter": {"contactId": contact_id}},
            )
            assert "errors" not in result, result
            connection = result["data"]["purchases"]
            seen += [edge["node"]["id"] for edge in connection["edges"]]
            if not connection["pageInfo"]["hasNextPage"]:
                break
            after = connection["pageInfo"]["endCursor"]
            assert after == connection["edges"][-1]["cursor"]
        assert len(seen) == len(set(seen)) == 5
    first_two = await gql(client, workspace.headers, PAGE, {"first": 5})
    edges = first_two["data"]["purchases"]["edges"]
    rest = await gql(client, workspace.headers, PAGE, {"first": 5, "after": edges[1]["cursor"]})
    assert [e["node"]["id"] for e in rest["data"]["purchases"]["edges"]] == [
        e["node"]["id"] for e in edges[2:]
    ]
