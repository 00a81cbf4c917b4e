from __future__ import annotations

import asyncio
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import WorkspaceHandle
from tests.sales.helpers import count_rows, events, fields_of, thb
from tests.test_conventions import assert_problem


async def new_lead(client: httpx.AsyncClient, ws: WorkspaceHandle, **body: Any) -> dict[str, Any]:
    body.setdefault("name", "Nguyễn Văn An")
    response = await client.post("/v1/leads", headers=ws.headers, json=body)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


async def convert(
    client: httpx.AsyncClient, ws: WorkspaceHandle, lead_id: str, **body: Any
) -> httpx.Response:
    return await client.post(f"/v1/leads/{lead_id}/convert", headers=ws.headers, json=body)


async def test_create_update_and_disqualify(
    client: httpx.AsyncClient, workspace: WorkspaceHandle, owner_engine: AsyncEngine
) -> None:
    lead = await new_lead(
        client,
        workspace,
        company="Saigon Trading",
        email=" An.Nguyen@SaigonTrading.vn ",
        phone="081-234-5678",
        source="trade fair",
        score=70,
        owner="sales.hoa",
    )
    assert lead["email"] == "an.nguyen@saigontrading.vn"
    assert lead["phone"] == "+66812345678"
    assert lead["status"] == "new"
    url = f"/v1/leads/{lead['id']}"
    no_reason = await client.patch(url, headers=workspace.headers, json={"status": "disqualified"})
    assert fields_of(assert_problem(no_reason, 422, "validation_error")) == ["disqualified_reason"]  # type: ignore[arg-type]
    disqualified = await client.patch(
        url,
        headers={**workspace.headers, "If-Match": '"1"'},
        json={"status": "disqualified", "disqualified_reason": "No budget this year"},
    )
    assert disqualified.status_code == 200, disqualified.text
    assert disqualified.json()["version"] == 2
    requalified = await client.patch(url, headers=workspace.headers, json={"status": "working"})
    assert requalified.json()["disqualified_reason"] is None
    for bad, field in (
        ({"score": 101}, "score"),
        ({"email": "not-an-email"}, "email"),
        ({"phone": "12"}, "phone"),
        ({"status": "converted"}, "status"),
        ({"name": None}, "name"),
    ):
        response = await client.patch(url, headers=workspace.headers, json=bad)
        assert fields_of(assert_problem(response, 422, "validation_error")) == [field], bad  # type: ignore[arg-type]
    listed = await client.get("/v1/leads", headers=workspace.headers, params={"status": "working"})
    assert [item["id"] for item in listed.json()["data"]] == [lead["id"]]
    types = [row.type for row in await events(owner_engine, workspace, "lead")]
    assert types == ["lead.created", "lead.updated", "lead.updated"]


async def test_convert_creates_contact_account_and_opportunity_in_one_go(
    client: httpx.AsyncClient, workspace: WorkspaceHandle, owner_engine: AsyncEngine
) -> None:
    lead = await new_lead(
        client,
        workspace,
        company="Saigon Trading",
        email="an@saigontrading.vn",
        source="web form",
        owner="sales.hoa",
    )
    response = await convert(
        client,
        workspace,
        lead["id"],
        opportunity={"amount": thb("50000.00"), "expected_close_date": "2099-03-31"},
    )
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["contact_created"]
    assert result["account_created"]
    assert result["lead"]["status"] == "converted"
    assert result["lead"]["converted_contact_id"] == result["contact_id"]
    contact = (
        await client.get(f"/v1/contacts/{result['contact_id']}", headers=workspace.headers)
    ).json()
    assert contact["account_id"] == result["account_id"]
    assert [e["email"] for e in contact["emails"]] == ["an@saigontrading.vn"]
    account = (
        await client.get(f"/v1/accounts/{result['account_id']}", headers=workspace.headers)
    ).json()
    assert (account["name"], account["domain"]) == ("Saigon Trading", "saigontrading.vn")
    deal = (
        await client.get(f"/v1/opportunities/{result['opportunity_id']}", headers=workspace.headers)
    ).json()
    assert (deal["name"], deal["owner"], deal["source"]) == (
        "Saigon Trading", "sales.hoa", "web form",
    )  # fmt: skip
    assert deal["contact_id"] == result["contact_id"]
    again = await convert(client, workspace, lead["id"])
    assert fields_of(assert_problem(again, 409, "conflict")) == ["status"]  # type: ignore[arg-type]
    assert [row.type for row in await events(owner_engine, workspace, "lead")][
        -1
    ] == "lead.converted"


async def test_convert_matches_existing_contact_and_account(
    client: httpx.AsyncClient, workspace: WorkspaceHandle, owner_engine: AsyncEngine
) -> None:
    existing = await client.post(
        "/v1/contacts",
        headers=workspace.headers,
        json={"given_name": "Somchai", "emails": [{"email": "somchai@example.co.th"}]},
    )
    account = await client.post(
        "/v1/accounts", headers=workspace.headers, json={"name": "Bangkok Foods"}
    )
    lead = await new_lead(
        client, workspace, name="Somchai", email="SOMCHAI@example.co.th", company="bangkok foods"
    )
    result = (await convert(client, workspace, lead["id"])).json()
    assert result["contact_id"] == existing.json()["id"]
    assert result["account_id"] == account.json()["id"]
    assert not result["contact_created"]
    assert not result["account_created"]
    assert result["opportunity_id"] is None
    assert await count_rows(owner_engine, workspace, "contacts") == 1
    # A public mail domain says nothing about the company; no company, no account.
    gmail = await new_lead(client, workspace, name="Lan", email="lan@gmail.com")
    solo = (await convert(client, workspace, gmail["id"])).json()
    assert solo["account_id"] is None
    assert solo["contact_created"]


async def test_refused_conversions_write_nothing(
    client: httpx.AsyncClient, workspace: WorkspaceHandle, owner_engine: AsyncEngine
) -> None:
    disqualified = await new_lead(
        client, workspace, company="Nope Ltd", status="disqualified", disqualified_reason="Spam"
    )
    response = await convert(client, workspace, disqualified["id"])
    assert fields_of(assert_problem(response, 409, "conflict")) == ["status"]  # type: ignore[arg-type]
    lead = await new_lead(client, workspace, company="Half Done Co", email="x@halfdone.example")
    # The opportunity is refused (negative amount) after the contact and account were made:
    # the whole conversion rolls back.
    failed = await convert(
        client,
        workspace,
        lead["id"],
        opportunity={"amount": thb("-5.00"), "expected_close_date": "2099-01-01"},
    )
    assert failed.status_code == 422, failed.text
    for table in ("contacts", "accounts", "opportunities"):
        assert await count_rows(owner_engine, workspace, table) == 0
    still = (await client.get(f"/v1/leads/{lead['id']}", headers=workspace.headers)).json()
    assert still["status"] == "new"


async def test_concurrent_conversions_convert_once(
    client: httpx.AsyncClient, workspace: WorkspaceHandle, owner_engine: AsyncEngine
) -> None:
    lead = await new_lead(client, workspace, email="twice@example.org")
    first, second = await asyncio.gather(
        convert(client, workspace, lead["id"]), convert(client, workspace, lead["id"])
    )
    assert sorted([first.status_code, second.status_code]) == [200, 409]
    assert await count_rows(owner_engine, workspace, "contacts") == 1
