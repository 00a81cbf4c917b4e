from __future__ import annotations

import httpx

from app.auth.scopes import Scope
from app.db.session import Database
from tests.conftest import WorkspaceHandle
from tests.test_graphql import codes, count_statements, gql

CREATE = """mutation($input: InteractionInput!) {
  createInteraction(input: $input) {
    id channel type occurredAt needsAttention attentionResolvedAt
    externalIds { system value }
    feedback { kind sentiment scale score topic urgency }
    contact { displayName }
  }
}"""
LIST = """query($first: Int, $after: String, $filter: InteractionFilter) {
  interactions(first: $first, after: $after, filter: $filter) {
    edges { cursor node { subject contact { displayName } } }
    pageInfo { hasNextPage endCursor }
  }
}"""


async def new_contact(client: httpx.AsyncClient, ws: WorkspaceHandle, name: str) -> str:
    response = await client.post("/v1/contacts", headers=ws.headers, json={"given_name": name})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def item(contact_id: str, subject: str, **extra: object) -> dict[str, object]:
    return {
        "contactId": contact_id,
        "channel": "chat",
        "type": "message",
        "occurredAt": "2026-02-01T09:00:00+07:00",
        "subject": subject,
        **extra,
    }


async def test_create_query_update_delete(
    client: httpx.AsyncClient, workspace: WorkspaceHandle
) -> None:
    contact_id = await new_contact(client, workspace, "Lan")
    created = await gql(
        client,
        workspace.headers,
        CREATE,
        {
            "input": item(
                contact_id,
                "refund?",
                externalIds=[{"system": "line", "value": "m-1"}],
                feedback={"kind": "direct", "scale": "csat", "score": 1, "topic": "refund"},
            )
        },
    )
    assert "errors" not in created, created
    node = created["data"]["createInteraction"]
    assert node["occurredAt"] == "2026-02-01T02:00:00+00:00"
    assert node["needsAttention"] is True
    assert node["feedback"] == {
        "kind": "direct",
        "sentiment": None,
        "scale": "csat",
        "score": 1,
        "topic": "refund",
        "urgency": None,
    }
    assert node["externalIds"] == [{"system": "line", "value": "m-1"}]
    assert node["contact"] == {"displayName": "Lan"}
    repeat = await gql(
        client, workspace.headers, CREATE,
        {"input": item(contact_id, "again", externalIds=[{"system": "line", "value": "m-1"}])},
    )  # fmt: skip
    assert repeat["data"]["createInteraction"]["id"] == node["id"]

    found = await gql(
        client,
        workspace.headers,
        """query($id: UUID!) { interaction(id: $id) { subject version }
        interactionByExternalId(system: "line", value: "m-1") { id } }""",
        {"id": node["id"]},
    )
    assert found["data"] == {
        "interaction": {"subject": "refund?", "version": 1},
        "interactionByExternalId": {"id": node["id"]},
    }
    updated = await gql(
        client,
        workspace.headers,
        """mutation($id: UUID!) { updateInteraction(id: $id, ifMatch: "\\"1\\"",
        input: {attentionResolvedAt: "2026-02-02T00:00:00Z", feedback: {topic: null}})
        { version needsAttention attentionResolvedAt feedback { topic score } } }""",
        {"id": node["id"]},
    )
    assert updated["data"]["updateInteraction"] == {
        "version": 2,
        "needsAttention": True,
        "attentionResolvedAt": "2026-02-02T00:00:00+00:00",
        "feedback": {"topic": None, "score": 1},
    }
    stale = await gql(
        client,
        workspace.headers,
        """mutation($id: UUID!) { updateInteraction(id: $id, ifMatch: "\\"1\\"",
        input: {subject: "x"}) { id } }""",
        {"id": node["id"]},
    )
    assert codes(stale) == ["precondition_failed"]
    bad = await gql(
        client,
        workspace.headers,
        CREATE,
        {"input": item(contact_id, "x", channel="fax", feedback={"kind": "direct", "score": 3})},
    )
    assert codes(bad) == ["validation_error"]
    assert bad["data"] == {"createInteraction": None}
    missing = await gql(
        client,
        workspace.headers,
        CREATE,
        {"input": item("01a203ac-1022-7102-9d8c-88190aa27e2e", "x")},
    )
    assert codes(missing) == ["not_found"]
    deleted = await gql(
        client,
        workspace.headers,
        "mutation($id: UUID!) { deleteInteraction(id: $id) }",
        {"id": node["id"]},
    )
    assert deleted["data"]["deleteInteraction"] == node["id"]
    gone = await gql(
        client, workspace.headers, "query($id: UUID!) { interaction(id: $id) { id } }",
        {"id": node["id"]},
    )  # fmt: skip
    assert codes(gone) == ["not_found"]


async def test_ingest_and_filtered_pages(
    client: httpx.AsyncClient, workspace: WorkspaceHandle
) -> None:
    first = await new_contact(client, workspace, "First")
    second = await new_contact(client, workspace, "Second")
    items = [
        item(
            first if index % 2 else second,
            f"m{index}",
            occurredAt=f"2026-02-0{index + 1}T00:00:00Z",
        )
        for index in range(5)
    ]
    items.append(item(first, "bad", type="telegram"))
    ingested = await gql(
        client,
        workspace.headers,
        """mutation($items: [InteractionInput!]!) { ingestInteractions(items: $items) {
        created existing errors results { index status id error } } }""",
        {"items": items},
    )
    result = ingested["data"]["ingestInteractions"]
    assert (result["created"], result["existing"], result["errors"]) == (5, 0, 1)
    assert result["results"][5]["error"]["code"] == "validation_error"
    rolled_back = await gql(
        client,
        workspace.headers,
        """mutation($items: [InteractionInput!]!) {
        ingestInteractions(items: $items, allOrNone: true) { created } }""",
        {"items": items},
    )
    assert codes(rolled_back) == ["validation_error"]
    assert len(rolled_back["errors"][0]["extensions"]["results"]) == 6

    page = await gql(client, workspace.headers, LIST, {"first": 2, "filter": {"contactId": first}})
    connection = page["data"]["interactions"]
    assert [e["node"]["subject"] for e in connection["edges"]] == ["m3", "m1"]
    assert connection["pageInfo"]["hasNextPage"] is False
    page = await gql(client, workspace.headers, LIST, {"first": 2})
    connection = page["data"]["interactions"]
    assert [e["node"]["subject"] for e in connection["edges"]] == ["m4", "m3"]
    assert connection["pageInfo"]["hasNextPage"] is True
    # Any edge's cursor continues after that edge.
    after_first = await gql(
        client, workspace.headers, LIST,
        {"first": 2, "after": connection["edges"][0]["cursor"]},
    )  # fmt: skip
    assert [e["node"]["subject"] for e in after_first["data"]["interactions"]["edges"]] == [
        "m3",
        "m2",
    ]
    bad_filter = await gql(client, workspace.headers, LIST, {"filter": {"channels": ["fax"]}})
    assert codes(bad_filter) == ["validation_error"]


async def test_listing_with_contacts_is_not_n_plus_one(
    client: httpx.AsyncClient, workspace: WorkspaceHandle, database: Database
) -> None:
    async def add(count: int, tag: str) -> None:
        contacts = [await new_contact(client, workspace, f"{tag}{index}") for index in range(count)]
        response = await client.post(
            "/v1/interactions/batch",
            headers=workspace.headers,
            json={
                "items": [
                    {
                        "contact_id": contact_id,
                        "channel": "email",
                        "type": "email",
                        "occurred_at": "2026-02-01T00:00:00Z",
                        "subject": f"to {contact_id}",
                        "external_ids": {"mail": f"{tag}-{contact_id}"},
                    }
                    for contact_id in contacts
                ]
            },
        )
        assert response.json()["created"] == count

    await add(2, "a")
    await gql(client, workspace.headers, LIST, {"first": 100})  # warm the key cache
    with count_statements(database) as small:
        result = await gql(client, workspace.headers, LIST, {"first": 100})
    assert len(result["data"]["interactions"]["edges"]) == 2
    await add(25, "b")
    with count_statements(database) as large:
        result = await gql(client, workspace.headers, LIST, {"first": 100})
    edges = result["data"]["interactions"]["edges"]
    assert len(edges) == 27
    assert all(edge["node"]["contact"]["displayName"] for edge in edges)
    assert len(large) == len(small), (small, large)


async def test_scopes(client: httpx.AsyncClient, workspace: WorkspaceHandle) -> None:
    contact_id = await new_contact(client, workspace, "Scoped")
    created = await gql(client, workspace.headers, CREATE, {"input": item(contact_id, "hello")})
    interaction_id = created["data"]["createInteraction"]["id"]
    contacts_only = await workspace.key(Scope.contacts_read, Scope.contacts_write)
    denied = await gql(client, contacts_only, LIST)
    assert codes(denied) == ["forbidden"]
    assert denied["data"] == {"interactions": None}
    assert codes(await gql(client, contacts_only, CREATE, {"input": item(contact_id, "x")})) == [
        "forbidden"
    ]
    interactions_only = await workspace.key(Scope.interactions_read)
    partial = await gql(
        client,
        interactions_only,
        "query($id: UUID!) { interaction(id: $id) { subject contact { displayName } } }",
        {"id": interaction_id},
    )
    # The interaction is readable; its contact needs contacts:read.
    assert partial["data"] == {"interaction": {"subject": "hello", "contact": None}}
    assert codes(partial) == ["forbidden"]
