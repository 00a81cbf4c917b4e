"""A contact page in one GraphQL query: history fields, DataLoaders, fixed statement counts."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx

from app.db.session import Database
from tests.conftest import WorkspaceHandle
from tests.test_graphql import codes, count_statements, gql
from tests.timeline.test_timeline import START, add_purchase, make_contact

CONTACT_PAGE = """
query Page($id: UUID!) {
  contact(id: $id) {
    displayName
    account { name }
    relationships { type }
    interactions(first: 5) {
      edges { cursor node { id channel subject feedback { sentiment } } }
      pageInfo { hasNextPage endCursor }
    }
    purchases(first: 3) {
      edges { node { id total { amount currency } items { name } } }
      pageInfo { hasNextPage }
    }
    timeline(first: 10) {
      edges { node { kind id channel summary } }
      pageInfo { hasNextPage endCursor }
    }
    summary {
      interactionCount
      interactionsByChannel { channel count }
      openFeedback { id }
      purchases { lifetimeCount byCurrency { currency lifetimeSpend { amount } } }
    }
  }
}
"""


async def ingest(
    client: httpx.AsyncClient, ws: WorkspaceHandle, contact_id: str, count: int
) -> None:
    for start in range(0, count, 1000):
        items = [
            {
                "contact_id": contact_id,
                "channel": ("chat", "phone", "email", "store")[n % 4],
                "type": "message",
                "occurred_at": (START + timedelta(minutes=n)).isoformat(),
                "subject": f"touch {n}",
                **(
                    {"feedback": {"kind": "direct", "sentiment": "negative"}}
                    if n % 100 == 0
                    else {}
                ),
            }
            for n in range(start, min(count, start + 1000))
        ]
        response = await client.post(
            "/v1/interactions/batch", headers=ws.headers, json={"items": items}
        )
        assert response.status_code == 200, response.text
        assert response.json()["errors"] == 0, response.text


async def page_of(
    client: httpx.AsyncClient, database: Database, ws: WorkspaceHandle, contact_id: str
) -> tuple[dict[str, Any], int]:
    with count_statements(database) as statements:
        result = await gql(client, ws.headers, CONTACT_PAGE, {"id": contact_id})
    assert "errors" not in result, result
    return result["data"]["contact"], len(statements)


async def test_a_contact_page_costs_the_same_for_one_and_a_thousand_interactions(
    client: httpx.AsyncClient, workspace: WorkspaceHandle, database: Database
) -> None:
    small = await make_contact(client, workspace)
    large = await make_contact(client, workspace, given_name="Nguyen")
    await ingest(client, workspace, small, 1)
    await ingest(client, workspace, large, 1000)
    for contact_id in (small, large):
        for day in range(3):
            await add_purchase(client, workspace, contact_id, START + timedelta(days=day))

    small_page, small_statements = await page_of(client, database, workspace, small)
    large_page, large_statements = await page_of(client, database, workspace, large)

    assert small_statements == large_statements
    assert small_page["summary"]["interactionCount"] == 1
    assert large_page["summary"]["interactionCount"] == 1000
    assert len(large_page["interactions"]["edges"]) == 5
    assert large_page["interactions"]["pageInfo"]["hasNextPage"] is True
    assert small_page["interactions"]["pageInfo"]["hasNextPage"] is False
    assert [e["node"]["subject"] for e in large_page["interactions"]["edges"]] == [
        f"touch {n}" for n in (999, 998, 997, 996, 995)
    ]
    assert len(large_page["summary"]["openFeedback"]) == 5
    assert large_page["summary"]["purchases"]["lifetimeCount"] == 3
    assert len(large_page["timeline"]["edges"]) == 10
    assert large_page["timeline"]["pageInfo"]["hasNextPage"] is True


async def test_a_contact_page_reads_the_contact_once(
    client: httpx.AsyncClient, workspace: WorkspaceHandle, database: Database
) -> None:
    """The timeline of a contact the page has just read as live does not check it again."""
    contact_id = await make_contact(client, workspace)
    await ingest(client, workspace, contact_id, 3)
    await page_of(client, database, workspace, contact_id)  # warm the key cache
    with count_statements(database) as statements:
        result = await gql(client, workspace.headers, CONTACT_PAGE, {"id": contact_id})
    assert len(result["data"]["contact"]["timeline"]["edges"]) == 3
    reads = [s for s in statements if "FROM contacts" in s or "crm_contact_read" in s]
    assert len(reads) == 1, reads
    assert "crm_contact_read" in reads[0]


async def test_interaction_pages_continue_from_the_first_page_cursor(
    client: httpx.AsyncClient, workspace: WorkspaceHandle
) -> None:
    contact_id = await make_contact(client, workspace)
    await ingest(client, workspace, contact_id, 12)
    query = """
    query Next($id: UUID!, $after: String) {
      contact(id: $id) {
        interactions(first: 5, after: $after) {
          edges { node { subject } } pageInfo { hasNextPage endCursor }
        }
      }
    }
    """
    subjects: list[str] = []
    after = None
    while True:
        result = await gql(client, workspace.headers, query, {"id": contact_id, "after": after})
        connection = result["data"]["contact"]["interactions"]
        subjects += [edge["node"]["subject"] for edge in connection["edges"]]
        if not connection["pageInfo"]["hasNextPage"]:
            break
        after = connection["pageInfo"]["endCursor"]
    assert subjects == [f"touch {n}" for n in range(11, -1, -1)]


async def test_timeline_pages_and_filters(
    client: httpx.AsyncClient, workspace: WorkspaceHandle
) -> None:
    contact_id = await make_contact(client, workspace)
    await ingest(client, workspace, contact_id, 6)
    await add_purchase(client, workspace, contact_id, START + timedelta(hours=1))
    query = """
    query T($id: UUID!, $after: String, $filter: TimelineFilterInput) {
      contact(id: $id) {
        timeline(first: 4, after: $after, filter: $filter) {
          edges { node { kind channel } } pageInfo { hasNextPage endCursor }
        }
      }
    }
    """
    first = await gql(client, workspace.headers, query, {"id": contact_id})
    page = first["data"]["contact"]["timeline"]
    assert [e["node"]["kind"] for e in page["edges"]] == ["purchase"] + ["interaction"] * 3
    second = await gql(
        client, workspace.headers, query, {"id": contact_id, "after": page["pageInfo"]["endCursor"]}
    )
    rest = second["data"]["contact"]["timeline"]
    assert len(rest["edges"]) == 3
    assert rest["pageInfo"]["hasNextPage"] is False
    chats = await gql(
        client,
        workspace.headers,
        query,
        {"id": contact_id, "filter": {"kinds": ["interaction"], "channels": ["chat"]}},
    )
    edges = chats["data"]["contact"]["timeline"]["edges"]
    assert {e["node"]["channel"] for e in edges} == {"chat"}
    bad = await gql(
        client, workspace.headers, query, {"id": contact_id, "filter": {"kinds": ["x"]}}
    )
    assert codes(bad) == ["validation_error"]


async def test_history_fields_follow_the_keys_scopes(
    client: httpx.AsyncClient, workspace: WorkspaceHandle
) -> None:
    contact_id = await make_contact(client, workspace)
    await ingest(client, workspace, contact_id, 2)
    await add_purchase(client, workspace, contact_id, START)
    headers = await workspace.key("contacts:read")
    result = await gql(client, headers, CONTACT_PAGE, {"id": contact_id})
    contact = result["data"]["contact"]
    assert contact["displayName"]
    assert contact["interactions"] is None
    assert contact["purchases"] is None
    assert contact["timeline"]["edges"] == []
    assert contact["summary"]["purchases"] is None
    assert set(codes(result)) == {"forbidden"}
