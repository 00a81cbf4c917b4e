from __future__ import annotations

import httpx

from app.db.session import Database
from tests.conftest import WorkspaceHandle
from tests.test_graphql import codes, count_statements, gql

ISSUE_QUERY = """
{ contacts(first: 50) { edges { node {
    displayName
    account { name type parent { name } }
    relationships { type contact { displayName account { name } } }
} } } }"""


async def build(client: httpx.AsyncClient, ws: WorkspaceHandle, size: int, tag: str) -> None:
    """``size`` accounts under one distributor, each with two related contacts."""
    parent = await gql(
        client,
        ws.headers,
        """mutation($n: String!) {
        createAccount(input: {name: $n, type: "distributor"}) { id } }""",
        {"n": f"Distributor {tag}"},
    )
    parent_id = parent["data"]["createAccount"]["id"]
    for index in range(size):
        account = await gql(
            client,
            ws.headers,
            """mutation($n: String!, $p: UUID!) {
            createAccount(input: {name: $n, type: "retailer", parentAccountId: $p}) { id } }""",
            {"n": f"Shop {tag}{index}", "p": parent_id},
        )
        account_id = account["data"]["createAccount"]["id"]
        ids = []
        for person in ("owner", "clerk"):
            created = await gql(
                client,
                ws.headers,
                """mutation($n: String!, $a: UUID!) {
                createContact(input: {givenName: $n, accountId: $a}) { id } }""",
                {"n": f"{person} {tag}{index}", "a": account_id},
            )
            assert "errors" not in created, created
            ids.append(created["data"]["createContact"]["id"])
        linked = await gql(
            client,
            ws.headers,
            """mutation($c: UUID!, $r: UUID!) {
            createRelationship(contactId: $c, relatedContactId: $r, type: "colleague") { id } }""",
            {"c": ids[0], "r": ids[1]},
        )
        assert "errors" not in linked, linked


async def test_issue_query_costs_a_fixed_number_of_statements(
    client: httpx.AsyncClient, workspace: WorkspaceHandle, database: Database
) -> None:
    await build(client, workspace, 1, "a")
    await gql(client, workspace.headers, ISSUE_QUERY)  # warm the key cache
    with count_statements(database) as small:
        result = await gql(client, workspace.headers, ISSUE_QUERY)
    assert "errors" not in result, result
    await build(client, workspace, 12, "b")
    with count_statements(database) as large:
        result = await gql(client, workspace.headers, ISSUE_QUERY)
    nodes = [edge["node"] for edge in result["data"]["contacts"]["edges"]]
    assert len(nodes) == 26
    owner = next(node for node in nodes if node["displayName"] == "owner b7")
    assert owner["account"] == {
        "name": "Shop b7",
        "type": "retailer",
        "parent": {"name": "Distributor b"},
    }
    assert owner["relationships"][0]["contact"] == {
        "displayName": "clerk b7",
        "account": {"name": "Shop b7"},
    }
    assert len(large) == len(small), (small, large)


async def test_account_with_its_contacts_and_errors(
    client: httpx.AsyncClient, workspace: WorkspaceHandle, database: Database
) -> None:
    await build(client, workspace, 3, "c")
    query = """{ accounts(first: 10, filter: {types: ["retailer"]}) { edges { node {
        name externalIds { system } contacts(first: 5) { displayName } } } } }"""
    await gql(client, workspace.headers, query)
    with count_statements(database) as statements:
        result = await gql(client, workspace.headers, query)
    nodes = [edge["node"] for edge in result["data"]["accounts"]["edges"]]
    assert len(nodes) == 3
    assert all(len(node["contacts"]) == 2 for node in nodes)
    # accounts page + the contacts of all accounts + their contact points: not per account
    assert len(statements) <= 8, statements
    too_many = await gql(
        client,
        workspace.headers,
        "{ accounts(first: 2) { edges { node { contacts(first: 1000) { id } } } } }",
    )
    assert "validation_error" in codes(too_many)
    cycle = await gql(
        client,
        workspace.headers,
        """mutation { a: createAccount(input:
        {name: "Loop", externalIds: [{system: "erp", value: "L1"}]}) { id } }""",
    )
    loop_id = cycle["data"]["a"]["id"]
    refused = await gql(
        client,
        workspace.headers,
        """mutation($id: UUID!) {
        updateAccount(id: $id, input: {parentAccountId: $id}) { id } }""",
        {"id": loop_id},
    )
    assert codes(refused) == ["validation_error"]
    found = await gql(
        client,
        workspace.headers,
        """{ accountByExternalId(system: "erp",
        value: "L1") { name externalIds { system value } } }""",
    )
    assert found["data"]["accountByExternalId"] == {
        "name": "Loop",
        "externalIds": [{"system": "erp", "value": "L1"}],
    }
