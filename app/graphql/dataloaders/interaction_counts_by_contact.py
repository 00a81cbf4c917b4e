"""How many interactions each contact has per channel, in one statement per batch."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING

from strawberry.dataloader import DataLoader

from app.auth.scopes import Scope
from app.interaction.service import interaction as interaction_service

if TYPE_CHECKING:
    from app.graphql.context import Context

Key = uuid.UUID
Result = dict[str, int]


def interaction_counts_by_contact(context: Context) -> DataLoader[Key, Result]:
    auth = context.require(Scope.interactions_read)

    async def load(ids: Sequence[Key]) -> list[Result]:
        found = await context.read(
            lambda session: interaction_service.counts_by_channel(session, auth, ids)
        )
        return [found.get(contact_id, {}) for contact_id in ids]

    return DataLoader(load_fn=load)
