"""Everything that points at a contact, so a merge can re-point it to the survivor.

A module whose rows reference contacts registers a mover when it is imported (a plain column
is one line: ``register_contact_reference("interactions", column_mover("interactions",
"contact_id"))``). Merging then keeps working as modules are added, without editing merge.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

Mover = Callable[[AsyncSession, uuid.UUID, uuid.UUID, Sequence[uuid.UUID]], Awaitable[None]]

_movers: dict[str, Mover] = {}


def register_contact_reference(name: str, mover: Mover) -> None:
    _movers[name] = mover


def registered() -> list[str]:
    return sorted(_movers)


def column_mover(table: str, column: str) -> Mover:
    """Re-point ``table.column`` (scoped by ``workspace_id``) from absorbed ids to the survivor."""
    statement = text(
        f"UPDATE {table} SET {column} = :survivor "
        f"WHERE workspace_id = :workspace_id AND {column} = ANY(:absorbed)"
    )

    async def move(
        session: AsyncSession,
        workspace_id: uuid.UUID,
        survivor_id: uuid.UUID,
        absorbed_ids: Sequence[uuid.UUID],
    ) -> None:
        await session.execute(
            statement,
            {"survivor": survivor_id, "workspace_id": workspace_id, "absorbed": list(absorbed_ids)},
        )

    return move


async def move_references(
    session: AsyncSession,
    workspace_id: uuid.UUID,
    survivor_id: uuid.UUID,
    absorbed_ids: Sequence[uuid.UUID],
) -> None:
    for name in registered():
        await _movers[name](session, workspace_id, survivor_id, absorbed_ids)
