from __future__ import annotations

from typing import Any

import httpx

from app.db.session import Database
from tests.conftest import WorkspaceHandle
from tests.sales.helpers import (
    default_pipeline,
    move,
    new_contact,
    new_opportunity,
    stage_ids,
    thb,
)
from tests.test_graphql import count_statements


async def gql(
    client: httpx.AsyncClient, ws: WorkspaceHandle, query: str, **variables: Any
) -> dict[str, Any]:
    response = await client.post(
        "/graphql", headers=ws.headers, json={"query": query, "variables": variables}
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_pipelines_and_an_opportunity_through_mutations(
    client: httpx.AsyncClient, workspace: WorkspaceHandle
) -> None:
    contact_id = await new_contact(client, workspace)
    body = await gql(
        client, workspace, "{ pipelines { name isDefault stages { name probability type } } }"
    )
    [pipeline] = body["data"]["pipelines"]
    assert pipeline["isDefault"] is True
    assert pipeline["stages"][0] == {"name": "Qualification", "probability": 10, "type": "open"}

    created = await gql(
        client,
        workspace,
        """mutation($input: OpportunityCreateInput!) {
          createOpportunity(input: $input) { id stageName amount { amount currency } version
            competitors { name status } }
        }""",
        input={
            "name": "Fleet of scooters",
            "contactId": contact_id,
            "amount": thb("90000.00"),
            "expectedCloseDate": "2099-01-31",
            "competitors": [{"name": "Rival Ltd", "status": "active"}],
        },
    )
    assert "errors" not in created, created
    opportunity = created["data"]["createOpportunity"]
    assert opportunity["stageName"] == "Qualification"
    assert opportunity["competitors"] == [{"name": "Rival Ltd", "status": "active"}]
    stages = stage_ids(await default_pipeline(client, workspace))
    moved = await gql(
        client,
        workspace,
        """mutation($id: UUID!, $stage: UUID!) {
          moveOpportunityStage(id: $id, stageId: $stage, lossReason: "Budget cut",
                               ifMatch: "\\"1\\"") {
            status lossReason version history { fromStageName toStageName toStatus }
          }
        }""",
        id=opportunity["id"],
        stage=stages["Closed lost"],
    )
    assert "errors" not in moved, moved
    result = moved["data"]["moveOpportunityStage"]
    assert result["status"] == "lost"
    assert result["history"] == [
        {"fromStageName": None, "toStageName": "Qualification", "toStatus": "open"},
        {"fromStageName": "Qualification", "toStageName": "Closed lost", "toStatus": "lost"},
    ]
    stale = await gql(
        client,
        workspace,
        """mutation($id: UUID!, $stage: UUID!) {
          moveOpportunityStage(id: $id, stageId: $stage, ifMatch: "\\"1\\"") { id }
        }""",
        id=opportunity["id"],
        stage=stages["Proposal"],
    )
    assert stale["errors"][0]["extensions"]["code"] == "precondition_failed"
    bad = await gql(
        client,
        workspace,
        """mutation($id: UUID!, $stage: UUID!) {
          moveOpportunityStage(id: $id, stageId: $stage) { id }
        }""",
        id=opportunity["id"],
        stage=stages["Closed lost"],
    )
    # Already in that stage: nothing to record, no error.
    assert "errors" not in bad


async def test_contact_opportunities_cost_the_same_for_more_data(
    client: httpx.AsyncClient, workspace: WorkspaceHandle, database: Database
) -> None:
    query = """{ contacts(first: 20) { edges { node { id
        opportunities(first: 5) { edges { node { name stageName
          history { toStageName } competitors { name } } } }
    } } } }"""
    stages = stage_ids(await default_pipeline(client, workspace))

    async def add(count: int) -> None:
        for index in range(count):
            contact_id = await new_contact(client, workspace, f"Buyer {index}")
            for deal in range(2):
                created = await new_opportunity(
                    client,
                    workspace,
                    name=f"Deal {index}.{deal}",
                    contact_id=contact_id,
                    competitors=[{"name": "Rival"}],
                )
                await move(client, workspace, created["id"], stages["Proposal"])

    await add(2)
    with count_statements(database) as small:
        first = await gql(client, workspace, query)
    await add(4)
    with count_statements(database) as large:
        second = await gql(client, workspace, query)
    assert "errors" not in first, first
    assert "errors" not in second, second
    edges = second["data"]["contacts"]["edges"]
    assert len(edges) == 6
    assert all(len(e["node"]["opportunities"]["edges"]) == 2 for e in edges)
    node = edges[0]["node"]["opportunities"]["edges"][0]["node"]
    assert [h["toStageName"] for h in node["history"]] == ["Qualification", "Proposal"]
    assert len(small) == len(large)


async def test_opportunity_pages_cost_the_same_for_more_data(
    client: httpx.AsyncClient, workspace: WorkspaceHandle, database: Database
) -> None:
    query = """{ opportunities(first: 50, sort: "amount") { edges { node { name
        history { toStageName changedBy } competitors { name }
        contact { displayName } account { name } } } } }"""
    stages = stage_ids(await default_pipeline(client, workspace))

    async def add(count: int) -> None:
        for index in range(count):
            contact_id = await new_contact(client, workspace, f"Buyer {index}")
            account = await client.post(
                "/v1/accounts", headers=workspace.headers, json={"name": f"Firm {index}"}
            )
            created = await new_opportunity(
                client,
                workspace,
                name=f"Deal {index}",
                contact_id=contact_id,
                account_id=account.json()["id"],
                competitors=[{"name": "Rival"}],
            )
            await move(client, workspace, created["id"], stages["Negotiation"])

    await add(2)
    with count_statements(database) as small:
        first = await gql(client, workspace, query)
    await add(5)
    with count_statements(database) as large:
        second = await gql(client, workspace, query)
    assert "errors" not in first, first
    assert "errors" not in second, second
    edges = second["data"]["opportunities"]["edges"]
    assert len(edges) == 7
    assert all(len(e["node"]["history"]) == 2 for e in edges)
    assert all(e["node"]["account"]["name"].startswith("Firm") for e in edges)
    assert len(small) == len(large)
