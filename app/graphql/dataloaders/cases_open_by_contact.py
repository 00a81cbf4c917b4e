"""Each contact's newest cases (by default those not yet resolved), in one batch per shape."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.dataloader import DataLoader

from app.auth.scopes import Scope
from app.case import schemas
from app.case.service import case as case_service
from app.graphql.dataloaders import grouped_loader

if TYPE_CHECKING:
    from app.graphql.context import Context

Key = tuple[uuid.UUID, int, tuple[str, ...]]  # (contact id, how many, statuses)
Result = list[schemas.Case]


def cases_by_contact(context: Context) -> DataLoader[Key, Result]:
    auth = context.require(Scope.cases_read)

    async def newest(
        session: AsyncSession, ids: list[uuid.UUID], shape: tuple[Any, ...]
    ) -> dict[uuid.UUID, list[schemas.Case]]:
        grouped = await case_service.open_for_contacts(session, auth, ids, *shape)
        rows = [row for group in grouped.values() for row in group]
        bodies = {b.id: b for b in await case_service.schemas_of(session, auth, rows)}
        return {key: [bodies[row.id] for row in group] for key, group in grouped.items()}

    return grouped_loader(context, newest)
