"""Interactions on a contact's timeline."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.dependencies import AuthContext
from app.auth.scopes import Scope
from app.interaction.service import interaction as interaction_service
from app.models import Interaction
from app.timeline.registry import (
    LoadedEntry,
    TimelineFilter,
    TimelineSource,
    narrowed,
    register_timeline_source,
)


def _entries_of(
    workspace_id: uuid.UUID, contact_id: uuid.UUID, filters: TimelineFilter
) -> Select[datetime, uuid.UUID]:
    statement = select(Interaction.occurred_at, Interaction.id).where(
        Interaction.workspace_id == workspace_id, Interaction.contact_id == contact_id
    )
    return narrowed(
        statement, filters, occurred_at=Interaction.occurred_at, channel=Interaction.channel
    )


def summary_of(interaction: Interaction) -> str:
    what = interaction.type.replace("_", " ")
    direction = f"{interaction.direction} " if interaction.direction else ""
    headline = f"{direction}{what} via {interaction.channel.replace('_', ' ')}"
    return f"{headline}: {interaction.subject}" if interaction.subject else headline


async def _load(
    session: AsyncSession, auth: AuthContext, ids: Sequence[uuid.UUID], /, *, with_data: bool
) -> dict[uuid.UUID, LoadedEntry]:
    found = await interaction_service.get_many(session, auth, ids)
    return {
        interaction_id: LoadedEntry(
            channel=row.channel,
            summary=summary_of(row),
            data=interaction_service.to_schema(row).model_dump(mode="json") if with_data else None,
        )
        for interaction_id, row in found.items()
    }


register_timeline_source(
    TimelineSource(
        kind="interaction",
        scope=Scope.interactions_read,
        entries_of=_entries_of,
        load=_load,
    )
)
