from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.kit.pagination import Keyset
from app.models import Lead


@dataclass(frozen=True)
class LeadFilters:
    statuses: Sequence[str] = ()
    owner: str | None = None
    source: str | None = None
    email: str | None = None


class LeadRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(
        self, workspace_id: uuid.UUID, lead_id: uuid.UUID, *, for_update: bool = False
    ) -> Lead | None:
        statement = select(Lead).where(Lead.workspace_id == workspace_id, Lead.id == lead_id)
        if for_update:
            statement = statement.with_for_update().execution_options(populate_existing=True)
        return (await self.session.execute(statement)).scalars().one_or_none()

    def _filtered(self, workspace_id: uuid.UUID, filters: LeadFilters) -> Select[Any]:
        statement = select(Lead).where(Lead.workspace_id == workspace_id)
        if filters.statuses:
            statement = statement.where(Lead.status.in_(list(filters.statuses)))
        if filters.owner is not None:
            statement = statement.where(Lead.owner == filters.owner)
        if filters.source is not None:
            statement = statement.where(Lead.source == filters.source)
        if filters.email is not None:
            statement = statement.where(Lead.email == filters.email)
        return statement

    async def find(
        self, workspace_id: uuid.UUID, filters: LeadFilters, keyset: Keyset
    ) -> list[Lead]:
        statement = keyset.apply(self._filtered(workspace_id, filters))
        return list((await self.session.execute(statement)).scalars().all())

    def add(self, lead: Lead) -> None:
        self.session.add(lead)

    async def delete(self, lead: Lead) -> None:
        await self.session.execute(
            delete(Lead).where(Lead.workspace_id == lead.workspace_id, Lead.id == lead.id)
        )
