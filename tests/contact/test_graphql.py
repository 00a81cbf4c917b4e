from __future__ import annotations

import itertools
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db.session import Database
from tests.conftest import WorkspaceHandle
from tests.test_graphql import codes, count_statements, gql

CONTACT_PAGE = """
query Page($first: Int, $after: String, $q: String, $filter: ContactFilter) {
  contacts(first: $first, after: $after, q: $q, filter: $filter) {
    edges { cursor node {
      id displayName lifecycleStage tags
      emails { email primary } phones { number type }
      externalIds { system value }
      relationships { type contact { id displayName emails { email } } }
    } }
    pageInfo { hasNextPage endCursor }
  }
}"""


async def make_people(
    client: httpx.AsyncClient, ws: WorkspaceHandle, count: int, prefix: str = "p"
) -> list[str]:
    ids: list[str] = []
    for index in range(count):
        result = await gql(
            client,
            ws.headers,
            """
            mutation($input: ContactInput!) { createContact(input: $input) { id } }""",
            {
                "input": {
                    "givenName": f"Person {index}",
                    "emails": [{"email": f"{prefix}{index}@ex.com"}],
                    "phones": [{"number": f"08{index:08d}"[:10]}] if index % 3 == 0 else [],
                }
            },
        )
        assert "errors" not in result, result
        ids.append(result["data"]["createContact"]["id"])
    for left, right in itertools.pairwise(ids):
        result = await gql(
            client,
            ws.headers,
            """
            mutation($c: UUID!, $r: UUID!) {
              createRelationship(contactId: $c, relatedContactId: $r, type: "colleague") { id }
            }""",
            {"c": left, "r": right},
        )
        assert "errors" not in result, result
    return ids


async def test_create_update_and_read_back(
    client: httpx.AsyncClient, workspace: WorkspaceHandle
) -> None:
    created = await gql(
        client,
        workspace.headers,
        """
        mutation { createContact(input: {
          givenName: "Văn An", familyName: "Nguyễn", locale: "vi-VN",
          emails: [{email: "An@Example.vn"}], phones: [{number: "+84 912 345 678"}],
          tags: ["vip"], externalIds: [{system: "zalo", value: "an123"}],
          attributes: {tier: "gold"}
        }) { id displayName version emails { email } phones { number } } }""",
    )
    contact = created["data"]["createContact"]
    assert contact["displayName"] == "Nguyễn Văn An"
    assert contact["emails"] == [{"email": "an@example.vn"}]
    assert contact["phones"] == [{"number": "+84912345678"}]
    updated = await gql(
        client,
        workspace.headers,
        """
        mutation($id: UUID!) { updateContact(id: $id, ifMatch: "\\"1\\"",
          input: {lifecycleStage: "customer", externalIds: [{system: "zalo", value: null}]})
          { lifecycleStage version externalIds { system } } }""",
        {"id": contact["id"]},
    )
    assert updated["data"]["updateContact"] == {
        "lifecycleStage": "customer",
        "version": 2,
        "externalIds": [],
    }
    stale = await gql(
        client,
        workspace.headers,
        """
        mutation($id: UUID!) { updateContact(id: $id, ifMatch: "\\"1\\"", input: {tags: []})
          { id } }""",
        {"id": contact["id"]},
    )
    assert codes(stale) == ["precondition_failed"]
    rest = await client.get(f"/v1/contacts/{contact['id']}", headers=workspace.headers)
    assert rest.json()["lifecycle_stage"] == "customer"


async def test_errors_carry_rest_codes(
    client: httpx.AsyncClient, workspace: WorkspaceHandle
) -> None:
    await gql(
        client,
        workspace.headers,
        'mutation { createContact(input: {emails: [{email: "dup@ex.com"}]}) { id } }',
    )
    duplicate = await gql(
        client,
        workspace.headers,
        'mutation { createContact(input: {emails: [{email: "DUP@ex.com"}]}) { id } }',
    )
    assert codes(duplicate) == ["duplicate"]
    assert duplicate["errors"][0]["extensions"]["existing_id"]
    invalid = await gql(
        client,
        workspace.headers,
        'mutation { createContact(input: {phones: [{number: "12"}]}) { id } }',
    )
    assert codes(invalid) == ["validation_error"]
    assert invalid["errors"][0]["extensions"]["errors"][0]["field"] == "phones.0.number"
    missing = await gql(
        client, workspace.headers, '{ contact(id: "01a203ac-1022-7102-9d8c-88190aa27e2e") { id } }'
    )
    assert codes(missing) == ["not_found"]
    reader = await workspace.key("contacts:read")
    forbidden = await gql(
        client, reader, 'mutation { createContact(input: {givenName: "x"}) { id } }'
    )
    assert codes(forbidden) == ["forbidden"]


async def test_search_filter_and_paging(
    client: httpx.AsyncClient, workspace: WorkspaceHandle
) -> None:
    await make_people(client, workspace, 5)
    found = await gql(client, workspace.headers, CONTACT_PAGE, {"q": "person 3"})
    names = [e["node"]["displayName"] for e in found["data"]["contacts"]["edges"]]
    assert names[0] == "Person 3"
    seen: list[str] = []
    after = None
    while True:
        page = await gql(client, workspace.headers, CONTACT_PAGE, {"first": 2, "after": after})
        connection = page["data"]["contacts"]
        seen += [edge["node"]["id"] for edge in connection["edges"]]
        if not connection["pageInfo"]["hasNextPage"]:
            break
        after = connection["pageInfo"]["endCursor"]
    assert len(seen) == len(set(seen)) == 5
    with_phone = await gql(client, workspace.headers, CONTACT_PAGE, {"filter": {"hasPhone": True}})
    assert len(with_phone["data"]["contacts"]["edges"]) == 2


async def test_nested_page_costs_the_same_statements_whatever_the_size(
    client: httpx.AsyncClient, workspace: WorkspaceHandle, database: Database
) -> None:
    await make_people(client, workspace, 3)
    await gql(client, workspace.headers, CONTACT_PAGE, {"first": 50})  # warm the key cache
    with count_statements(database) as small:
        result = await gql(client, workspace.headers, CONTACT_PAGE, {"first": 50})
    assert len(result["data"]["contacts"]["edges"]) == 3
    await make_people(client, workspace, 30, prefix="more")
    with count_statements(database) as large:
        result = await gql(client, workspace.headers, CONTACT_PAGE, {"first": 50})
    edges: list[Any] = result["data"]["contacts"]["edges"]
    assert len(edges) == 33
    linked = [e for e in edges if e["node"]["relationships"]]
    assert linked
    assert all(
        r["contact"]["displayName"].startswith("Person")
        for e in linked
        for r in e["node"]["relationships"]
    )
    assert len(large) == len(small), (small, large)


async def test_merge_and_batch_over_graphql(
    client: httpx.AsyncClient, workspace: WorkspaceHandle
) -> None:
    a, b = await make_people(client, workspace, 2)
    merged = await gql(
        client,
        workspace.headers,
        """
        mutation($s: UUID!, $a: [UUID!]!) { mergeContacts(survivorId: $s, absorb: $a) {
          absorbed contact { emails { email } } } }""",
        {"s": a, "a": [b]},
    )
    assert merged["data"]["mergeContacts"]["absorbed"] == [b]
    assert len(merged["data"]["mergeContacts"]["contact"]["emails"]) == 2
    gone = await gql(
        client, workspace.headers, "query($id: UUID!) { contact(id: $id) { id } }", {"id": b}
    )
    assert codes(gone) == ["not_found"]
    assert gone["errors"][0]["extensions"]["merged_into"] == a
    batch = await gql(
        client,
        workspace.headers,
        """
        mutation { upsertContacts(items: [{givenName: "New"}, {emails: [{email: "p0@ex.com"}],
          tags: ["synced"]}, {phones: [{number: "1"}]}]) {
          created updated errors results { status error } } }""",
    )
    result = batch["data"]["upsertContacts"]
    assert (result["created"], result["updated"], result["errors"]) == (1, 1, 1)
    assert result["results"][2]["error"]["code"] == "validation_error"


EVERY_FIELD = """
  id givenName familyName displayName emails { email primary } phones { number type primary }
  locale timeZone birthday addresses lifecycleStage accountId ownerId tags attributes
  externalIds { system value } acquisitionSource acquisitionChannel createdAt updatedAt version
"""


async def test_contact_by_id_reads_the_document_and_shows_what_the_list_shows(
    client: httpx.AsyncClient,
    workspace: WorkspaceHandle,
    database: Database,
    owner_engine: AsyncEngine,
) -> None:
    """``contact(id)`` and a related contact are read as the database builds the REST
    document (one statement); the list builds ORM objects. Both must show the same values on
    every field, whatever they hold."""
    account = await client.post("/v1/accounts", headers=workspace.headers, json={"name": "Siam"})
    assert account.status_code == 201, account.text
    full = await client.post(
        "/v1/contacts",
        headers=workspace.headers,
        json={
            "given_name": 'Nguyễn "Văn" \\ A', "family_name": "ใจดี\ttab",
            "emails": [{"email": "b@example.vn"}, {"email": "a@example.vn", "primary": True}],
            "phones": [{"number": "+84912345678", "type": "home"},
                       {"number": "+66812345678", "type": "work", "primary": True}],
            "locale": "vi-VN", "time_zone": "Asia/Ho_Chi_Minh", "birthday": "1904-02-29",
            "addresses": [{"line1": "12 Lê Lợi", "country": "vn"}],
            "lifecycle_stage": "advocate", "account_id": account.json()["id"],
            "owner_id": "rep-7", "tags": ["vip", "ลูกค้าประจำ"],
            "attributes": {"score": 1.5, "big": 12345678901234567, "none": None,
                           "nested": {"z": 1, "a": [True, "x"]}},
            "external_ids": {"zalo": "Z-1", "Line": "U-9", "a.b": "1"},
            "acquisition_source": "referral", "acquisition_channel": "line",
        },
    )  # fmt: skip
    assert full.status_code == 201, full.text
    bare = await client.post("/v1/contacts", headers=workspace.headers, json={"given_name": "B"})
    assert bare.status_code == 201, bare.text
    full_id, bare_id = full.json()["id"], bare.json()["id"]
    linked = await client.post(
        f"/v1/contacts/{bare_id}/relationships",
        headers=workspace.headers,
        json={"related_contact_id": full_id, "type": "spouse"},
    )
    assert linked.status_code == 201, linked.text
    # A time with no fractional second: Python writes none, and so must the database.
    async with owner_engine.begin() as connection:
        await connection.execute(
            text("UPDATE contacts SET updated_at = '2026-01-02T03:04:05Z' WHERE id = :id"),
            {"id": bare_id},
        )

    listed = await gql(
        client,
        workspace.headers,
        f"{{ contacts(first: 50) {{ edges {{ node {{ {EVERY_FIELD} }} }} }} }}",
    )
    by_id = {edge["node"]["id"]: edge["node"] for edge in listed["data"]["contacts"]["edges"]}
    one = f"query($id: UUID!) {{ contact(id: $id) {{ {EVERY_FIELD} }} }}"
    for contact_id in (full_id, bare_id):
        await gql(client, workspace.headers, one, {"id": contact_id})  # warm the key cache
        with count_statements(database) as statements:
            read = await gql(client, workspace.headers, one, {"id": contact_id})
        assert "errors" not in read, read
        assert read["data"]["contact"] == by_id[contact_id]
        reads = [s for s in statements if "crm_contact_read" in s]
        assert len(reads) == 1, statements
        assert not any("FROM contact_emails" in s for s in statements), statements

    related = await gql(
        client,
        workspace.headers,
        "query($id: UUID!) { contact(id: $id) { relationships { contact { "
        + EVERY_FIELD
        + " } } } }",
        {"id": bare_id},
    )
    assert related["data"]["contact"]["relationships"][0]["contact"] == by_id[full_id]
