"""Row-level security: the service's role sees one workspace even when a query forgets to say
which one."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from starlette.types import Receive, Scope, Send

from app.db.session import Database, bind_workspace
from app.models import TENANT_TABLES
from tests.conftest import WorkspaceHandle


async def test_query_without_where_sees_only_the_bound_workspace(
    database: Database, make_workspace: object
) -> None:
    first: WorkspaceHandle = await make_workspace()  # type: ignore[operator]
    second: WorkspaceHandle = await make_workspace()  # type: ignore[operator]
    async with database.sessionmaker() as session, session.begin():
        await bind_workspace(session, first.id)
        workspaces = (await session.execute(text("SELECT id FROM workspaces"))).scalars().all()
        key_owners = set(
            (await session.execute(text("SELECT workspace_id FROM api_keys"))).scalars()
        )
        events = set(
            (await session.execute(text("SELECT workspace_id FROM outbox_events"))).scalars()
        )
    assert workspaces == [first.id]
    assert key_owners == {first.id}
    assert events == {first.id}
    assert second.id not in key_owners


async def test_unbound_transaction_sees_nothing(
    database: Database, workspace: WorkspaceHandle
) -> None:
    async with database.sessionmaker() as session, session.begin():
        assert (await session.execute(text("SELECT count(*) FROM api_keys"))).scalar_one() == 0
        assert (await session.execute(text("SELECT count(*) FROM workspaces"))).scalar_one() == 0


async def test_workspace_binding_does_not_leak_to_the_next_transaction(
    database: Database, workspace: WorkspaceHandle
) -> None:
    async with database.engine.connect() as connection:
        async with connection.begin():
            await connection.execute(
                text("SELECT set_config('app.workspace_id', :w, true)"), {"w": str(workspace.id)}
            )
            assert (await connection.execute(text("SELECT count(*) FROM workspaces"))).scalar() == 1
        async with connection.begin():
            assert (await connection.execute(text("SELECT count(*) FROM workspaces"))).scalar() == 0


async def test_cannot_write_rows_into_another_workspace(
    database: Database, make_workspace: object
) -> None:
    first: WorkspaceHandle = await make_workspace()  # type: ignore[operator]
    second: WorkspaceHandle = await make_workspace()  # type: ignore[operator]
    insert = text(
        "INSERT INTO outbox_events (workspace_id, id, type, aggregate_type, aggregate_id, data) "
        "VALUES (:w, gen_random_uuid(), 'x', 'x', gen_random_uuid(), '{}')"
    )
    async with database.sessionmaker() as session, session.begin():
        await bind_workspace(session, first.id)
        with pytest.raises(DBAPIError, match="row-level security"):
            await session.execute(insert, {"w": second.id})
    async with database.sessionmaker() as session, session.begin():
        await bind_workspace(session, first.id)
        updated = await session.execute(
            text("UPDATE api_keys SET name = 'hijacked' WHERE workspace_id = :w"),
            {"w": second.id},
        )
        assert updated.rowcount == 0  # type: ignore[attr-defined]


async def test_service_role_is_neither_superuser_nor_owner(database: Database) -> None:
    async with database.engine.connect() as connection:
        row = (
            await connection.execute(
                text("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user")
            )
        ).one()
        assert row == (False, False)
        owned = (
            await connection.execute(
                text("SELECT count(*) FROM pg_tables WHERE tableowner = current_user")
            )
        ).scalar_one()
        assert owned == 0
        policies = set(
            (
                await connection.execute(
                    text(
                        "SELECT tablename FROM pg_policies WHERE policyname = 'workspace_isolation'"
                    )
                )
            ).scalars()
        )
    assert set(TENANT_TABLES) <= policies


async def test_service_role_cannot_change_the_schema(database: Database) -> None:
    with pytest.raises(DBAPIError):
        async with database.engine.begin() as connection:
            await connection.execute(text("ALTER TABLE api_keys DISABLE ROW LEVEL SECURITY"))
    with pytest.raises(DBAPIError):
        async with database.engine.begin() as connection:
            await connection.execute(text("DROP POLICY workspace_isolation ON api_keys"))


async def test_search_views_stay_inside_the_bound_workspace(
    client: httpx.AsyncClient, database: Database, make_workspace: object
) -> None:
    first: WorkspaceHandle = await make_workspace()  # type: ignore[operator]
    second: WorkspaceHandle = await make_workspace()  # type: ignore[operator]
    http = client
    for workspace in (first, second):
        for path, body in (
            ("/v1/contacts", {"given_name": "Somsri Shared"}),
            ("/v1/accounts", {"name": "Somsri Shared Co"}),
        ):
            response = await http.post(path, headers=workspace.headers, json=body)
            assert response.status_code == 201, response.text
    async with database.sessionmaker() as session, session.begin():
        for table in ("contacts", "accounts"):
            statement = text(
                f"SELECT count(*) FROM {table}_searchable WHERE search_text LIKE '%somsri%'"
            )
            assert (await session.execute(statement)).scalar_one() == 0
        await bind_workspace(session, first.id)
        for table in ("contacts", "accounts"):
            statement = text(
                f"SELECT count(*) FROM {table}_searchable WHERE search_text LIKE '%somsri%'"
            )
            assert (await session.execute(statement)).scalar_one() == 1
            # Even a query naming the other workspace sees nothing of it.
            other = text(f"SELECT count(*) FROM {table}_searchable WHERE workspace_id = :other")
            assert (await session.execute(other, {"other": second.id})).scalar_one() == 0


async def test_search_views_have_every_column_of_their_table(database: Database) -> None:
    async with database.sessionmaker() as session:
        for table in ("contacts", "accounts"):
            columns = text(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = 'public' AND table_name = :name ORDER BY ordinal_position"
            )
            of_table = (await session.execute(columns, {"name": table})).all()
            of_view = (await session.execute(columns, {"name": f"{table}_searchable"})).all()
            assert of_view == of_table, f"recreate {table}_searchable in the migration"


async def test_requests_never_share_state_even_when_the_server_passes_one_dict(
    app: FastAPI, make_workspace: object
) -> None:
    # The ASGI spec has servers hand each request a copy of the lifespan state; one that hands
    # over the dict itself (as some test harnesses do) must not let a request see the key the
    # previous one verified, which request.state caches.
    shared: dict[str, object] = {}

    async def passes_one_dict(scope: Scope, receive: Receive, send: Send) -> None:
        scope["state"] = shared
        await app(scope, receive, send)

    first: WorkspaceHandle = await make_workspace()  # type: ignore[operator]
    second: WorkspaceHandle = await make_workspace()  # type: ignore[operator]
    transport = httpx.ASGITransport(app=passes_one_dict)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        for handle, name in ((first, "Ada First"), (second, "Bao Second")):
            created = await client.post("/v1/accounts", json={"name": name}, headers=handle.headers)
            assert created.status_code == 201, created.text
        for handle, name in ((first, "Ada First"), (second, "Bao Second")):
            listed = await client.get("/v1/accounts", headers=handle.headers)
            assert listed.status_code == 200
            assert [row["name"] for row in listed.json()["data"]] == [name]
    assert shared == {}
