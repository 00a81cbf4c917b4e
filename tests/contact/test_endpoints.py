from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db.session import Database
from tests.account.test_endpoints import events
from tests.conftest import WorkspaceHandle
from tests.test_conventions import assert_problem
from tests.test_graphql import count_statements

SOMCHAI = {
    "given_name": "สมชาย",
    "family_name": "ใจดี",
    "emails": [{"email": "Somchai.J@Example.co.th"}],
    "phones": [{"number": "081-234-5678"}],
    "lifecycle_stage": "customer",
    "tags": ["vip", "bangkok"],
    "external_ids": {"shopify": "7781"},
    "addresses": [
        {
            "line1": "99/1 ถนนสุขุมวิท",
            "subdistrict": "คลองเตยเหนือ",
            "district": "วัฒนา",
            "province": "กรุงเทพมหานคร",
            "postal_code": "10110",
            "country": "th",
        }
    ],
}


async def create(client: httpx.AsyncClient, ws: WorkspaceHandle, **body: Any) -> httpx.Response:
    return await client.post("/v1/contacts", headers=ws.headers, json=body)


async def test_create_normalises_and_derives(
    client: httpx.AsyncClient, workspace: WorkspaceHandle
) -> None:
    response = await create(client, workspace, **SOMCHAI)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["display_name"] == "สมชาย ใจดี"
    assert body["emails"] == [{"email": "somchai.j@example.co.th", "primary": True}]
    assert body["phones"] == [{"number": "+66812345678", "type": "mobile", "primary": True}]
    assert body["addresses"][0]["country"] == "TH"
    assert body["external_ids"] == {"shopify": "7781"}
    assert body["version"] == 1
    assert response.headers["location"] == f"/v1/contacts/{body['id']}"
    assert response.headers["etag"] == '"1"'
    fetched = await client.get(response.headers["location"], headers=workspace.headers)
    assert fetched.json() == body


async def test_vietnamese_names_are_written_family_first(
    client: httpx.AsyncClient, workspace: WorkspaceHandle
) -> None:
    response = await create(
        client,
        workspace,
        given_name="Văn An",
        family_name="Nguyễn",
        locale="vi-VN",
        phones=[{"number": "+84 912 345 678", "type": "work"}],
    )
    body = response.json()
    assert body["display_name"] == "Nguyễn Văn An"
    assert body["phones"][0]["number"] == "+84912345678"


async def test_duplicate_email_is_409_naming_the_existing_contact(
    client: httpx.AsyncClient, workspace: WorkspaceHandle
) -> None:
    first = (await create(client, workspace, **SOMCHAI)).json()
    response = await create(
        client, workspace, given_name="Another", emails=[{"email": "SOMCHAI.J@example.CO.TH"}]
    )
    problem = assert_problem(response, 409, "duplicate")
    assert problem["existing_id"] == first["id"]
    assert problem["errors"][0]["field"] == "emails.0.email"  # type: ignore[index]
    response = await create(client, workspace, given_name="Other", external_ids={"shopify": "7781"})
    assert assert_problem(response, 409, "duplicate")["existing_id"] == first["id"]


async def test_the_same_email_in_another_workspace_is_fine(
    client: httpx.AsyncClient, make_workspace: Any
) -> None:
    first, second = await make_workspace(), await make_workspace()
    assert (await create(client, first, **SOMCHAI)).status_code == 201
    assert (await create(client, second, **SOMCHAI)).status_code == 201


async def test_concurrent_creates_with_one_email_let_exactly_one_win(
    app: FastAPI, workspace: WorkspaceHandle
) -> None:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        responses = await asyncio.gather(
            *[
                create(
                    client,
                    workspace,
                    given_name=f"Racer {i}",
                    emails=[{"email": "race@example.com"}],
                )
                for i in range(8)
            ]
        )
        statuses = sorted(response.status_code for response in responses)
        assert statuses == [201] + [409] * 7, [r.text for r in responses]
        winner = next(r.json()["id"] for r in responses if r.status_code == 201)
        for response in responses:
            if response.status_code == 409:
                assert response.json()["existing_id"] == winner
        listing = await client.get(
            "/v1/contacts", headers=workspace.headers, params={"email": "race@example.com"}
        )
        assert [item["id"] for item in listing.json()["data"]] == [winner]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"given_name": "a", "emails": [{"email": "not-an-email"}]}, "emails.0.email"),
        ({"given_name": "a", "phones": [{"number": "12"}]}, "phones.0.number"),
        ({"given_name": "a", "phones": [{"number": "hello"}]}, "phones.0.number"),
        ({"given_name": "x" * 201}, "given_name"),
        ({"given_name": "a", "lifecycle_stage": "vip"}, "lifecycle_stage"),
        ({"given_name": "a", "tags": [f"t{i}" for i in range(51)]}, "tags"),
        ({"given_name": "a", "tags": ["x" * 65]}, "tags.0"),
        ({"given_name": "a", "attributes": {"blob": "x" * 20000}}, "attributes"),
        ({"given_name": "a", "locale": "xx-nonsense"}, "locale"),
        ({"given_name": "a", "time_zone": "Asia/Atlantis"}, "time_zone"),
        ({"given_name": "a", "birthday": "1850-01-01"}, "birthday"),
        ({"given_name": "a", "birthday": "not a date"}, "birthday"),
        ({"given_name": "a", "id": "01a203ac-1022-7102-9d8c-88190aa27e2e"}, "id"),
        ({"given_name": "a", "version": 3}, "version"),
        ({"given_name": "a", "created_at": "2024-01-01T00:00:00Z"}, "created_at"),
        ({"given_name": "a", "favourite_colour": "red"}, "favourite_colour"),
        ({"given_name": "a", "account_id": "01a203ac-1022-7102-9d8c-88190aa27e2e"}, "account_id"),
        ({"given_name": "a", "addresses": [{"country": "XX"}]}, "addresses.0.country"),
        ({"given_name": "a", "external_ids": {"bad system!": "1"}}, "external_ids.bad system!"),
        ({}, "body"),
    ],
)
async def test_invalid_input_is_422_naming_the_field_and_writes_nothing(
    client: httpx.AsyncClient, workspace: WorkspaceHandle, body: dict[str, Any], field: str
) -> None:
    response = await create(client, workspace, **body)
    problem = assert_problem(response, 422, "validation_error")
    fields = [error["field"] for error in problem["errors"]]  # type: ignore[attr-defined]
    assert any(f == field or f.startswith(f"{field}.") for f in fields), fields
    listing = await client.get("/v1/contacts", headers=workspace.headers)
    assert listing.json()["data"] == []


async def test_naive_timestamp_filter_is_422(
    client: httpx.AsyncClient, workspace: WorkspaceHandle
) -> None:
    response = await client.get(
        "/v1/contacts", headers=workspace.headers, params={"created_after": "2026-01-01T00:00:00"}
    )
    assert_problem(response, 422, "validation_error")


class TestUpdate:
    async def test_merge_patch_semantics(
        self, client: httpx.AsyncClient, workspace: WorkspaceHandle
    ) -> None:
        created = (
            await create(
                client,
                workspace,
                **SOMCHAI,
                attributes={"tier": "gold", "prefs": {"sms": True, "line": True}},
            )
        ).json()
        url = f"/v1/contacts/{created['id']}"
        response = await client.patch(
            url,
            headers={**workspace.headers, "If-Match": '"1"'},
            json={
                "lifecycle_stage": "advocate",
                "attributes": {"prefs": {"sms": None}, "vip_since": 2024},
                "external_ids": {"shopify": None, "pos": "C-9"},
                "phones": [{"number": "0912 345 678", "type": "home"}],
                "birthday": None,
            },
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["lifecycle_stage"] == "advocate"
        assert body["attributes"] == {"tier": "gold", "prefs": {"line": True}, "vip_since": 2024}
        assert body["external_ids"] == {"pos": "C-9"}
        assert body["phones"] == [{"number": "+66912345678", "type": "home", "primary": True}]
        assert body["emails"] == created["emails"]  # absent: unchanged
        assert body["tags"] == created["tags"]
        assert body["version"] == 2
        assert response.headers["etag"] == '"2"'
        by_old_id = await client.get(
            "/v1/contacts/by-external-id/shopify/7781", headers=workspace.headers
        )
        assert_problem(by_old_id, 404, "not_found")
        by_new_id = await client.get(
            "/v1/contacts/by-external-id/pos/C-9", headers=workspace.headers
        )
        assert by_new_id.json()["id"] == created["id"]

    async def test_name_change_rederives_a_derived_display_name(
        self, client: httpx.AsyncClient, workspace: WorkspaceHandle
    ) -> None:
        created = (await create(client, workspace, given_name="Anan", family_name="Sook")).json()
        url = f"/v1/contacts/{created['id']}"
        body = (
            await client.patch(url, headers=workspace.headers, json={"family_name": "Suk"})
        ).json()
        assert body["display_name"] == "Anan Suk"
        body = (
            await client.patch(url, headers=workspace.headers, json={"display_name": "Khun Anan"})
        ).json()
        assert body["display_name"] == "Khun Anan"
        body = (
            await client.patch(url, headers=workspace.headers, json={"given_name": "Ananda"})
        ).json()
        assert body["display_name"] == "Khun Anan"  # chosen, so kept
        body = (
            await client.patch(url, headers=workspace.headers, json={"display_name": None})
        ).json()
        assert body["display_name"] == "Ananda Suk"

    async def test_stale_if_match_and_read_only_fields(
        self, client: httpx.AsyncClient, workspace: WorkspaceHandle
    ) -> None:
        created = (await create(client, workspace, given_name="Mali")).json()
        url = f"/v1/contacts/{created['id']}"
        await client.patch(url, headers=workspace.headers, json={"tags": ["a"]})
        response = await client.patch(
            url, headers={**workspace.headers, "If-Match": '"1"'}, json={"tags": ["b"]}
        )
        assert_problem(response, 412, "precondition_failed")
        for patch in (
            {"id": created["id"]},
            {"version": 9},
            {"updated_at": "2020-01-01T00:00:00Z"},
            {"emails": None},
            {"lifecycle_stage": None},
        ):
            assert_problem(
                await client.patch(url, headers=workspace.headers, json=patch),
                422,
                "validation_error",
            )
        current = (await client.get(url, headers=workspace.headers)).json()
        assert current["tags"] == ["a"]
        assert current["version"] == 2

    async def test_taking_another_contacts_email_is_409(
        self, client: httpx.AsyncClient, workspace: WorkspaceHandle
    ) -> None:
        first = (await create(client, workspace, emails=[{"email": "a@example.com"}])).json()
        second = (await create(client, workspace, emails=[{"email": "b@example.com"}])).json()
        response = await client.patch(
            f"/v1/contacts/{second['id']}",
            headers=workspace.headers,
            json={"emails": [{"email": "A@example.com"}]},
        )
        assert assert_problem(response, 409, "duplicate")["existing_id"] == first["id"]
        # Moving one's own e-mails around is fine.
        response = await client.patch(
            f"/v1/contacts/{first['id']}",
            headers=workspace.headers,
            json={
                "emails": [
                    {"email": "new@example.com"},
                    {"email": "a@example.com", "primary": True},
                ]
            },
        )
        assert response.status_code == 200, response.text
        assert response.json()["emails"][1] == {"email": "a@example.com", "primary": True}


async def test_delete_then_404_and_events(
    client: httpx.AsyncClient, workspace: WorkspaceHandle, owner_engine: AsyncEngine
) -> None:
    created = (await create(client, workspace, **SOMCHAI)).json()
    url = f"/v1/contacts/{created['id']}"
    await client.patch(url, headers=workspace.headers, json={"tags": ["moved"]})
    assert (await client.delete(url, headers=workspace.headers)).status_code == 204
    assert_problem(await client.get(url, headers=workspace.headers), 404, "not_found")
    # The e-mail is free again.
    assert (await create(client, workspace, **SOMCHAI)).status_code == 201
    rows = await events(owner_engine, workspace, created["id"])
    assert [(row.type, row.changed_fields) for row in rows] == [
        ("contact.created", []),
        ("contact.updated", ["tags"]),
        ("contact.deleted", []),
    ]


async def test_an_update_answers_and_announces_the_time_it_stored(
    client: httpx.AsyncClient, workspace: WorkspaceHandle, owner_engine: AsyncEngine
) -> None:
    created = (await create(client, workspace, **SOMCHAI)).json()
    url = f"/v1/contacts/{created['id']}"
    patched = await client.patch(url, headers=workspace.headers, json={"tags": ["vip"]})
    assert patched.status_code == 200
    stored = (await client.get(url, headers=workspace.headers)).json()["updated_at"]
    assert patched.json()["updated_at"] == stored
    assert stored > created["updated_at"]
    [announced] = [
        row.data for row in await events(owner_engine, workspace, created["id"])
        if row.type == "contact.updated"
    ]  # fmt: skip
    assert announced["updated_at"] == stored


async def test_another_workspaces_contact_is_404(
    client: httpx.AsyncClient, make_workspace: Any
) -> None:
    owner, stranger = await make_workspace(), await make_workspace()
    created = (await create(client, owner, **SOMCHAI)).json()
    url = f"/v1/contacts/{created['id']}"
    for method in ("GET", "PATCH", "DELETE"):
        response = await client.request(
            method, url, headers=stranger.headers, json={"tags": []} if method == "PATCH" else None
        )
        assert_problem(response, 404, "not_found")
    lookup = await client.get("/v1/contacts/by-external-id/shopify/7781", headers=stranger.headers)
    assert_problem(lookup, 404, "not_found")


async def test_scopes(client: httpx.AsyncClient, workspace: WorkspaceHandle) -> None:
    reader = await workspace.key("contacts:read")
    assert (await client.get("/v1/contacts", headers=reader)).status_code == 200
    response = await client.post("/v1/contacts", headers=reader, json={"given_name": "x"})
    assert_problem(response, 403, "forbidden")
    other = await workspace.key("cases:read")
    assert_problem(await client.get("/v1/contacts", headers=other), 403, "forbidden")


async def test_reading_a_contact_is_one_statement_with_its_emails_phones_and_ids(
    client: httpx.AsyncClient, workspace: WorkspaceHandle, database: Database
) -> None:
    created = await client.post(
        "/v1/contacts",
        headers=workspace.headers,
        json={
            "given_name": "Somchai",
            "emails": [{"email": "b@example.co.th"}, {"email": "a@example.co.th", "primary": True}],
            "phones": [{"number": "+66812345678"}, {"number": "+66898765432", "type": "work"}],
            "external_ids": {"pos": "P-1", "line": "U-9"},
        },
    )
    assert created.status_code == 201, created.text
    await client.get(f"/v1/contacts/{created.json()['id']}", headers=workspace.headers)  # warm

    with count_statements(database) as statements:
        read = await client.get(f"/v1/contacts/{created.json()['id']}", headers=workspace.headers)

    assert read.status_code == 200
    body = read.json()
    assert body == created.json()  # e-mails, phones and ids in their order, as written
    # One statement binds the workspace and reads the contact with everything it shows,
    # outside an explicit transaction (no BEGIN or COMMIT round trips either). The API key is
    # looked up too when the key cache is cold (another test's app may have set its TTL).
    reads = [s for s in statements if "crm_find_api_key" not in s]
    assert len(reads) == 1, statements
    assert "crm_contact_read" in reads[0]


async def test_the_database_built_document_is_the_api_schema_on_every_field(
    client: httpx.AsyncClient, workspace: WorkspaceHandle, owner_engine: AsyncEngine
) -> None:
    """GET by id returns JSON built by PostgreSQL; every other read serialises the pydantic
    schema. Both must give the same document, whatever the fields hold."""
    account = await client.post(
        "/v1/accounts", headers=workspace.headers, json={"name": "Siam Retail"}
    )
    assert account.status_code == 201, account.text
    full = await create(
        client,
        workspace,
        given_name='Nguyễn "Văn" \\ A',
        family_name="ใจดี\ttab",
        display_name="Anh \u200b Nguyễn 😀",
        emails=[{"email": "b@example.vn"}, {"email": "a@example.vn", "primary": True}],
        phones=[
            {"number": "+84912345678", "type": "home"},
            {"number": "+66812345678", "type": "work", "primary": True},
        ],
        locale="vi-VN",
        time_zone="Asia/Ho_Chi_Minh",
        birthday="1904-02-29",
        addresses=[SOMCHAI["addresses"][0], {"line1": "12 Lê Lợi", "country": "vn"}],
        lifecycle_stage="advocate",
        account_id=account.json()["id"],
        owner_id="rep-7",
        tags=["vip", "ลูกค้าประจำ"],
        attributes={
            "score": 1.5, "visits": 12, "big": 12345678901234567, "flag": False,
            "none": None, "nested": {"z": 1, "a": [True, "x"]}, "ไทย": "ค่า",
        },
        external_ids={"zalo": "Z-1", "Line": "U-9", "pos": "P-1", "a.b": "1", "A": "2"},
        acquisition_source="referral",
        acquisition_channel="line",
    )  # fmt: skip
    assert full.status_code == 201, full.text
    bare = await create(client, workspace, given_name="Bare")
    assert bare.status_code == 201, bare.text
    # A time with no fractional second: Python writes none, and so must the database.
    async with owner_engine.begin() as connection:
        await connection.execute(
            text("UPDATE contacts SET updated_at = '2026-01-02T03:04:05Z' WHERE id = :id"),
            {"id": bare.json()["id"]},
        )

    listed = await client.get("/v1/contacts?limit=200", headers=workspace.headers)
    assert listed.status_code == 200
    by_id = {item["id"]: item for item in listed.json()["data"]}
    for created in (full, bare):
        read = await client.get(f"/v1/contacts/{created.json()['id']}", headers=workspace.headers)
        assert read.status_code == 200, read.text
        assert read.json() == by_id[created.json()["id"]]
        assert list(read.json()) == list(by_id[created.json()["id"]])  # the same key order
        assert read.headers["etag"] == f'"{read.json()["version"]}"'
    assert by_id[bare.json()["id"]]["updated_at"] == "2026-01-02T03:04:05Z"
    assert list(by_id[full.json()["id"]]["external_ids"]) == ["A", "Line", "a.b", "pos", "zalo"]


async def test_reading_a_contact_answers_304_and_404_without_a_session(
    client: httpx.AsyncClient, workspace: WorkspaceHandle
) -> None:
    created = await create(client, workspace, given_name="Etag")
    url = f"/v1/contacts/{created.json()['id']}"
    first = await client.get(url, headers=workspace.headers)
    cached = await client.get(
        url, headers={**workspace.headers, "If-None-Match": first.headers["etag"]}
    )
    assert cached.status_code == 304
    assert cached.content == b""
    assert cached.headers["etag"] == first.headers["etag"]
    assert_problem(
        await client.get(
            "/v1/contacts/01890000-0000-7000-8000-000000000000", headers=workspace.headers
        ),
        404,
        "not_found",
    )
    malformed = await client.get("/v1/contacts/not-a-uuid", headers=workspace.headers)
    assert malformed.status_code == 422
    assert_problem(await client.get(url), 401, "unauthenticated")
    other = await workspace.key("cases:read")
    assert_problem(await client.get(url, headers=other), 403, "forbidden")
