"""Each contact's newest cases (by default those not yet resolved), in one batch per shape."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.dataloader import DataLoader

from app.auth.scopes import Scope
from app.case import schemas
from app.case.service import case as case_service

if TYPE_CHECKING:
    from app.graphql.context import Context

Key = tuple[uuid.UUID, int, tuple[str, ...]]  # (contact id, how many, statuses)
Result = list[schemas.Case]


def cases_by_contact(context: Context) -> DataLoader[Key, Result]:
    auth = context.require(Scope.cases_read)

    async def load(keys: Sequence[Key]) -> list[Result]:
        by_shape: dict[tuple[int, tuple[str, ...]], list[uuid.UUID]] = {}
        for contact_id, size, statuses in keys:
            by_shape.setdefault((size, statuses), []).append(contact_id)
        found: dict[Key, Result] = {}
        for (size, statuses), contact_ids in by_shape.items():

            async def newest(
                session: AsyncSession,
                ids: list[uuid.UUID] = contact_ids,
                n: int = size,
                wanted: tuple[str, ...] = statuses,
            ) -> dict[uuid.UUID, list[schemas.Case]]:
                grouped = await case_service.open_for_contacts(session, auth, ids, n, wanted)
                rows = [row for group in grouped.values() for row in group]
                bodies = {b.id: b for b in await case_service.schemas_of(session, auth, rows)}
                return {key: [bodies[row.id] for row in group] for key, group in grouped.items()}

            grouped = await context.read(newest)
            for contact_id in contact_ids:
                found[(contact_id, size, statuses)] = grouped.get(contact_id, [])
        return [found[key] for key in keys]

    return DataLoader(load_fn=load)
