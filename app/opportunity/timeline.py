"""Opportunity stage changes on a contact's timeline (including the stage it was created in)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from babel.numbers import format_currency
from sqlalchemy import Select, false, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.dependencies import AuthContext
from app.auth.scopes import Scope
from app.kit.money import Money
from app.models import Opportunity, OpportunityStageChange
from app.opportunity.service import opportunity as opportunity_service
from app.timeline.registry import (
    LoadedEntry,
    TimelineFilter,
    TimelineSource,
    register_timeline_source,
)


def _changes_of(
    workspace_id: uuid.UUID, contact_id: uuid.UUID, filters: TimelineFilter
) -> Select[datetime, uuid.UUID]:
    statement = (
        select(OpportunityStageChange.changed_at.label("occurred_at"), OpportunityStageChange.id)
        .join(
            Opportunity,
            (Opportunity.workspace_id == OpportunityStageChange.workspace_id)
            & (Opportunity.id == OpportunityStageChange.opportunity_id),
        )
        .where(
            OpportunityStageChange.workspace_id == workspace_id,
            Opportunity.contact_id == contact_id,
        )
    )
    if filters.channels:
        # A stage change happens on no channel.
        statement = statement.where(false())
    if filters.occurred_after is not None:
        statement = statement.where(OpportunityStageChange.changed_at >= filters.occurred_after)
    if filters.occurred_before is not None:
        statement = statement.where(OpportunityStageChange.changed_at < filters.occurred_before)
    return statement


def change_summary(change: OpportunityStageChange, opportunity: Opportunity) -> str:
    amount = Money.from_minor_units(opportunity.amount_minor, opportunity.currency)
    worth = format_currency(amount.amount, opportunity.currency, locale="en")
    name = f"Opportunity {opportunity.name!r} ({worth})"
    if change.from_stage_name is None:
        return f"{name} opened in {change.to_stage_name}"
    if change.to_status == "won" and change.from_status != "won":
        return f"{name} won"
    if change.to_status == "lost" and change.from_status != "lost":
        return f"{name} lost: {change.loss_reason}"
    if change.to_status == "open" and change.from_status != "open":
        return f"{name} reopened in {change.to_stage_name}"
    return f"{name} moved from {change.from_stage_name} to {change.to_stage_name}"


async def _load_changes(
    session: AsyncSession, auth: AuthContext, ids: Sequence[uuid.UUID], /, *, with_data: bool
) -> dict[uuid.UUID, LoadedEntry]:
    rows = await opportunity_service.changes_with_opportunity(
        session, auth, ids, with_children=with_data
    )
    return {
        change.id: LoadedEntry(
            channel=None,
            summary=change_summary(change, opportunity),
            data={
                **opportunity_service.change_to_schema(change).model_dump(mode="json"),
                "opportunity": opportunity_service.to_schema(opportunity).model_dump(mode="json"),
            }
            if with_data
            else None,
        )
        for change, opportunity in rows
    }


register_timeline_source(
    TimelineSource(
        kind="opportunity",
        scope=Scope.opportunities_read,
        entries_of=_changes_of,
        load=_load_changes,
    )
)
