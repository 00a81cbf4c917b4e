"""Concurrent writers on the service layer, each with a session (and connection) of its own:
no double spend, no stock below zero, totals conserved."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.auth.dependencies import AuthContext
from app.auth.scopes import Scope
from app.config import Settings
from app.db.session import Database, bind_workspace
from app.kit.errors import CRMError
from app.loyalty import schemas
from app.loyalty.service import loyalty as loyalty_service
from app.loyalty.tasks import sweep
from tests.conftest import WorkspaceHandle
from tests.loyalty.helpers import (
    account,
    backdate,
    check_invariants,
    earn,
    lots,
    member,
    purchase_now,
)
from tests.purchase.helpers import new_contact, thb

T = TypeVar("T")


@pytest.fixture
async def wide_database(settings: Settings) -> AsyncIterator[Database]:
    """A pool wide enough for many transactions at once; the rest queue for a connection."""
    assert settings.database_url is not None
    wide = settings.model_copy(
        update={"db_pool_size": 40, "db_max_overflow": 0, "db_pool_timeout": 120}
    )
    database = Database.connect(settings.database_url, wide)
    try:
        yield database
    finally:
        await database.dispose()


def _auth(ws: WorkspaceHandle) -> AuthContext:
    return AuthContext(
        workspace_id=ws.id, api_key_id=ws.admin_key_id, scopes=frozenset({Scope.admin.value})
    )


async def _in_transaction(
    database: Database, ws: WorkspaceHandle, work: Callable[[AsyncSession], Awaitable[T]]
) -> T | CRMError:
    """Run ``work`` in a transaction of its own; a refusal is returned, not raised."""
    try:
        async with database.sessionmaker() as session, session.begin():
            await bind_workspace(session, ws.id)
            return await work(session)
    except CRMError as error:
        return error


async def test_200_concurrent_redemptions_of_an_account_that_can_afford_10(
    client: httpx.AsyncClient,
    workspace: WorkspaceHandle,
    wide_database: Database,
    owner_engine: AsyncEngine,
) -> None:
    _, member_account, _ = await member(client, workspace)
    account_id = uuid.UUID(member_account["id"])
    await earn(client, workspace, str(account_id), 100)
    auth = _auth(workspace)

    async def redeem_ten(session: AsyncSession) -> Any:
        return await loyalty_service.redeem(
            session, auth, account_id, schemas.RedemptionCreate(points=10)
        )

    outcomes = await asyncio.gather(
        *(_in_transaction(wide_database, workspace, redeem_ten) for _ in range(200))
    )
    refused = [o for o in outcomes if isinstance(o, CRMError)]
    assert len(outcomes) - len(refused) == 10
    assert {error.code for error in refused} == {"insufficient_points"}
    state = await account(client, workspace, str(account_id))
    assert (state["available"], state["redeemed"], state["balance"]) == (0, 100, 0)
    await check_invariants(owner_engine, workspace)


async def test_reward_stock_never_goes_below_zero(
    client: httpx.AsyncClient,
    workspace: WorkspaceHandle,
    wide_database: Database,
    owner_engine: AsyncEngine,
) -> None:
    program, _, _ = await member(client, workspace)
    reward = await client.post(
        "/v1/loyalty/rewards",
        headers=workspace.headers,
        json={"program_id": program["id"], "name": "Mango sticky rice", "cost_points": 30,
              "stock": 5},
    )  # fmt: skip
    assert reward.status_code == 201, reward.text
    reward_id = uuid.UUID(reward.json()["id"])
    members = []
    for _ in range(30):
        contact_id = await new_contact(client, workspace)
        created = await client.post(
            "/v1/loyalty/accounts",
            headers=workspace.headers,
            json={"program_id": program["id"], "contact_id": contact_id},
        )
        members.append(uuid.UUID(created.json()["id"]))
        await earn(client, workspace, created.json()["id"], 50)
    auth = _auth(workspace)

    def buy(account_id: uuid.UUID) -> Callable[[AsyncSession], Awaitable[Any]]:
        async def work(session: AsyncSession) -> Any:
            return await loyalty_service.redeem(
                session, auth, account_id, schemas.RedemptionCreate(reward_id=reward_id)
            )

        return work

    outcomes = await asyncio.gather(
        *(_in_transaction(wide_database, workspace, buy(a)) for a in members)
    )
    refused = [o for o in outcomes if isinstance(o, CRMError)]
    assert len(outcomes) - len(refused) == 5
    assert {error.code for error in refused} == {"out_of_stock"}
    after = await client.get(f"/v1/loyalty/rewards/{reward_id}", headers=workspace.headers)
    assert after.json()["stock"] == 0
    await check_invariants(owner_engine, workspace)


async def test_concurrent_earn_redeem_and_sweep_conserve_points(
    client: httpx.AsyncClient,
    workspace: WorkspaceHandle,
    wide_database: Database,
    owner_engine: AsyncEngine,
) -> None:
    _, member_account, contact_id = await member(
        client, workspace, pending_days=14, expiry_months=12
    )
    account_id = uuid.UUID(member_account["id"])
    await earn(client, workspace, str(account_id), 100)
    await earn(client, workspace, str(account_id), 40)
    await purchase_now(client, workspace, contact_id, thb("1250.00"))
    found = await lots(owner_engine, str(account_id))
    # Due work for the sweep: the 40 expire, the purchase's 50 are released.
    await backdate(
        owner_engine,
        "UPDATE loyalty_lots SET available_at = now() - interval '2 years', "
        "expires_at = now() - interval '1 second' WHERE id = :id",
        id=found[1]["id"],
    )
    await backdate(
        owner_engine,
        "UPDATE loyalty_lots SET available_at = now() - interval '1 second' WHERE id = :id",
        id=found[2]["id"],
    )
    auth = _auth(workspace)

    async def add_five(session: AsyncSession) -> Any:
        return await loyalty_service.post_entry(
            session, auth, account_id, schemas.EntryCreate(kind="earn", points=5)
        )

    async def spend_three(session: AsyncSession) -> Any:
        return await loyalty_service.redeem(
            session, auth, account_id, schemas.RedemptionCreate(points=3)
        )

    async def sweep_once(session: AsyncSession) -> Any:
        return await sweep(session, workspace.id, 100)

    work = [add_five] * 40 + [spend_three] * 60 + [sweep_once] * 5
    outcomes = await asyncio.gather(*(_in_transaction(wide_database, workspace, w) for w in work))
    refused = [o for o in outcomes[40:100] if isinstance(o, CRMError)]
    assert {error.code for error in refused} <= {"insufficient_points"}
    spent = 3 * (60 - len(refused))
    state = await account(client, workspace, str(account_id))
    assert state["lifetime_earned"] == 100 + 40 + 50 + 40 * 5
    assert state["expired"] == 40
    assert state["redeemed"] == spent
    assert state["pending"] == 0
    assert state["balance"] == state["available"] == 100 + 50 + 200 - spent
    async with owner_engine.connect() as connection:
        kinds = await connection.execute(
            text("SELECT kind, count(*) FROM loyalty_entries WHERE account_id = :a GROUP BY kind"),
            {"a": account_id},
        )
        counted = dict(kinds.all())
    assert counted["expire"] == counted["release"] == 1
    await check_invariants(owner_engine, workspace)


async def test_concurrent_enrolments_make_one_account(
    client: httpx.AsyncClient, workspace: WorkspaceHandle, wide_database: Database
) -> None:
    program, _, _ = await member(client, workspace)
    contact_id = uuid.UUID(await new_contact(client, workspace))
    auth = _auth(workspace)
    data = schemas.AccountCreate(program_id=uuid.UUID(program["id"]), contact_id=contact_id)

    async def join(session: AsyncSession) -> Any:
        return await loyalty_service.enrol(session, auth, data)

    outcomes = await asyncio.gather(
        *(_in_transaction(wide_database, workspace, join) for _ in range(20))
    )
    refused = [o for o in outcomes if isinstance(o, CRMError)]
    assert len(refused) == 19
    assert {error.code for error in refused} == {"duplicate"}


async def test_concurrent_entries_with_one_reference_write_one(
    client: httpx.AsyncClient,
    workspace: WorkspaceHandle,
    wide_database: Database,
    owner_engine: AsyncEngine,
) -> None:
    _, member_account, _ = await member(client, workspace)
    account_id = uuid.UUID(member_account["id"])
    auth = _auth(workspace)
    data = schemas.EntryCreate(kind="earn", points=7, reference="campaign-42")

    async def post(session: AsyncSession) -> Any:
        return await loyalty_service.post_entry(session, auth, account_id, data)

    outcomes = await asyncio.gather(
        *(_in_transaction(wide_database, workspace, post) for _ in range(20))
    )
    assert not [o for o in outcomes if isinstance(o, CRMError)]
    assert sum(1 for o in outcomes if not isinstance(o, CRMError) and o[2]) == 1
    assert (await account(client, workspace, str(account_id)))["available"] == 7
    await check_invariants(owner_engine, workspace)
