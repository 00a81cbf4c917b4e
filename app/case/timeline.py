"""Cases on a contact's timeline: one entry per case, at its creation."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.dependencies import AuthContext
from app.auth.scopes import Scope
from app.case.service import case as case_service
from app.case.service import format_number
from app.models import Case
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
    statement = select(Case.created_at.label("occurred_at"), Case.id).where(
        Case.workspace_id == workspace_id, Case.contact_id == contact_id
    )
    return narrowed(statement, filters, occurred_at=Case.created_at, channel=Case.channel)


async def _load(
    session: AsyncSession, auth: AuthContext, ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, LoadedEntry]:
    found = await case_service.get_many(session, auth, ids)
    rows = list(found.values())
    bodies = await case_service.schemas_of(session, auth, rows)
    return {
        row.id: LoadedEntry(
            channel=row.channel,
            summary=f"{format_number(row.number)} ({row.status}, {row.priority}): {row.subject}",
            data=body.model_dump(mode="json"),
        )
        for row, body in zip(rows, bodies, strict=True)
    }


register_timeline_source(
    TimelineSource(kind="case", scope=Scope.cases_read, entries_of=_entries_of, load=_load)
)
