from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Any

import httpx
from sqlalchemy import event

from app.auth.scopes import Scope
from app.config import Settings
from app.db.session import Database
from app.graphql.schema import create_schema
from app.main import BACKGROUND_TASK_PREFIX
from tests.conftest import WorkspaceHandle
from tests.test_conventions import assert_problem


async def gql(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    query: str,
    variables: dict[str, Any] | None = None,
) -> dict[str, Any]:
    response = await client.post(
        "/graphql", headers=headers, json={"query": query, "variables": variables or {}}
    )
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def codes(result: dict[str, Any]) -> list[str]:
    return [error["extensions"]["code"] for error in result.get("errors", [])]


@contextlib.contextmanager
def count_statements(database: Database) -> Iterator[list[str]]:
    """Statements run through the engine and the read pool meanwhile, except the app's
    periodic background work (e.g. the API key usage flush), which may run at any moment."""
    statements: list[str] = []

    def record(*args: Any) -> None:
        task = asyncio.current_task()
        if task is not None and task.get_name().startswith(BACKGROUND_TASK_PREFIX):
            return
        statements.append(args[2])

    def record_read(statement: str) -> None:
        record(None, None, statement)

    event.listen(database.engine.sync_engine, "before_cursor_execute", record)
    database.direct.observers.append(record_read)
    try:
        yield statements
    finally:
        event.remove(database.engine.sync_engine, "before_cursor_execute", record)
        database.direct.observers.remove(record_read)


async def test_requires_a_valid_key(client: httpx.AsyncClient) -> None:
    response = await client.post("/graphql", json={"query": "{ workspace { id } }"})
    assert_problem(response, 401, "unauthenticated")
    response = await client.post(
        "/graphql", headers={"Authorization": "Bearer nope"}, json={"query": "{ __typename }"}
    )
    assert_problem(response, 401, "unauthenticated")


async def test_explorer_page_is_served_locally(client: httpx.AsyncClient) -> None:
    response = await client.get("/graphql", headers={"Accept": "text/html"})
    assert response.status_code == 200
    assert "graphiql" in response.text.lower()
    assert "unpkg.com" not in response.text
    assert "jsdelivr" not in response.text


async def test_queries_via_get_are_refused(
    client: httpx.AsyncClient, workspace: WorkspaceHandle
) -> None:
    response = await client.get(
        "/graphql", params={"query": "{ workspace { id } }"}, headers=workspace.headers
    )
    assert response.status_code in (400, 405)


async def test_workspace_and_api_keys_connection(
    client: httpx.AsyncClient, workspace: WorkspaceHandle
) -> None:
    for index in range(4):
        await workspace.key(Scope.contacts_read, name=f"k{index}")
    query = """
      query Keys($after: String) {
        workspace { id name defaultCurrency version }
        apiKeys(first: 2, after: $after) {
          edges { cursor node { id name scopes } }
          pageInfo { hasNextPage endCursor }
        }
      }"""
    seen: list[str] = []
    after = None
    while True:
        result = await gql(client, workspace.headers, query, {"after": after})
        assert "errors" not in result, result
        assert result["data"]["workspace"]["id"] == str(workspace.id)
        connection = result["data"]["apiKeys"]
        seen += [edge["node"]["id"] for edge in connection["edges"]]
        if not connection["pageInfo"]["hasNextPage"]:
            break
        after = connection["pageInfo"]["endCursor"]
        assert after == connection["edges"][-1]["cursor"]
    assert len(seen) == len(set(seen)) == 5


async def test_edge_cursor_resumes_after_that_edge(
    client: httpx.AsyncClient, workspace: WorkspaceHandle
) -> None:
    for index in range(3):
        await workspace.key(Scope.cases_read, name=f"k{index}")
    query = (
        "query($after: String) "
        "{ apiKeys(first: 10, after: $after) { edges { cursor node { id } } } }"
    )
    edges = (await gql(client, workspace.headers, query))["data"]["apiKeys"]["edges"]
    rest = (await gql(client, workspace.headers, query, {"after": edges[1]["cursor"]}))["data"]
    assert [e["node"]["id"] for e in rest["apiKeys"]["edges"]] == [
        e["node"]["id"] for e in edges[2:]
    ]


async def test_scopes_apply_per_field(
    client: httpx.AsyncClient, workspace: WorkspaceHandle
) -> None:
    reader = await workspace.key(Scope.contacts_read)
    result = await gql(client, reader, "{ workspace { id } apiKeys { edges { node { id } } } }")
    assert result["data"]["workspace"]["id"] == str(workspace.id)
    assert codes(result) == ["forbidden"]


async def test_validation_errors_carry_codes_and_fields(
    client: httpx.AsyncClient, workspace: WorkspaceHandle
) -> None:
    result = await gql(
        client,
        workspace.headers,
        'mutation { updateWorkspace(input: {timezone: "Mars/Olympus"}) { id } }',
    )
    assert codes(result) == ["validation_error"]
    assert result["errors"][0]["extensions"]["errors"][0]["field"] == "timezone"
    result = await gql(client, workspace.headers, "{ workspace { nope } }")
    assert codes(result) == ["graphql_validation_failed"]
    result = await gql(client, workspace.headers, "{ apiKeys(first: 500) { edges { cursor } } }")
    assert codes(result) == ["validation_error"]
    result = await gql(
        client, workspace.headers, '{ apiKeys(after: "garbage") { edges { cursor } } }'
    )
    assert codes(result) == ["invalid_cursor"]


async def test_update_with_stale_if_match_is_refused(
    client: httpx.AsyncClient, workspace: WorkspaceHandle
) -> None:
    mutation = (
        'mutation($m: String) { updateWorkspace(input: {name: "n"}, ifMatch: $m) { version } }'
    )
    assert codes(await gql(client, workspace.headers, mutation, {"m": '"3"'})) == [
        "precondition_failed"
    ]
    result = await gql(client, workspace.headers, mutation, {"m": '"1"'})
    assert result["data"]["updateWorkspace"]["version"] == 2


async def test_create_and_revoke_a_key(
    client: httpx.AsyncClient, workspace: WorkspaceHandle
) -> None:
    created = await gql(
        client,
        workspace.headers,
        'mutation { createApiKey(input: {name: "app", scopes: ["offers:read"]}) '
        "{ key apiKey { id scopes } } }",
    )
    payload = created["data"]["createApiKey"]
    new_headers = {"Authorization": f"Bearer {payload['key']}"}
    assert (await gql(client, new_headers, "{ workspace { id } }"))["data"] is not None
    revoked = await gql(
        client,
        workspace.headers,
        "mutation($id: UUID!) { revokeApiKey(id: $id) { revokedAt } }",
        {"id": payload["apiKey"]["id"]},
    )
    assert revoked["data"]["revokeApiKey"]["revokedAt"] is not None
    response = await client.post(
        "/graphql", headers=new_headers, json={"query": "{ workspace { id } }"}
    )
    assert response.status_code == 401


async def test_each_mutation_is_its_own_unit_of_work(
    client: httpx.AsyncClient, workspace: WorkspaceHandle
) -> None:
    result = await gql(
        client,
        workspace.headers,
        'mutation { a: updateWorkspace(input: {name: "kept"}) { version } '
        'b: updateWorkspace(input: {locale: "not a locale!"}) { version } }',
    )
    assert result["data"]["a"]["version"] == 2
    assert codes(result) == ["validation_error"]
    current = (await gql(client, workspace.headers, "{ workspace { name version } }"))["data"]
    assert current["workspace"] == {"name": "kept", "version": 2}


async def test_idempotency_key_replays_a_mutation(
    client: httpx.AsyncClient, workspace: WorkspaceHandle
) -> None:
    body = {"query": 'mutation { createApiKey(input: {name: "once", scopes: ["cases:read"]}) '
                     "{ apiKey { id } } }"}  # fmt: skip
    headers = {**workspace.headers, "Idempotency-Key": "gql-1"}
    first = await client.post("/graphql", headers=headers, json=body)
    second = await client.post("/graphql", headers=headers, json=body)
    assert second.headers["idempotent-replayed"] == "true"
    assert second.json() == first.json()
    keys = await gql(client, workspace.headers, "{ apiKeys { edges { node { name } } } }")
    names = [edge["node"]["name"] for edge in keys["data"]["apiKeys"]["edges"]]
    assert names.count("once") == 1


async def test_depth_limit_refuses_before_running(settings: Settings) -> None:
    # The real schema is not deep enough yet to reach the default limit of 10; introspection
    # is exempt (GraphiQL's own introspection query nests 13 levels).
    # Depth counts from 0 at the root field: apiKeys(0) edges(1) node(2) id(3).
    schema = create_schema(settings.model_copy(update={"graphql_max_depth": 2}))
    result = await schema.execute("{ apiKeys { edges { node { id } } } }")
    assert result.errors
    assert "exceeds maximum operation depth" in result.errors[0].message
    assert result.errors[0].extensions["code"] == "graphql_validation_failed"
    # Within the limit the query passes validation and reaches its resolver.
    shallow = await schema.execute("{ apiKeys { edges { cursor } } }")
    assert shallow.errors
    assert shallow.errors[0].path == ["apiKeys"]


async def test_alias_and_cost_limits_refuse_before_running(
    client: httpx.AsyncClient, workspace: WorkspaceHandle
) -> None:
    aliases = "{ " + " ".join(f"w{i}: workspace {{ id }}" for i in range(31)) + " }"
    assert "graphql_validation_failed" in codes(await gql(client, workspace.headers, aliases))
    costly = (
        "{ "
        + " ".join(
            f"k{i}: apiKeys(first: 200) {{ edges {{ cursor node {{ id name prefix scopes createdAt "
            f"expiresAt lastUsedAt revokedAt version }} }} }}"
            for i in range(25)
        )
        + " }"
    )
    result = await gql(client, workspace.headers, costly)
    assert result["data"] is None
    assert "cost" in result["errors"][0]["message"]


async def test_statement_count_does_not_grow_with_rows(
    client: httpx.AsyncClient, workspace: WorkspaceHandle, database: Database
) -> None:
    query = "{ workspace { id } apiKeys(first: 50) { edges { node { id name scopes } } } }"
    await gql(client, workspace.headers, query)  # warm the key cache
    with count_statements(database) as few:
        await gql(client, workspace.headers, query)
    for index in range(20):
        await workspace.key(Scope.loyalty_read, name=f"bulk {index}")
    with count_statements(database) as many:
        result = await gql(client, workspace.headers, query)
    assert len(result["data"]["apiKeys"]["edges"]) == 21
    assert len(many) == len(few), (few, many)


async def test_nested_field_is_batched_by_a_dataloader(
    client: httpx.AsyncClient, workspace: WorkspaceHandle, database: Database
) -> None:
    query = "{ apiKeys(first: 100) { edges { node { name createdBy { id name } } } } }"

    async def issue(count: int) -> None:
        # Keys issued by several different keys: each needs its creator resolved.
        for index in range(count):
            creator = await client.post(
                "/v1/api-keys",
                headers=workspace.headers,
                json={"name": f"issuer {index}", "scopes": ["admin"]},
            )
            issuer_headers = {"Authorization": f"Bearer {creator.json()['key']}"}
            await client.post(
                "/v1/api-keys",
                headers=issuer_headers,
                json={"name": f"issued {index}", "scopes": ["offers:read"]},
            )

    await issue(1)
    await gql(client, workspace.headers, query)  # warm the key cache
    with count_statements(database) as small:
        await gql(client, workspace.headers, query)
    await issue(10)
    with count_statements(database) as large:
        result = await gql(client, workspace.headers, query)
    nodes = [edge["node"] for edge in result["data"]["apiKeys"]["edges"]]
    issued = {node["name"]: node["createdBy"]["name"] for node in nodes if node["createdBy"]}
    assert issued["issued 7"] == "issuer 7"
    assert issued["issuer 7"] == "admin"
    admin = next(node for node in nodes if node["name"] == "admin")
    assert admin["createdBy"] is None
    assert len(large) == len(small), (small, large)


async def test_statement_counts_leave_out_background_work(database: Database) -> None:
    from sqlalchemy import text

    async def select_one() -> None:
        async with database.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    with count_statements(database) as statements:
        await asyncio.create_task(select_one(), name=f"{BACKGROUND_TASK_PREFIX}test")
        assert statements == []
        await select_one()
    assert statements == ["SELECT 1"]


def test_selects_finds_a_path_through_fields_and_fragments() -> None:
    from strawberry.types.nodes import FragmentSpread, InlineFragment, SelectedField

    from app.graphql.common import selects

    def field(name: str, *selections: Any) -> SelectedField:
        return SelectedField(name=name, directives={}, arguments={}, selections=list(selections))

    node = field("node", field("kind"), field("summary"))
    assert not selects([field("edges", node)], "edges", "node", "data")
    assert selects([field("edges", field("node", field("data")))], "edges", "node", "data")
    spread = FragmentSpread(
        name="Record", type_condition="TimelineEntry", directives={}, selections=[field("data")]
    )
    assert selects([field("edges", field("node", spread))], "edges", "node", "data")
    inline = InlineFragment(type_condition=None, directives={}, selections=[field("data")])
    assert selects([field("edges", field("node", inline))], "edges", "node", "data")
    # The name must sit at the level the path gives: deeper or shallower does not count.
    assert not selects([field("data")], "edges", "node", "data")
    assert not selects([field("edges", field("data"))], "edges", "node", "data")
