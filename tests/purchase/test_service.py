"""The functions other modules call: summaries, recent purchases, and merge re-pointing."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.auth.dependencies import AuthContext
from app.db.session import Database, bind_workspace
from app.purchase.service import purchase as purchase_service
from tests.conftest import WorkspaceHandle
from tests.purchase.helpers import (
    new_contact,
    post_purchase,
    refund,
    simple_purchase,
    thb,
    vnd,
)
from tests.test_conventions import assert_problem
from tests.test_graphql import count_statements


def _auth(ws: WorkspaceHandle) -> AuthContext:
    return AuthContext(
        workspace_id=ws.id, api_key_id=ws.admin_key_id, scopes=frozenset({"purchases:read"})
    )


def _ago(days: int) -> str:
    return (datetime.now(UTC) - timedelta(days=days)).isoformat()


async def test_summaries_per_currency_net_of_refunds(
    client: httpx.AsyncClient, workspace: WorkspaceHandle, database: Database
) -> None:
    buyer = await new_contact(client, workspace, "Buyer")
    idle = await new_contact(client, workspace, "Idle")
    other = await new_contact(client, workspace, "Other")
    recent = await simple_purchase(client, workspace, buyer, thb("1000.00"), occurred_at=_ago(60))
    await refund(client, workspace, recent["id"], amount=thb("200.00"))
    await simple_purchase(client, workspace, buyer, thb("500.00"), occurred_at=_ago(400))
    await simple_purchase(client, workspace, buyer, thb("0.01"), occurred_at=_ago(10))
    await simple_purchase(
        client, workspace, buyer, thb("999.00"), occurred_at=_ago(5), status="cancelled"
    )
    returned = await simple_purchase(client, workspace, buyer, thb("300.00"), occurred_at=_ago(1))
    await refund(client, workspace, returned["id"], amount=thb("300.00"))
    await simple_purchase(client, workspace, buyer, vnd("150000"), occurred_at=_ago(30))
    await simple_purchase(client, workspace, other, vnd("1"), occurred_at=_ago(3))

    async with database.sessionmaker() as session, session.begin():
        await bind_workspace(session, workspace.id)
        with count_statements(database) as statements:
            summaries = await purchase_service.summaries_for_contacts(
                session, _auth(workspace), [uuid.UUID(buyer), uuid.UUID(idle)]
            )
    assert len(statements) == 1
    assert set(summaries) == {uuid.UUID(buyer), uuid.UUID(idle)}
    summary = summaries[uuid.UUID(buyer)].model_dump(mode="json")
    assert summary["lifetime_count"] == 4
    by_currency = {item["currency"]: item for item in summary["by_currency"]}
    assert list(by_currency) == ["THB", "VND"]
    baht = by_currency["THB"]
    assert baht["lifetime_count"] == 3
    assert baht["lifetime_spend"] == thb("1300.01")
    assert baht["last_12_months_count"] == 2
    assert baht["last_12_months_spend"] == thb("800.01")
    assert baht["average_order_value"] == thb("433.34")  # 1300.01 / 3, half up
    dong = by_currency["VND"]
    assert (dong["lifetime_count"], dong["lifetime_spend"]) == (1, vnd("150000"))
    assert dong["average_order_value"] == vnd("150000")
    first = datetime.fromisoformat(summary["first_purchase_at"])
    last = datetime.fromisoformat(summary["last_purchase_at"])
    assert timedelta(days=399) < datetime.now(UTC) - first < timedelta(days=401)
    assert timedelta(days=9) < datetime.now(UTC) - last < timedelta(days=11)
    empty = summaries[uuid.UUID(idle)]
    assert (empty.lifetime_count, empty.by_currency, empty.first_purchase_at) == (0, [], None)


async def test_recent_for_contacts_is_one_statement(
    client: httpx.AsyncClient, workspace: WorkspaceHandle, database: Database
) -> None:
    first = await new_contact(client, workspace, "First")
    second = await new_contact(client, workspace, "Second")
    idle = await new_contact(client, workspace, "Idle")
    made: dict[str, list[str]] = {first: [], second: []}
    for days in (5, 1, 3, 9):
        for contact_id in (first, second):
            body = await simple_purchase(
                client,
                workspace,
                contact_id,
                thb(f"{days}.00"),
                occurred_at=_ago(days),
                external_ids={"pos": f"{contact_id}-{days}", "web": f"w{contact_id}-{days}"},
            )
            made[contact_id].append(body["id"])
    async with database.sessionmaker() as session, session.begin():
        await bind_workspace(session, workspace.id)
        ids = [uuid.UUID(first), uuid.UUID(second), uuid.UUID(idle)]
        with count_statements(database) as statements:
            recent = await purchase_service.recent_for_contacts(session, _auth(workspace), ids, 3)
            shaped = {
                contact_id: [purchase_service.to_schema(row) for row in rows]
                for contact_id, rows in recent.items()
            }
    assert len(statements) == 1
    assert shaped[uuid.UUID(idle)] == []
    newest = shaped[uuid.UUID(first)]
    assert [format(p.total.amount, "f") for p in newest] == ["1.00", "3.00", "5.00"]
    assert all(len(p.items) == 1 and len(p.external_ids) == 2 for p in newest)
    assert all(p.contact_id == uuid.UUID(first) for p in newest)
    assert len(shaped[uuid.UUID(second)]) == 3


async def test_merge_repoints_purchases_and_refunds(
    client: httpx.AsyncClient, workspace: WorkspaceHandle, owner_engine: AsyncEngine
) -> None:
    survivor = await new_contact(client, workspace, "Survivor")
    absorbed = await new_contact(client, workspace, "Absorbed")
    kept = await simple_purchase(client, workspace, survivor, thb("10.00"))
    moved = await simple_purchase(
        client, workspace, absorbed, thb("20.00"), external_ids={"pos": "M-1"}
    )
    assert (await refund(client, workspace, moved["id"], amount=thb("5.00"))).status_code == 201

    response = await client.post(
        f"/v1/contacts/{survivor}/merge", headers=workspace.headers, json={"absorb": [absorbed]}
    )
    assert response.status_code == 200, response.text

    after = await client.get(f"/v1/purchases/{moved['id']}", headers=workspace.headers)
    assert after.json()["contact_id"] == survivor
    # A new version: caches of the old buyer go stale.
    assert after.json()["version"] == moved["version"] + 2
    listed = await client.get(
        "/v1/purchases", headers=workspace.headers, params={"contact_id": survivor}
    )
    assert {row["id"] for row in listed.json()["data"]} == {kept["id"], moved["id"]}
    refunds = await client.get(f"/v1/purchases/{moved['id']}/refunds", headers=workspace.headers)
    assert [row["contact_id"] for row in refunds.json()["data"]] == [survivor]
    async with owner_engine.connect() as connection:
        left = await connection.execute(
            text(
                "SELECT (SELECT count(*) FROM purchases WHERE contact_id = :c) "
                "+ (SELECT count(*) FROM purchase_refunds WHERE contact_id = :c)"
            ),
            {"c": absorbed},
        )
        assert left.scalar_one() == 0
    # A POS retrying with the old buyer gets the stored purchase; a new one is refused.
    retried = await post_purchase(
        client,
        workspace,
        {
            "contact_id": absorbed,
            "occurred_at": moved["occurred_at"],
            "total": thb("20.00"),
            "external_ids": {"pos": "M-1"},
        },
    )
    assert retried.status_code == 200
    assert retried.json()["contact_id"] == survivor
    fresh = await post_purchase(
        client,
        workspace,
        {"contact_id": absorbed, "occurred_at": moved["occurred_at"], "total": thb("1.00")},
    )
    assert assert_problem(fresh, 404, "not_found")["merged_into"] == survivor
