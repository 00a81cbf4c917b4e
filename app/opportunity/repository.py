from __future__ import annotations

import functools
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import Select, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload, selectinload

from app.db.pairs import pair_owners
from app.db.params import in_texts, in_uuids, newest_per_contact, uuid_param
from app.kit.pagination import Keyset
from app.models import (
    Contact,
    Opportunity,
    OpportunityExternalId,
    OpportunityStageChange,
    Pipeline,
    PipelineStage,
    Workspace,
)


@dataclass(frozen=True)
class OpportunityFilters:
    pipeline_id: uuid.UUID | None = None
    stage_ids: Sequence[uuid.UUID] = ()
    statuses: Sequence[str] = ()
    owner: str | None = None
    contact_id: uuid.UUID | None = None
    account_id: uuid.UUID | None = None
    currency: str | None = None
    amount_min_minor: int | None = None
    amount_max_minor: int | None = None
    close_from: date | None = None
    close_to: date | None = None


def _with_children(statement: Select[Any]) -> Select[Any]:
    return statement.options(
        joinedload(Opportunity.stage),
        selectinload(Opportunity.competitors),
        selectinload(Opportunity.external_ids),
    )


class PipelineRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(
        self, workspace_id: uuid.UUID, pipeline_id: uuid.UUID, *, for_update: bool = False
    ) -> Pipeline | None:
        statement = (
            select(Pipeline)
            .where(Pipeline.workspace_id == workspace_id, Pipeline.id == pipeline_id)
            .options(selectinload(Pipeline.stages))
        )
        if for_update:
            statement = statement.with_for_update(of=Pipeline).execution_options(
                populate_existing=True
            )
        return (await self.session.execute(statement)).scalars().one_or_none()

    async def default(self, workspace_id: uuid.UUID) -> Pipeline | None:
        statement = (
            select(Pipeline)
            .where(Pipeline.workspace_id == workspace_id, Pipeline.is_default)
            .options(selectinload(Pipeline.stages))
        )
        return (await self.session.execute(statement)).scalars().one_or_none()

    async def all(self, workspace_id: uuid.UUID) -> list[Pipeline]:
        statement = (
            select(Pipeline)
            .where(Pipeline.workspace_id == workspace_id)
            .options(selectinload(Pipeline.stages))
            .order_by(Pipeline.is_default.desc(), Pipeline.name, Pipeline.id)
        )
        return list((await self.session.execute(statement)).scalars().all())

    async def name_taken(
        self, workspace_id: uuid.UUID, name: str, except_id: uuid.UUID | None = None
    ) -> bool:
        statement = select(Pipeline.id).where(
            Pipeline.workspace_id == workspace_id, func.lower(Pipeline.name) == name.lower()
        )
        if except_id is not None:
            statement = statement.where(Pipeline.id != except_id)
        return (await self.session.execute(statement.limit(1))).first() is not None

    async def clear_default(self, workspace_id: uuid.UUID, except_id: uuid.UUID) -> None:
        await self.session.execute(
            update(Pipeline)
            .where(
                Pipeline.workspace_id == workspace_id,
                Pipeline.is_default,
                Pipeline.id != except_id,
            )
            .values(is_default=False, version=Pipeline.version + 1, updated_at=func.now())
            .execution_options(synchronize_session=False)
        )

    async def stage_counts(
        self, workspace_id: uuid.UUID, pipeline_id: uuid.UUID
    ) -> dict[uuid.UUID, int]:
        result = await self.session.execute(
            select(Opportunity.stage_id, func.count())
            .where(Opportunity.workspace_id == workspace_id, Opportunity.pipeline_id == pipeline_id)
            .group_by(Opportunity.stage_id)
        )
        return {row[0]: int(row[1]) for row in result}

    async def workspace_timezone(self, workspace_id: uuid.UUID) -> str:
        result = await self.session.execute(
            select(Workspace.timezone).where(Workspace.id == workspace_id)
        )
        return result.scalar_one_or_none() or "UTC"

    def add(self, row: Any) -> None:
        self.session.add(row)

    async def delete(self, pipeline: Pipeline) -> None:
        await self.session.execute(
            delete(Pipeline).where(
                Pipeline.workspace_id == pipeline.workspace_id, Pipeline.id == pipeline.id
            )
        )


class OpportunityRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def hold_contact(
        self, workspace_id: uuid.UUID, contact_id: uuid.UUID
    ) -> tuple[bool, uuid.UUID | None]:
        """Whether the contact exists and whom it was merged into; held FOR KEY SHARE so that
        a concurrent merge waits and then re-points the new row with the others."""
        result = await self.session.execute(
            select(Contact.merged_into_id)
            .where(Contact.workspace_id == workspace_id, Contact.id == contact_id)
            .with_for_update(read=True, key_share=True)
        )
        row = result.one_or_none()
        if row is None:
            return False, None
        return True, row.merged_into_id

    async def get(
        self, workspace_id: uuid.UUID, opportunity_id: uuid.UUID, *, for_update: bool = False
    ) -> Opportunity | None:
        if for_update:
            # The lock is taken on the row alone: locking through the join to the stage would
            # drop the row when a concurrent move changed its stage (PostgreSQL re-checks the
            # join against the stage row it read first), and the caller would see a 404.
            locked = await self.session.execute(
                select(Opportunity.id)
                .where(Opportunity.workspace_id == workspace_id, Opportunity.id == opportunity_id)
                .with_for_update()
            )
            if locked.first() is None:
                return None
        statement = _with_children(
            select(Opportunity).where(
                Opportunity.workspace_id == workspace_id, Opportunity.id == opportunity_id
            )
        )
        if for_update:
            statement = statement.execution_options(populate_existing=True)
        found: Opportunity | None = (await self.session.execute(statement)).scalars().one_or_none()
        return found

    async def get_many(
        self, workspace_id: uuid.UUID, ids: Iterable[uuid.UUID]
    ) -> list[Opportunity]:
        statement = _with_children(
            select(Opportunity).where(
                Opportunity.workspace_id == workspace_id, Opportunity.id.in_(list(ids))
            )
        )
        return list((await self.session.execute(statement)).scalars().all())

    async def existing_ids(
        self, workspace_id: uuid.UUID, ids: Iterable[uuid.UUID]
    ) -> set[uuid.UUID]:
        result = await self.session.execute(
            select(Opportunity.id).where(
                Opportunity.workspace_id == workspace_id, Opportunity.id.in_(list(ids))
            )
        )
        return set(result.scalars().all())

    async def stages(
        self, workspace_id: uuid.UUID, stage_ids: Iterable[uuid.UUID]
    ) -> dict[uuid.UUID, PipelineStage]:
        wanted = list(set(stage_ids))
        if not wanted:
            return {}
        result = await self.session.execute(
            select(PipelineStage).where(
                PipelineStage.workspace_id == workspace_id, PipelineStage.id.in_(wanted)
            )
        )
        return {row.id: row for row in result.scalars().all()}

    def _filtered(self, workspace_id: uuid.UUID, filters: OpportunityFilters) -> Select[Any]:
        statement = select(Opportunity).where(Opportunity.workspace_id == workspace_id)
        column_filters: list[tuple[Any, Any]] = [
            (Opportunity.pipeline_id, filters.pipeline_id),
            (Opportunity.owner, filters.owner),
            (Opportunity.contact_id, filters.contact_id),
            (Opportunity.account_id, filters.account_id),
            (Opportunity.currency, filters.currency),
        ]
        for column, value in column_filters:
            if value is not None:
                statement = statement.where(column == value)
        if filters.stage_ids:
            statement = statement.where(Opportunity.stage_id.in_(list(filters.stage_ids)))
        if filters.statuses:
            statement = statement.where(Opportunity.status.in_(list(filters.statuses)))
        if filters.amount_min_minor is not None:
            statement = statement.where(Opportunity.amount_minor >= filters.amount_min_minor)
        if filters.amount_max_minor is not None:
            statement = statement.where(Opportunity.amount_minor <= filters.amount_max_minor)
        if filters.close_from is not None:
            statement = statement.where(Opportunity.expected_close_date >= filters.close_from)
        if filters.close_to is not None:
            statement = statement.where(Opportunity.expected_close_date <= filters.close_to)
        return statement

    async def find(
        self, workspace_id: uuid.UUID, filters: OpportunityFilters, keyset: Keyset
    ) -> list[Opportunity]:
        statement = _with_children(keyset.apply(self._filtered(workspace_id, filters)))
        return list((await self.session.execute(statement)).scalars().all())

    async def recent_for_contacts(
        self,
        workspace_id: uuid.UUID,
        contact_ids: Sequence[uuid.UUID],
        per_contact: int,
        statuses: Sequence[str],
    ) -> list[Opportunity]:
        """Each contact's most recently updated ``per_contact`` opportunities, one statement
        (a LATERAL subquery per contact stops after ``per_contact`` rows)."""
        result = await self.session.execute(
            _recent_for_contacts(bool(statuses)),
            {"workspace_id": workspace_id, "contact_ids": list(contact_ids),
             "per_contact": per_contact, "statuses": list(statuses)},
        )  # fmt: skip
        return list(result.unique().scalars().all())

    async def history(
        self, workspace_id: uuid.UUID, opportunity_ids: Sequence[uuid.UUID]
    ) -> list[OpportunityStageChange]:
        statement = (
            select(OpportunityStageChange)
            .where(
                OpportunityStageChange.workspace_id == workspace_id,
                OpportunityStageChange.opportunity_id.in_(list(opportunity_ids)),
            )
            .order_by(
                OpportunityStageChange.opportunity_id,
                OpportunityStageChange.changed_at,
                OpportunityStageChange.id,
            )
        )
        return list((await self.session.execute(statement)).scalars().all())

    async def changes_by_id(
        self, workspace_id: uuid.UUID, ids: Sequence[uuid.UUID], *, with_children: bool = True
    ) -> list[tuple[OpportunityStageChange, Opportunity]]:
        result = await self.session.execute(
            _changes_by_id(with_children), {"workspace_id": workspace_id, "ids": list(ids)}
        )
        return [(row[0], row[1]) for row in result]

    async def by_external_id(
        self, workspace_id: uuid.UUID, system: str, value: str
    ) -> uuid.UUID | None:
        result = await self.session.execute(
            select(OpportunityExternalId.opportunity_id).where(
                OpportunityExternalId.workspace_id == workspace_id,
                OpportunityExternalId.system == system,
                OpportunityExternalId.value == value,
            )
        )
        return result.scalar_one_or_none()

    async def external_id_owners(
        self, workspace_id: uuid.UUID, pairs: Iterable[tuple[str, str]]
    ) -> dict[tuple[str, str], uuid.UUID]:
        return await pair_owners(
            self.session, OpportunityExternalId.__table__, "opportunity_id", workspace_id, pairs
        )

    def add(self, row: Any) -> None:
        self.session.add(row)

    async def delete(self, opportunity: Opportunity) -> None:
        await self.session.execute(
            delete(Opportunity).where(
                Opportunity.workspace_id == opportunity.workspace_id,
                Opportunity.id == opportunity.id,
            )
        )


@functools.cache
def _changes_by_id(with_children: bool) -> Select[OpportunityStageChange, Opportunity]:
    """Built once per variant with bound parameters (app.db.params): timelines read these."""
    statement = (
        select(OpportunityStageChange, Opportunity)
        .join(
            Opportunity,
            (Opportunity.workspace_id == OpportunityStageChange.workspace_id)
            & (Opportunity.id == OpportunityStageChange.opportunity_id),
        )
        .where(
            OpportunityStageChange.workspace_id == uuid_param("workspace_id"),
            in_uuids(OpportunityStageChange.id, "ids"),
        )
    )
    if with_children:
        statement = statement.options(
            joinedload(Opportunity.stage),
            selectinload(Opportunity.competitors),
            selectinload(Opportunity.external_ids),
        )
    return statement


@functools.cache
def _recent_for_contacts(by_status: bool) -> Select[Any]:
    """Built once per variant with bound parameters (app.db.params): the 360 view reads it."""
    statuses = [in_texts(Opportunity.status, "statuses")] if by_status else []
    return newest_per_contact(Opportunity, Opportunity.updated_at, *statuses).options(
        joinedload(Opportunity.stage),
        joinedload(Opportunity.competitors),
        joinedload(Opportunity.external_ids),
    )
