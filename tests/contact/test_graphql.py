from __future__ import annotations

import itertools
from typing import Any

import httpx

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
