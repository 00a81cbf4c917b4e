"""Each contact's newest interactions, in one statement per page size asked for."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.dataloader import DataLoader

from app.auth.scopes import Scope
from app.interaction.service import interaction as interaction_service
from app.models import Interaction

if TYPE_CHECKING:
    from app.graphql.context import Context

Key = tuple[uuid.UUID, int]  # (contact id, how many)
Result = list[Interaction]


def interaction_recent_by_contact(context: Context) -> DataLoader[Key, Result]:
    auth = context.require(Scope.interactions_read)

    async def load(keys: Sequence[Key]) -> list[Result]:
        by_size: dict[int, list[uuid.UUID]] = {}
        for contact_id, size in keys:
            by_size.setdefault(size, []).append(contact_id)
        found: dict[Key, Result] = {}
        for size, contact_ids in by_size.items():

            async def recent(
                session: AsyncSession, ids: list[uuid.UUID] = contact_ids, n: int = size
            ) -> dict[uuid.UUID, list[Interaction]]:
                return await interaction_service.recent_for_contacts(session, auth, ids, n)

            grouped = await context.read(recent)
            for contact_id in contact_ids:
                found[(contact_id, size)] = grouped.get(contact_id, [])
        return [found[key] for key in keys]

    return DataLoader(load_fn=load)
