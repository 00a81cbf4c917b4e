"""What the interaction repository guarantees to concurrent writers."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import httpx

from app.db.session import Database, bind_workspace
from app.interaction import schemas
from app.interaction.repository import InteractionRepository
from app.interaction.service import _Pending, _row
from tests.conftest import WorkspaceHandle
from tests.interaction.test_endpoints import new_contact


async def test_claims_in_opposite_orders_at_once_never_deadlock(
    client: httpx.AsyncClient, workspace: WorkspaceHandle, database: Database
) -> None:
    """Two transactions claim the same external ids, listed in opposite orders, with their
    statements running at the same time: one gets every pair, the other waits for it and
    gets none, and neither fails."""
    contact_id = uuid.UUID(await new_contact(client, workspace))
    pairs = [("line", f"m{index:04d}") for index in range(1000)]
    data = schemas.InteractionCreate(
        contact_id=contact_id, channel="chat", type="message", occurred_at=datetime.now(UTC)
    )
    both_inserted = asyncio.Barrier(2)

    async def claim(order: list[tuple[str, str]]) -> set[tuple[str, str]]:
        async with database.sessionmaker() as session, session.begin():
            await bind_workspace(session, workspace.id)
            repository = InteractionRepository(session)
            items = [_Pending(index, data) for index in range(len(order))]
            await repository.insert_many(workspace.id, [_row(item) for item in items])
            await both_inserted.wait()
            return await repository.claim_external_ids(
                workspace.id,
                [
                    (system, value, item.id)
                    for (system, value), item in zip(order, items, strict=True)
                ],
            )

    first, second = await asyncio.gather(claim(pairs), claim(pairs[::-1]))
    assert not first & second
    assert first | second == set(pairs)
    assert sorted(map(len, (first, second))) == [0, len(pairs)]


async def test_the_owners_of_external_ids_are_found_within_the_workspace(
    client: httpx.AsyncClient, workspace: WorkspaceHandle, database: Database
) -> None:
    """Held pairs map to their interaction, others (and the same value under another system)
    are absent, a repeated pair is answered once, and another workspace holds none of them."""
    contact_id = uuid.UUID(await new_contact(client, workspace))
    data = schemas.InteractionCreate(
        contact_id=contact_id, channel="chat", type="message", occurred_at=datetime.now(UTC)
    )
    held = [("line", f"h{index:04d}") for index in range(300)]
    async with database.sessionmaker() as session, session.begin():
        await bind_workspace(session, workspace.id)
        repository = InteractionRepository(session)
        items = [_Pending(index, data) for index in range(len(held))]
        await repository.insert_many(workspace.id, [_row(item) for item in items])
        await repository.claim_external_ids(
            workspace.id,
            [(system, value, item.id) for (system, value), item in zip(held, items, strict=True)],
        )
        wanted = [*held, held[0], ("line", "nobody"), ("pbx", held[1][1])]
        owners = await repository.external_id_owners(workspace.id, wanted)
        elsewhere = await repository.external_id_owners(uuid.uuid4(), held)
    assert owners == {pair: item.id for pair, item in zip(held, items, strict=True)}
    assert elsewhere == {}
