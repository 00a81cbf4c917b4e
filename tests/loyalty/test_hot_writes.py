"""The plain earn and redemption are hot routes (app.kit.hot): one statement on the direct pool,
no session. Whatever they cannot answer as the endpoint would falls through to it, with the
body as it was sent, and gets the endpoint's answer."""

from __future__ import annotations

import uuid

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from app.auth.scopes import Scope
from app.db.session import Database
from tests.conftest import WorkspaceHandle
from tests.loyalty.helpers import (
    account,
    check_invariants,
    earn,
    entries,
    expire_lot,
    lots,
    member,
    post_entry,
    redeem,
)
from tests.test_conventions import assert_problem
from tests.test_graphql import count_statements


def _without_key_lookup(statements: list[str]) -> list[str]:
    # A key not yet in the process's cache is looked up once; that is not the write's.
    return [statement for statement in statements if "crm_find_api_key" not in statement]


async def test_a_plain_write_is_its_one_statement_and_nothing_else(
    client: httpx.AsyncClient, workspace: WorkspaceHandle, database: Database
) -> None:
    _, member_account, _ = await member(client, workspace, expiry_months=12)
    account_id = member_account["id"]
    for write in (
        lambda: post_entry(client, workspace, account_id, kind="earn", points=60),
        lambda: redeem(client, workspace, account_id, points=10, reason="coffee"),
        lambda: post_entry(client, workspace, account_id, kind="adjust", points=-5, reason="x"),
    ):
        with count_statements(database) as statements:
            response = await write()
        assert response.status_code == 201, response.text
        # No workspace binding, no session: the function binds the workspace itself.
        written = _without_key_lookup(statements)
        assert len(written) == 1, statements
        assert "crm_loyalty_write" in written[0]
    state = await account(client, workspace, account_id)
    assert (state["available"], state["redeemed"]) == (45, 10)


async def test_a_write_answers_with_its_location_and_the_account(
    client: httpx.AsyncClient, workspace: WorkspaceHandle
) -> None:
    _, member_account, _ = await member(client, workspace, expiry_months=12)
    account_id = member_account["id"]
    earned = await post_entry(client, workspace, account_id, kind="earn", points=12)
    assert earned.status_code == 201
    entry = earned.json()["entry"]
    assert earned.headers["location"] == f"/v1/loyalty/accounts/{account_id}/entries/{entry['id']}"
    read = await client.get(earned.headers["location"], headers=workspace.headers)
    assert read.json() == entry

    spent = await redeem(client, workspace, account_id, points=5, reason="tea")
    assert spent.status_code == 201
    made = spent.json()
    assert spent.headers["location"] == (
        f"/v1/loyalty/accounts/{account_id}/redemptions/{made['id']}"
    )
    read = await client.get(spent.headers["location"], headers=workspace.headers)
    assert read.json() == {key: value for key, value in made.items() if key != "account"}
    assert made["account"] == await account(client, workspace, account_id)


async def test_an_account_with_a_lot_due_falls_through_with_the_body_as_sent(
    client: httpx.AsyncClient, workspace: WorkspaceHandle, owner_engine: AsyncEngine
) -> None:
    """The function writes nothing on an account with a lot due; the endpoint's general path
    settles the account first, from the same body."""
    _, member_account, _ = await member(client, workspace, expiry_months=12)
    account_id = member_account["id"]
    await earn(client, workspace, account_id, 30)
    await earn(client, workspace, account_id, 5)
    first = (await lots(owner_engine, account_id))[0]
    await expire_lot(owner_engine, first["id"])

    spent = await redeem(client, workspace, account_id, points=4, reason="the reason as sent")

    assert spent.status_code == 201, spent.text
    assert spent.json()["reason"] == "the reason as sent"
    assert (spent.json()["account"]["available"], spent.json()["account"]["expired"]) == (1, 30)
    ledger = await entries(client, workspace, account_id)
    assert [e["kind"] for e in ledger] == ["earn", "earn", "expire", "redeem"]
    assert ledger[-1]["reason"] == "the reason as sent"
    await check_invariants(owner_engine, workspace)


async def test_bodies_the_schema_refuses_get_the_endpoints_answer_and_write_nothing(
    client: httpx.AsyncClient, workspace: WorkspaceHandle
) -> None:
    _, member_account, _ = await member(client, workspace, expiry_months=12)
    account_id = member_account["id"]
    await earn(client, workspace, account_id, 20)
    before = await account(client, workspace, account_id)
    entries_url = f"/v1/loyalty/accounts/{account_id}/entries"
    redemptions_url = f"/v1/loyalty/accounts/{account_id}/redemptions"
    json_headers = {**workspace.headers, "Content-Type": "application/json"}

    malformed = await client.post(entries_url, headers=json_headers, content=b'{"kind": "earn",')
    assert_problem(malformed, 400, "malformed_body")
    not_an_object = await client.post(redemptions_url, headers=json_headers, content=b"[1, 2]")
    assert not_an_object.status_code in (400, 422), not_an_object.text
    deep = await client.post(redemptions_url, headers=json_headers, content=b"[" * 5000)
    assert 400 <= deep.status_code < 500, deep.text

    zero = await post_entry(client, workspace, account_id, kind="earn", points=0)
    assert "points" in str(assert_problem(zero, 422, "validation_error")["errors"])
    unknown = await post_entry(client, workspace, account_id, kind="earn", points=3, bonus=True)
    assert_problem(unknown, 422, "validation_error")
    neither = await redeem(client, workspace, account_id, reason="nothing to spend")
    assert_problem(neither, 422, "validation_error")
    text_points = await redeem(client, workspace, account_id, points="5")
    assert_problem(text_points, 422, "validation_error")

    assert await account(client, workspace, account_id) == before


async def test_the_key_and_its_scope_are_checked_before_anything_is_written(
    client: httpx.AsyncClient, workspace: WorkspaceHandle
) -> None:
    _, member_account, _ = await member(client, workspace, expiry_months=12)
    account_id = member_account["id"]
    await earn(client, workspace, account_id, 20)
    before = await account(client, workspace, account_id)
    url = f"/v1/loyalty/accounts/{account_id}/redemptions"
    body = {"points": 5}

    assert_problem(await client.post(url, json=body), 401, "unauthenticated")
    bad_key = {"Authorization": "Bearer crm_nope_nope"}
    assert_problem(await client.post(url, headers=bad_key, json=body), 401, "unauthenticated")
    reader = await workspace.key(Scope.loyalty_read)
    assert_problem(await client.post(url, headers=reader, json=body), 403, "forbidden")
    writer = await workspace.key(Scope.loyalty_write)
    assert (await client.post(url, headers=writer, json=body)).status_code == 201

    after = await account(client, workspace, account_id)
    assert (after["available"], after["version"]) == (15, before["version"] + 1)


async def test_another_workspaces_account_is_not_found(
    client: httpx.AsyncClient, workspace: WorkspaceHandle, make_workspace: object
) -> None:
    _, member_account, _ = await member(client, workspace, expiry_months=12)
    account_id = member_account["id"]
    other: WorkspaceHandle = await make_workspace("Other")  # type: ignore[operator]

    stolen = await post_entry(client, other, account_id, kind="earn", points=5)
    assert_problem(stolen, 404, "not_found")
    missing = await redeem(client, workspace, str(uuid.uuid4()), points=1)
    assert_problem(missing, 404, "not_found")
    assert (await account(client, workspace, account_id))["available"] == 0


async def test_an_entry_with_a_reference_takes_the_endpoints_general_path(
    client: httpx.AsyncClient, workspace: WorkspaceHandle
) -> None:
    _, member_account, _ = await member(client, workspace, expiry_months=12)
    account_id = member_account["id"]
    first = await post_entry(
        client, workspace, account_id, kind="earn", points=8, reference="till-7/0042"
    )
    assert first.status_code == 201, first.text
    again = await post_entry(
        client, workspace, account_id, kind="earn", points=8, reference="till-7/0042"
    )
    assert again.status_code == 200
    assert again.json()["entry"]["id"] == first.json()["entry"]["id"]
    reused = await post_entry(
        client, workspace, account_id, kind="earn", points=9, reference="till-7/0042"
    )
    assert reused.status_code == 409, reused.text
    assert (await account(client, workspace, account_id))["available"] == 8
