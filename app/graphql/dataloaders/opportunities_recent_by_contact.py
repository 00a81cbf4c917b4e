"""Each contact's most recently updated opportunities, in one query per page size and status
set asked for."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.dataloader import DataLoader

from app.auth.scopes import Scope
from app.models import Opportunity
from app.opportunity.service import opportunity as opportunity_service

if TYPE_CHECKING:
    from app.graphql.context import Context

Key = tuple[uuid.UUID, int, tuple[str, ...]]  # (contact id, how many, statuses)
Result = list[Opportunity]


def opportunities_recent_by_contact(context: Context) -> DataLoader[Key, Result]:
    auth = context.require(Scope.opportunities_read)

    async def load(keys: Sequence[Key]) -> list[Result]:
        batches: dict[tuple[int, tuple[str, ...]], list[uuid.UUID]] = {}
        for contact_id, size, statuses in keys:
            batches.setdefault((size, statuses), []).append(contact_id)
        found: dict[Key, Result] = {}
        for (size, statuses), contact_ids in batches.items():

            async def newest(
                session: AsyncSession,
                ids: list[uuid.UUID] = contact_ids,
                n: int = size,
                wanted: tuple[str, ...] = statuses,
            ) -> dict[uuid.UUID, list[Opportunity]]:
                return await opportunity_service.recent_for_contacts(session, auth, ids, n, wanted)

            grouped = await context.read(newest)
            for contact_id in contact_ids:
                found[(contact_id, size, statuses)] = grouped.get(contact_id, [])
        return [found[key] for key in keys]

    return DataLoader(load_fn=load)
