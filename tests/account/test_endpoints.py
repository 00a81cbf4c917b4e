from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import WorkspaceHandle
from tests.test_conventions import assert_problem

CP = {
    "name": "เครือเจริญโภคภัณฑ์",
    "type": "distributor",
    "domain": "https://WWW.CPGroup.co.th/th/about",
    "industry": "Agribusiness",
    "size": "enterprise",
    "owner_id": "user-7",
    "attributes": {"tier": "gold", "credit": {"limit": 500000, "days": 30}},
    "external_ids": {"sap": "100234"},
}
MISSING = "01a203ac-1022-7102-9d8c-88190aa27e2e"


async def create(client: httpx.AsyncClient, ws: WorkspaceHandle, **body: Any) -> httpx.Response:
    return await client.post("/v1/accounts", headers=ws.headers, json=body)


async def created(client: httpx.AsyncClient, ws: WorkspaceHandle, **body: Any) -> dict[str, Any]:
    response = await create(client, ws, **body)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


async def patch(
    client: httpx.AsyncClient, ws: WorkspaceHandle, account_id: str, **body: Any
) -> httpx.Response:
    return await client.patch(f"/v1/accounts/{account_id}", headers=ws.headers, json=body)


async def names(client: httpx.AsyncClient, ws: WorkspaceHandle, **params: Any) -> list[str]:
    response = await client.get("/v1/accounts", headers=ws.headers, params=params)
    assert response.status_code == 200, response.text
    return [item["name"] for item in response.json()["data"]]


async def events(engine: AsyncEngine, ws: WorkspaceHandle, aggregate_id: str) -> list[Any]:
    async with engine.connect() as connection:
        rows = await connection.execute(
            text(
                "SELECT type, changed_fields, data FROM outbox_events "
                "WHERE workspace_id = :w AND aggregate_id = :id ORDER BY id"
            ),
            {"w": ws.id, "id": aggregate_id},
        )
        return list(rows.all())


def fields_of(problem: dict[str, Any]) -> list[str]:
    return [error["field"] for error in problem["errors"]]


# -- create, read, change, delete ------------------------------------------------------------


async def test_create_normalises_and_reads_back_with_etags(
    client: httpx.AsyncClient, workspace: WorkspaceHandle
) -> None:
    response = await create(client, workspace, **CP)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["domain"] == "cpgroup.co.th"
    assert body["type"] == "distributor"
    assert body["external_ids"] == {"sap": "100234"}
    assert body["parent_account_id"] is None
    assert body["version"] == 1
    assert response.headers["location"] == f"/v1/accounts/{body['id']}"
    assert response.headers["etag"] == '"1"'
    fetched = await client.get(response.headers["location"], headers=workspace.headers)
    assert fetched.json() == body
    assert fetched.headers["etag"] == '"1"'
    cached = await client.get(
        response.headers["location"], headers={**workspace.headers, "If-None-Match": '"1"'}
    )
    assert cached.status_code == 304
    assert cached.content == b""
    minimal = await created(client, workspace, name="  Corner Shop  ")
    assert minimal["name"] == "Corner Shop"
    assert minimal["type"] == "customer"
    assert minimal["domain"] is None
    assert minimal["attributes"] == {}


async def test_merge_patch_and_if_match(
    client: httpx.AsyncClient, workspace: WorkspaceHandle
) -> None:
    account = await created(client, workspace, **CP)
    url = f"/v1/accounts/{account['id']}"
    response = await client.patch(
        url,
        headers={**workspace.headers, "If-Match": '"1"'},
        json={
            "type": "retailer",
            "industry": None,
            "attributes": {"credit": {"days": None}, "region": "north"},
            "external_ids": {"sap": None, "pos": "B-12"},
        },
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["type"] == "retailer"
    assert body["industry"] is None
    assert body["attributes"] == {"tier": "gold", "credit": {"limit": 500000}, "region": "north"}
    assert body["external_ids"] == {"pos": "B-12"}
    assert body["name"] == account["name"]  # absent: unchanged
    assert body["version"] == 2
    assert response.headers["etag"] == '"2"'

    stale = await client.patch(
        url, headers={**workspace.headers, "If-Match": '"1"'}, json={"name": "Stale"}
    )
    assert_problem(stale, 412, "precondition_failed")
    assert stale.headers["etag"] == '"2"'
    for invalid in (
        {"id": account["id"]},
        {"version": 9},
        {"created_at": "2020-01-01T00:00:00Z"},
        {"search_text": "x"},
        {"name": None},
        {"type": None},
        {"colour": "red"},
    ):
        assert_problem(await patch(client, workspace, account["id"], **invalid), 422,
                       "validation_error")  # fmt: skip

    # A patch that changes nothing is not a new version.
    same = await patch(client, workspace, account["id"], type="retailer")
    assert same.json()["version"] == 2
    # Only an external id changes: still a new version, so caches notice.
    moved = await patch(client, workspace, account["id"], external_ids={"pos": "B-13"})
    assert moved.json()["version"] == 3
    # null for a whole JSON member empties it.
    cleared = await patch(client, workspace, account["id"], attributes=None, external_ids=None)
    assert cleared.json()["attributes"] == {}
    assert cleared.json()["external_ids"] == {}
    current = (await client.get(url, headers=workspace.headers)).json()
    assert current == cleared.json()


async def test_delete_with_if_match_then_404(
    client: httpx.AsyncClient, workspace: WorkspaceHandle
) -> None:
    account = await created(client, workspace, **CP)
    url = f"/v1/accounts/{account['id']}"
    await patch(client, workspace, account["id"], size="large")
    stale = await client.delete(url, headers={**workspace.headers, "If-Match": '"1"'})
    assert_problem(stale, 412, "precondition_failed")
    response = await client.delete(url, headers={**workspace.headers, "If-Match": '"2"'})
    assert response.status_code == 204
    assert_problem(await client.get(url, headers=workspace.headers), 404, "not_found")
    assert_problem(await client.delete(url, headers=workspace.headers), 404, "not_found")
    # The domain and the external id are free again.
    assert (await create(client, workspace, **CP)).status_code == 201


async def test_outbox_events(
    client: httpx.AsyncClient, workspace: WorkspaceHandle, owner_engine: AsyncEngine
) -> None:
    account = await created(client, workspace, **CP)
    await patch(client, workspace, account["id"], name="CP Group", attributes={"tier": "gold"})
    await client.delete(f"/v1/accounts/{account['id']}", headers=workspace.headers)
    rows = await events(owner_engine, workspace, account["id"])
    assert [(row.type, row.changed_fields) for row in rows] == [
        ("account.created", []),
        ("account.updated", ["name"]),
        ("account.deleted", []),
    ]
    assert rows[0].data["domain"] == "cpgroup.co.th"
    assert rows[1].data["name"] == "CP Group"
    assert rows[1].data["version"] == 2
    assert rows[2].data == {"id": account["id"]}


# -- domains and external ids ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("Example.COM", "example.com"),
        ("www.example.com", "example.com"),
        ("https://www.example.com:8443/path?q=1#top", "example.com"),
        ("http://shop.example.co.th/", "shop.example.co.th"),
        ("example.com.", "example.com"),
        ("ไทย.ไทย", "ไทย.ไทย"),
        ("xn--o3cw4h.xn--o3cw4h", "ไทย.ไทย"),
        ("Bücher.de", "bücher.de"),
        ("www.com", "www.com"),
    ],
)
async def test_domain_is_normalised(
    client: httpx.AsyncClient, workspace: WorkspaceHandle, given: str, stored: str
) -> None:
    account = await created(client, workspace, name="Acme", domain=given)
    assert account["domain"] == stored
    assert await names(client, workspace, domain=given) == ["Acme"]
    assert await names(client, workspace, domain=stored) == ["Acme"]


async def test_duplicate_domain_is_409_naming_the_existing_account(
    client: httpx.AsyncClient, workspace: WorkspaceHandle
) -> None:
    first = await created(client, workspace, name="Acme", domain="acme.co.th")
    response = await create(client, workspace, name="Acme again", domain="https://www.ACME.co.th")
    problem = assert_problem(response, 409, "duplicate")
    assert problem["existing_id"] == first["id"]
    assert fields_of(problem) == ["domain"]
    second = await created(client, workspace, name="Other", domain="other.co.th")
    response = await patch(client, workspace, second["id"], domain="acme.co.th")
    assert assert_problem(response, 409, "duplicate")["existing_id"] == first["id"]
    # Keeping one's own domain is no conflict; neither is having none.
    assert (await patch(client, workspace, first["id"], domain="www.acme.co.th")).status_code == 200
    cleared = await patch(client, workspace, first["id"], domain=None)
    assert cleared.json()["domain"] is None
    assert (await patch(client, workspace, second["id"], domain="acme.co.th")).status_code == 200
    assert (await create(client, workspace, name="No domain 1")).status_code == 201
    assert (await create(client, workspace, name="No domain 2")).status_code == 201


async def test_concurrent_creates_with_one_domain_let_exactly_one_win(
    app: FastAPI, workspace: WorkspaceHandle
) -> None:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        responses = await asyncio.gather(
            *[create(client, workspace, name=f"Racer {i}", domain="race.example") for i in range(8)]
        )
        statuses = sorted(response.status_code for response in responses)
        assert statuses == [201] + [409] * 7, [r.text for r in responses]
        winner = next(r.json()["id"] for r in responses if r.status_code == 201)
        for response in responses:
            if response.status_code == 409:
                assert response.json()["existing_id"] == winner


async def test_the_same_domain_in_another_workspace_is_fine(
    client: httpx.AsyncClient, make_workspace: Any
) -> None:
    first, second = await make_workspace(), await make_workspace()
    assert (await create(client, first, **CP)).status_code == 201
    assert (await create(client, second, **CP)).status_code == 201


async def test_external_id_lookup_and_409(
    client: httpx.AsyncClient, workspace: WorkspaceHandle
) -> None:
    account = await created(client, workspace, name="Acme", external_ids={"sap": "1", "pos": "A"})
    url = "/v1/accounts/by-external-id/pos/A"
    found = await client.get(url, headers=workspace.headers)
    assert found.status_code == 200
    assert found.json() == account
    assert found.headers["etag"] == '"1"'
    cached = await client.get(url, headers={**workspace.headers, "If-None-Match": '"1"'})
    assert cached.status_code == 304
    missing = await client.get("/v1/accounts/by-external-id/pos/B", headers=workspace.headers)
    assert_problem(missing, 404, "not_found")

    response = await create(client, workspace, name="Copy", external_ids={"pos": "A"})
    problem = assert_problem(response, 409, "duplicate")
    assert problem["existing_id"] == account["id"]
    assert fields_of(problem) == ["external_ids.pos"]
    other = await created(client, workspace, name="Other", external_ids={"pos": "B"})
    response = await patch(client, workspace, other["id"], external_ids={"sap": "1"})
    assert assert_problem(response, 409, "duplicate")["existing_id"] == account["id"]
    # The same value under another system is another key.
    assert (
        await patch(client, workspace, other["id"], external_ids={"erp": "1"})
    ).status_code == 200


# -- hierarchy -------------------------------------------------------------------------------


async def test_parent_must_exist_in_the_workspace(
    client: httpx.AsyncClient, make_workspace: Any
) -> None:
    mine, theirs = await make_workspace(), await make_workspace()
    foreign = await created(client, theirs, name="Their parent")
    for parent in (MISSING, foreign["id"]):
        response = await create(client, mine, name="Child", parent_account_id=parent)
        assert fields_of(assert_problem(response, 422, "validation_error")) == ["parent_account_id"]
        child = await created(client, mine, name="Orphan")
        response = await patch(client, mine, child["id"], parent_account_id=parent)
        assert fields_of(assert_problem(response, 422, "validation_error")) == ["parent_account_id"]


async def test_hierarchy_and_cycles(client: httpx.AsyncClient, workspace: WorkspaceHandle) -> None:
    top = await created(client, workspace, name="Group")
    middle = await created(client, workspace, name="Region", parent_account_id=top["id"])
    bottom = await created(client, workspace, name="Branch", parent_account_id=middle["id"])
    assert bottom["parent_account_id"] == middle["id"]
    assert await names(client, workspace, parent_account_id=top["id"]) == ["Region"]

    for account, parent in (
        (top, top),  # itself
        (middle, bottom),  # two levels: Region -> Branch -> Region
        (top, middle),  # two levels
        (top, bottom),  # three levels: Group -> Branch -> Region -> Group
    ):
        response = await patch(client, workspace, account["id"], parent_account_id=parent["id"])
        problem = assert_problem(response, 422, "validation_error")
        assert fields_of(problem) == ["parent_account_id"]
    # Nothing moved.
    for account in (top, middle, bottom):
        current = (
            await client.get(f"/v1/accounts/{account['id']}", headers=workspace.headers)
        ).json()
        assert current["parent_account_id"] == account["parent_account_id"]
        assert current["version"] == 1

    # Moving a branch elsewhere, and then to the top, is fine.
    response = await patch(client, workspace, bottom["id"], parent_account_id=top["id"])
    assert response.json()["parent_account_id"] == top["id"]
    # Now Region has no children, so it can go under Branch.
    response = await patch(client, workspace, middle["id"], parent_account_id=bottom["id"])
    assert response.status_code == 200, response.text
    response = await patch(client, workspace, bottom["id"], parent_account_id=None)
    assert response.json()["parent_account_id"] is None


async def test_concurrent_reparentings_cannot_close_a_loop(
    app: FastAPI, workspace: WorkspaceHandle
) -> None:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        for _ in range(5):
            first = await created(client, workspace, name="First")
            second = await created(client, workspace, name="Second")
            responses = await asyncio.gather(
                patch(client, workspace, first["id"], parent_account_id=second["id"]),
                patch(client, workspace, second["id"], parent_account_id=first["id"]),
            )
            assert sorted(r.status_code for r in responses) == [200, 422], [
                r.text for r in responses
            ]
            parents = [
                (await client.get(f"/v1/accounts/{a['id']}", headers=workspace.headers)).json()[
                    "parent_account_id"
                ]
                for a in (first, second)
            ]
            assert parents.count(None) == 1


async def test_delete_unlinks_contacts_and_children(
    client: httpx.AsyncClient, workspace: WorkspaceHandle, owner_engine: AsyncEngine
) -> None:
    parent = await created(client, workspace, name="Parent")
    child = await created(client, workspace, name="Child", parent_account_id=parent["id"])
    response = await client.post(
        "/v1/contacts",
        headers=workspace.headers,
        json={"given_name": "Mali", "account_id": parent["id"]},
    )
    assert response.status_code == 201, response.text
    contact = response.json()
    assert contact["account_id"] == parent["id"]

    deleted = await client.delete(f"/v1/accounts/{parent['id']}", headers=workspace.headers)
    assert deleted.status_code == 204

    contact_now = await client.get(f"/v1/contacts/{contact['id']}", headers=workspace.headers)
    assert contact_now.json()["account_id"] is None
    assert contact_now.json()["given_name"] == "Mali"
    # A new version: a cached copy is no longer current.
    assert contact_now.json()["version"] == 2
    stale = await client.get(
        f"/v1/contacts/{contact['id']}", headers={**workspace.headers, "If-None-Match": '"1"'}
    )
    assert stale.status_code == 200
    child_now = await client.get(f"/v1/accounts/{child['id']}", headers=workspace.headers)
    assert child_now.json()["parent_account_id"] is None
    assert child_now.json()["version"] == 2

    contact_events = await events(owner_engine, workspace, contact["id"])
    assert [(row.type, row.changed_fields) for row in contact_events][-1] == (
        "contact.updated",
        ["account_id"],
    )
    assert contact_events[-1].data["account_id"] is None
    child_events = await events(owner_engine, workspace, child["id"])
    assert [(row.type, row.changed_fields) for row in child_events][-1] == (
        "account.updated",
        ["parent_account_id"],
    )


# -- the account's contacts ------------------------------------------------------------------


async def test_contacts_of_an_account_page_newest_first(
    client: httpx.AsyncClient, workspace: WorkspaceHandle
) -> None:
    account = await created(client, workspace, name="Acme")
    other = await created(client, workspace, name="Other")
    ids = []
    for index in range(5):
        response = await client.post(
            "/v1/contacts",
            headers=workspace.headers,
            json={
                "given_name": f"Staff {index}",
                "emails": [{"email": f"staff{index}@acme.example"}],
                "account_id": account["id"],
            },
        )
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
    await client.post(
        "/v1/contacts",
        headers=workspace.headers,
        json={"given_name": "Elsewhere", "account_id": other["id"]},
    )
    await client.post("/v1/contacts", headers=workspace.headers, json={"given_name": "Nobody"})

    url = f"/v1/accounts/{account['id']}/contacts"
    seen: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        response = await client.get(url, headers=workspace.headers, params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        assert len(page["data"]) <= 2
        seen += page["data"]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert [item["id"] for item in seen] == list(reversed(ids))
    assert seen[0]["emails"] == [{"email": "staff4@acme.example", "primary": True}]

    # A contact deleted or moved away is no longer listed.
    await client.delete(f"/v1/contacts/{ids[0]}", headers=workspace.headers)
    await client.patch(
        f"/v1/contacts/{ids[1]}", headers=workspace.headers, json={"account_id": other["id"]}
    )
    listed = (await client.get(url, headers=workspace.headers)).json()["data"]
    assert [item["id"] for item in listed] == list(reversed(ids[2:]))

    missing = await client.get(f"/v1/accounts/{MISSING}/contacts", headers=workspace.headers)
    assert_problem(missing, 404, "not_found")
    bad = await client.get(url, headers=workspace.headers, params={"cursor": "WyJ4IiwxLDJd"})
    assert_problem(bad, 400, "invalid_cursor")


# -- listing, search, filters ----------------------------------------------------------------

COMPANIES = [
    {"name": "เครือเจริญโภคภัณฑ์", "domain": "cpgroup.co.th", "type": "distributor"},
    {"name": "บริษัท ไทยเบฟเวอเรจ จำกัด", "domain": "thaibev.com", "type": "supplier"},
    {"name": "Công ty Cổ phần Sữa Việt Nam", "domain": "vinamilk.com.vn", "type": "supplier"},
    {"name": "Tập đoàn Vingroup", "domain": "vingroup.net", "type": "partner", "owner_id": "u1"},
    {"name": "Anchor Retail", "domain": "anchor-retail.example", "type": "retailer"},
]


@pytest.fixture
async def companies(client: httpx.AsyncClient, workspace: WorkspaceHandle) -> dict[str, str]:
    ids = {}
    for company in COMPANIES:
        ids[company["name"]] = (await created(client, workspace, **company))["id"]
    return ids


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("เจริญ", "เครือเจริญโภคภัณฑ์"),  # a substring of a Thai word
        ("โภคภัณฑ์", "เครือเจริญโภคภัณฑ์"),
        ("ไทยเบฟ", "บริษัท ไทยเบฟเวอเรจ จำกัด"),
        ("sua viet nam", "Công ty Cổ phần Sữa Việt Nam"),  # accents left out
        ("SỮA VIỆT", "Công ty Cổ phần Sữa Việt Nam"),
        ("tap doan", "Tập đoàn Vingroup"),
        ("vinamilk", "Công ty Cổ phần Sữa Việt Nam"),  # the domain
        ("cpgroup.co.th", "เครือเจริญโภคภัณฑ์"),
        ("thaibev.com", "บริษัท ไทยเบฟเวอเรจ จำกัด"),
    ],
)
async def test_search_names_and_domains(
    client: httpx.AsyncClient,
    workspace: WorkspaceHandle,
    companies: dict[str, str],
    q: str,
    expected: str,
) -> None:
    found = await names(client, workspace, q=q)
    assert found[:1] == [expected], found


async def test_search_ranks_pages_and_refuses_other_sorts(
    client: httpx.AsyncClient, workspace: WorkspaceHandle, companies: dict[str, str]
) -> None:
    found = await names(client, workspace, q="vin")
    assert set(found) == {"Tập đoàn Vingroup", "Công ty Cổ phần Sữa Việt Nam"}
    assert await names(client, workspace, q="zzzzqqq") == []
    assert await names(client, workspace, q="%%") == []
    assert await names(client, workspace, q="vin", type="partner") == ["Tập đoàn Vingroup"]
    for index in range(5):
        await created(client, workspace, name=f"Somsak Trading {index}")
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"q": "somsak", "limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = (await client.get("/v1/accounts", headers=workspace.headers, params=params)).json()
        seen += [item["id"] for item in page["data"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len(seen) == len(set(seen)) == 5
    response = await client.get(
        "/v1/accounts", headers=workspace.headers, params={"q": "vin", "sort": "name"}
    )
    assert fields_of(assert_problem(response, 422, "validation_error")) == ["query.sort"]
    response = await client.get(
        "/v1/accounts", headers=workspace.headers, params={"q": "vin", "cursor": "WyJ4IiwxLDJd"}
    )
    assert_problem(response, 400, "invalid_cursor")


async def test_filters_and_sorts(
    client: httpx.AsyncClient, workspace: WorkspaceHandle, companies: dict[str, str]
) -> None:
    assert sorted(await names(client, workspace, type="supplier")) == sorted(
        ["บริษัท ไทยเบฟเวอเรจ จำกัด", "Công ty Cổ phần Sữa Việt Nam"]
    )
    assert sorted(await names(client, workspace, type=["partner", "retailer"])) == sorted(
        ["Tập đoàn Vingroup", "Anchor Retail"]
    )
    assert await names(client, workspace, owner_id="u1") == ["Tập đoàn Vingroup"]
    assert await names(client, workspace, domain="https://www.thaibev.com/en") == [
        "บริษัท ไทยเบฟเวอเรจ จำกัด"
    ]
    assert await names(client, workspace, domain="nobody.example") == []

    everything = (await client.get("/v1/accounts", headers=workspace.headers)).json()["data"]
    assert [item["name"] for item in everything] == [c["name"] for c in reversed(COMPANIES)]
    newest = everything[0]
    assert await names(client, workspace, created_after=newest["created_at"]) == [newest["name"]]
    assert newest["name"] not in await names(client, workspace, created_before=newest["created_at"])
    await patch(client, workspace, companies["Anchor Retail"], size="small")
    changed = (
        await client.get(f"/v1/accounts/{companies['Anchor Retail']}", headers=workspace.headers)
    ).json()
    assert await names(client, workspace, updated_after=changed["updated_at"]) == ["Anchor Retail"]
    assert "Anchor Retail" not in await names(
        client, workspace, updated_before=changed["updated_at"]
    )

    assert await names(client, workspace, sort="name") == [
        "Anchor Retail",
        "Công ty Cổ phần Sữa Việt Nam",
        "Tập đoàn Vingroup",
        "เครือเจริญโภคภัณฑ์",
        "บริษัท ไทยเบฟเวอเรจ จำกัด",
    ]
    assert await names(client, workspace, sort="created_at", limit=2) == [
        COMPANIES[0]["name"],
        COMPANIES[1]["name"],
    ]
    page = (
        await client.get(
            "/v1/accounts", headers=workspace.headers, params={"sort": "-updated_at", "limit": 1}
        )
    ).json()
    assert [item["name"] for item in page["data"]] == ["Anchor Retail"]
    following = await names(
        client, workspace, sort="-updated_at", limit=10, cursor=page["next_cursor"]
    )
    assert len(following) == 4
    assert "Anchor Retail" not in following

    for params, field in (
        ({"type": "vip"}, "query.type.0"),
        ({"domain": "not a domain"}, "query.domain"),
        ({"sort": "domain"}, "query.sort"),
        ({"created_after": "2026-01-01T00:00:00"}, "query.created_after"),
        ({"updated_before": "1700000000"}, "query.updated_before"),
        ({"parent_account_id": "nope"}, "query.parent_account_id"),
        ({"limit": 0}, "query.limit"),
    ):
        response = await client.get("/v1/accounts", headers=workspace.headers, params=params)
        assert field in fields_of(assert_problem(response, 422, "validation_error")), params


# -- invalid input ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "name"),
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "x" * 301}, "name"),
        ({"name": "a", "type": "vip"}, "type"),
        ({"name": "a", "domain": "not a domain"}, "domain"),
        ({"name": "a", "domain": "localhost"}, "domain"),
        ({"name": "a", "domain": "192.168.0.1"}, "domain"),
        ({"name": "a", "domain": "under_score.com"}, "domain"),
        ({"name": "a", "domain": ("a" * 60 + ".") * 5 + "com"}, "domain"),
        ({"name": "a", "industry": "x" * 101}, "industry"),
        ({"name": "a", "size": "huge"}, "size"),
        ({"name": "a", "parent_account_id": "not-a-uuid"}, "parent_account_id"),
        ({"name": "a", "parent_account_id": MISSING}, "parent_account_id"),
        ({"name": "a", "owner_id": "x" * 201}, "owner_id"),
        ({"name": "a", "attributes": {"blob": "x" * 20000}}, "attributes"),
        ({"name": "a", "attributes": [1]}, "attributes"),
        ({"name": "a", "external_ids": {"bad system!": "1"}}, "external_ids.bad system!"),
        ({"name": "a", "external_ids": {"pos": ""}}, "external_ids.pos"),
        ({"name": "a\x00b"}, "name"),
        ({"name": "a", "id": MISSING}, "id"),
        ({"name": "a", "version": 2}, "version"),
        ({"name": "a", "created_at": "2024-01-01T00:00:00Z"}, "created_at"),
        ({"name": "a", "website": "x"}, "website"),
    ],
)
async def test_invalid_input_is_422_naming_the_field_and_writes_nothing(
    client: httpx.AsyncClient, workspace: WorkspaceHandle, body: dict[str, Any], field: str
) -> None:
    response = await create(client, workspace, **body)
    fields = fields_of(assert_problem(response, 422, "validation_error"))
    assert any(f == field or f.startswith(f"{field}.") for f in fields), fields
    listing = await client.get("/v1/accounts", headers=workspace.headers)
    assert listing.json()["data"] == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x" * 301}, "name"),
        ({"domain": "http://"}, "domain"),
        ({"size": "huge"}, "size"),
        ({"attributes": {"deep": {"a": {"b": {"c": {"d": {"e": 1}}}}}}}, "attributes"),
        ({"external_ids": {f"s{i}": "1" for i in range(21)}}, "external_ids"),
        ({"external_ids": {"bad system!": "1"}}, "external_ids.bad system!"),
    ],
)
async def test_invalid_patch_is_422_naming_the_field(
    client: httpx.AsyncClient, workspace: WorkspaceHandle, body: dict[str, Any], field: str
) -> None:
    account = await created(client, workspace, name="Acme")
    response = await patch(client, workspace, account["id"], **body)
    fields = fields_of(assert_problem(response, 422, "validation_error"))
    assert any(f == field or f.startswith(f"{field}.") for f in fields), fields
    current = await client.get(f"/v1/accounts/{account['id']}", headers=workspace.headers)
    assert current.json() == account


# -- tenancy and scopes ----------------------------------------------------------------------


async def test_another_workspaces_account_is_404(
    client: httpx.AsyncClient, make_workspace: Any
) -> None:
    owner, stranger = await make_workspace(), await make_workspace()
    account = await created(client, owner, **CP)
    url = f"/v1/accounts/{account['id']}"
    for method, path in (
        ("GET", url),
        ("PATCH", url),
        ("DELETE", url),
        ("GET", f"{url}/contacts"),
        ("GET", "/v1/accounts/by-external-id/sap/100234"),
    ):
        response = await client.request(
            method,
            path,
            headers=stranger.headers,
            json={"name": "x"} if method == "PATCH" else None,
        )
        assert_problem(response, 404, "not_found")
    assert await names(client, stranger, q="เจริญ") == []
    assert await names(client, stranger, domain="cpgroup.co.th") == []
    # The stranger's batch cannot match it either: it creates an account of its own.
    response = await client.post(
        "/v1/accounts/batch",
        headers=stranger.headers,
        json={"items": [{"name": "Mine", "match": {"system": "sap", "value": "100234"}}]},
    )
    assert response.json()["results"][0]["status"] == "created"
    unchanged = await client.get(url, headers=owner.headers)
    assert unchanged.json() == account


async def test_scopes(client: httpx.AsyncClient, workspace: WorkspaceHandle) -> None:
    account = await created(client, workspace, name="Acme")
    reader = await workspace.key("contacts:read")
    assert (await client.get("/v1/accounts", headers=reader)).status_code == 200
    assert (await client.get(f"/v1/accounts/{account['id']}", headers=reader)).status_code == 200
    assert (
        await client.get(f"/v1/accounts/{account['id']}/contacts", headers=reader)
    ).status_code == 200
    for method, path, body in (
        ("POST", "/v1/accounts", {"name": "x"}),
        ("POST", "/v1/accounts/batch", {"items": [{"name": "x"}]}),
        ("PATCH", f"/v1/accounts/{account['id']}", {"name": "x"}),
        ("DELETE", f"/v1/accounts/{account['id']}", None),
    ):
        response = await client.request(method, path, headers=reader, json=body)
        assert_problem(response, 403, "forbidden")
    writer = await workspace.key("contacts:write")
    assert (
        await client.post("/v1/accounts", headers=writer, json={"name": "y"})
    ).status_code == 201
    other = await workspace.key("cases:read", "cases:write")
    assert_problem(await client.get("/v1/accounts", headers=other), 403, "forbidden")
    assert_problem(
        await client.post("/v1/accounts", headers=other, json={"name": "z"}), 403, "forbidden"
    )


# -- batch upsert ----------------------------------------------------------------------------


async def batch(
    client: httpx.AsyncClient, ws: WorkspaceHandle, items: list[Any], **options: Any
) -> httpx.Response:
    return await client.post(
        "/v1/accounts/batch", headers=ws.headers, json={"items": items, **options}
    )


async def test_batch_creates_updates_and_reports_errors_per_item(
    client: httpx.AsyncClient, workspace: WorkspaceHandle, owner_engine: AsyncEngine
) -> None:
    by_sap = await created(
        client, workspace, name="Old name", external_ids={"sap": "1"}, attributes={"a": 1}
    )
    by_domain = await created(client, workspace, name="Domain Co", domain="domain.example")
    by_pos = await created(client, workspace, name="POS Co", external_ids={"pos": "P-1"})
    taken = await created(client, workspace, name="Taken", domain="taken.example")
    response = await batch(
        client,
        workspace,
        [
            # 0: matched by `match`; only the given fields change, attributes merge
            {"match": {"system": "sap", "value": "1"}, "name": "New name", "attributes": {"b": 2}},
            # 1: matched by domain (any spelling of it)
            {"name": "Domain Co Ltd", "domain": "https://www.domain.example/", "size": "small"},
            # 2: matched by one of its external ids; a new id is added
            {"name": "POS Co", "external_ids": {"pos": "P-1", "erp": "E-1"}},
            # 3: no match: created, carrying the match key
            {"match": {"system": "sap", "value": "2"}, "name": "Brand new", "type": "supplier"},
            # 4: invalid
            {"name": "", "type": "vip"},
            # 5: a domain another account has
            {"name": "Clash", "domain": "other.example", "external_ids": {"sap": "1"}},
            # 6: the parent does not exist
            {"name": "Orphan", "parent_account_id": MISSING},
            # 7: created, with a domain
            {"name": "Fresh", "domain": "fresh.example"},
            # 8: matches item 7 by domain: an update of what item 7 created
            {"name": "Fresh Co", "domain": "fresh.example"},
            # 9: matched (by sap), then refused: it would take another account's domain
            {"match": {"system": "sap", "value": "1"}, "name": "X", "domain": "taken.example"},
            # 10: unknown field
            {"name": "Y", "colour": "red"},
            # 11: a NUL character
            {"name": "Nul\x00"},
        ],
    )
    assert response.status_code == 200, response.text
    body = response.json()
    statuses = [(item["index"], item["status"]) for item in body["results"]]
    assert statuses == [
        (0, "updated"),
        (1, "updated"),
        (2, "updated"),
        (3, "created"),
        (4, "error"),
        (5, "updated"),
        (6, "error"),
        (7, "created"),
        (8, "updated"),
        (9, "error"),
        (10, "error"),
        (11, "error"),
    ]
    assert (body["created"], body["updated"], body["errors"]) == (2, 5, 5)
    items = body["results"]
    assert items[0]["id"] == by_sap["id"]
    assert items[1]["id"] == by_domain["id"]
    assert items[2]["id"] == by_pos["id"]
    assert items[5]["id"] == by_sap["id"]
    assert items[8]["id"] == items[7]["id"]
    assert items[4]["error"]["code"] == "validation_error"
    assert items[4]["error"]["status"] == 422
    assert sorted(e["field"] for e in items[4]["error"]["errors"]) == ["name", "type"]
    assert [e["field"] for e in items[6]["error"]["errors"]] == ["parent_account_id"]
    assert items[9]["error"]["code"] == "duplicate"
    assert items[9]["error"]["type"] == "https://crm.dev/problems/duplicate"
    assert items[9]["error"]["status"] == 409
    assert items[9]["error"]["existing_id"] == taken["id"]
    assert [e["field"] for e in items[10]["error"]["errors"]] == ["colour"]
    assert [e["field"] for e in items[11]["error"]["errors"]] == ["name"]

    async def get(account_id: str) -> dict[str, Any]:
        response = await client.get(f"/v1/accounts/{account_id}", headers=workspace.headers)
        result: dict[str, Any] = response.json()
        return result

    sap = await get(by_sap["id"])
    # Items 0 and 5 applied in order; item 9 wrote nothing.
    assert sap["name"] == "Clash"
    assert sap["domain"] == "other.example"
    assert sap["attributes"] == {"a": 1, "b": 2}
    assert sap["version"] == 3
    assert (await get(by_domain["id"]))["size"] == "small"
    assert (await get(by_domain["id"]))["name"] == "Domain Co Ltd"
    assert (await get(by_pos["id"]))["external_ids"] == {"erp": "E-1", "pos": "P-1"}
    new = await get(items[3]["id"])
    assert (new["name"], new["type"], new["external_ids"]) == (
        "Brand new",
        "supplier",
        {"sap": "2"},
    )
    assert (await get(items[7]["id"]))["name"] == "Fresh Co"
    assert await names(client, workspace, q="orphan") == []

    rows = await events(owner_engine, workspace, by_sap["id"])
    assert [(row.type, row.changed_fields) for row in rows] == [
        ("account.created", []),
        ("account.updated", ["attributes", "name"]),
        ("account.updated", ["domain", "name"]),
    ]


async def test_batch_all_or_none_rolls_everything_back(
    client: httpx.AsyncClient, workspace: WorkspaceHandle, owner_engine: AsyncEngine
) -> None:
    existing = await created(client, workspace, name="Existing", external_ids={"sap": "1"})
    response = await batch(
        client,
        workspace,
        [
            {"name": "Would be created", "domain": "new.example"},
            {"match": {"system": "sap", "value": "1"}, "name": "Would be renamed"},
            {"name": "x" * 301},
            {"name": "Bad domain", "domain": "nope"},
        ],
        all_or_none=True,
    )
    problem = assert_problem(response, 422, "validation_error")
    assert [(item["index"], item["status"]) for item in problem["results"]] == [  # type: ignore[attr-defined]
        (0, "rolled_back"),
        (1, "rolled_back"),
        (2, "error"),
        (3, "error"),
    ]
    assert fields_of(problem) == ["items.2.name", "items.3.domain"]
    assert await names(client, workspace) == ["Existing"]
    current = await client.get(f"/v1/accounts/{existing['id']}", headers=workspace.headers)
    assert current.json() == existing
    rows = await events(owner_engine, workspace, existing["id"])
    assert [row.type for row in rows] == ["account.created"]

    good = await batch(client, workspace, [{"name": "Fine"}], all_or_none=True)
    assert good.status_code == 200
    assert good.json()["results"][0]["status"] == "created"


async def test_batch_conflicting_keys_and_limits(
    client: httpx.AsyncClient, workspace: WorkspaceHandle
) -> None:
    first = await created(client, workspace, name="First", external_ids={"sap": "1"})
    second = await created(client, workspace, name="Second", external_ids={"pos": "2"})
    response = await batch(
        client,
        workspace,
        [
            # Its ids belong to two different accounts: ambiguous.
            {"name": "Both", "external_ids": {"sap": "1", "pos": "2"}},
            # Matched by sap 9 but listing sap 8: contradictory.
            {"name": "Odd", "match": {"system": "sap", "value": "9"}, "external_ids": {"sap": "8"}},
        ],
    )
    items = response.json()["results"]
    assert [item["status"] for item in items] == ["error", "error"]
    assert sorted(e["field"] for e in items[0]["error"]["errors"]) == [
        "external_ids.pos",
        "external_ids.sap",
    ]
    assert [e["field"] for e in items[1]["error"]["errors"]] == ["external_ids.sap"]
    for account in (first, second):
        current = await client.get(f"/v1/accounts/{account['id']}", headers=workspace.headers)
        assert current.json() == account

    # An update needs no name; a create does. Too many ids with the match key is an error.
    response = await batch(
        client,
        workspace,
        [
            {"match": {"system": "sap", "value": "1"}, "size": "micro"},
            {"match": {"system": "sap", "value": "404"}, "size": "micro"},
            {
                "name": "Many ids",
                "match": {"system": "sap", "value": "5"},
                "external_ids": {f"s{i}": str(i) for i in range(20)},
            },
            {"match": {"system": "sap", "value": "1"}, "name": None},
        ],
    )
    items = response.json()["results"]
    assert [item["status"] for item in items] == ["updated", "error", "error", "error"]
    assert [e["field"] for e in items[1]["error"]["errors"]] == ["name"]
    assert [e["field"] for e in items[2]["error"]["errors"]] == ["external_ids"]
    assert [e["field"] for e in items[3]["error"]["errors"]] == ["name"]
    current = await client.get(f"/v1/accounts/{first['id']}", headers=workspace.headers)
    assert (current.json()["name"], current.json()["size"]) == ("First", "micro")

    for body, field in (
        ({"items": []}, "items"),
        ({"items": [{"name": str(i)} for i in range(1001)]}, "items"),
        ({"items": ["not an object"]}, "items.0"),
        ({"items": [{"name": "x"}], "all_or_none": "maybe"}, "all_or_none"),
        ({"items": [{"name": "x"}], "extra": 1}, "extra"),
        ({}, "items"),
    ):
        response = await client.post("/v1/accounts/batch", headers=workspace.headers, json=body)
        assert field in fields_of(assert_problem(response, 422, "validation_error")), body


async def test_batch_is_idempotent_with_a_key(
    client: httpx.AsyncClient, workspace: WorkspaceHandle
) -> None:
    headers = {**workspace.headers, "Idempotency-Key": "sync-2026-11-22"}
    body = {"items": [{"name": "Once", "domain": "once.example"}]}
    first = await client.post("/v1/accounts/batch", headers=headers, json=body)
    again = await client.post("/v1/accounts/batch", headers=headers, json=body)
    assert first.status_code == again.status_code == 200
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    assert await names(client, workspace) == ["Once"]


async def test_concurrent_batches_with_overlapping_accounts_in_any_order_all_land(
    client: httpx.AsyncClient, workspace: WorkspaceHandle
) -> None:
    """Partner syncs run side by side and send the same accounts in their own order."""
    numbers = list(range(30))
    orders = [numbers, numbers[::-1], numbers[15:] + numbers[:15], numbers[::2] + numbers[1::2]]

    async def sync(order: list[int]) -> httpx.Response:
        items = [
            {"name": f"Shop {n}", "domain": f"shop{n}.example.co.th",
             "external_ids": {"erp": f"A-{n}"}}
            for n in order
        ]  # fmt: skip
        return await client.post(
            "/v1/accounts/batch", headers=workspace.headers, json={"items": items}
        )

    responses = await asyncio.gather(*(sync(order) for order in orders))

    assert [r.status_code for r in responses] == [200] * 4, [r.text[:300] for r in responses]
    results = [r.json() for r in responses]
    assert all(result["errors"] == 0 for result in results)
    assert sum(result["created"] for result in results) == 30
    assert sum(result["updated"] for result in results) == 90
