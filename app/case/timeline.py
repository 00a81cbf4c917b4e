"""Cases on a contact's timeline: an entry when a case is opened (kind ``case``) and one for
each later status change (kind ``case_status``: opened, waiting, resolved, reopened, closed)."""

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
from app.models import Case, CaseHistory
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
    session: AsyncSession, auth: AuthContext, ids: Sequence[uuid.UUID], /, *, with_data: bool
) -> dict[uuid.UUID, LoadedEntry]:
    found = await case_service.get_many(session, auth, ids)
    rows = list(found.values())
    # The record's SLA, history and partner ids are reads of their own: only when shown.
    bodies = await case_service.schemas_of(session, auth, rows) if with_data else None
    return {
        row.id: LoadedEntry(
            channel=row.channel,
            summary=f"{format_number(row.number)} ({row.status}, {row.priority}): {row.subject}",
            data=bodies[index].model_dump(mode="json") if bodies is not None else None,
        )
        for index, row in enumerate(rows)
    }


def _changes_of(
    workspace_id: uuid.UUID, contact_id: uuid.UUID, filters: TimelineFilter
) -> Select[datetime, uuid.UUID]:
    statement = (
        select(CaseHistory.at.label("occurred_at"), CaseHistory.id)
        .join(
            Case, (Case.workspace_id == CaseHistory.workspace_id) & (Case.id == CaseHistory.case_id)
        )
        .where(
            CaseHistory.workspace_id == workspace_id,
            Case.contact_id == contact_id,
            CaseHistory.field == "status",
            CaseHistory.from_value.is_not(None),
        )
    )
    return narrowed(statement, filters, occurred_at=CaseHistory.at, channel=Case.channel)


_VERBS = {"open": "opened", "pending": "waiting", "resolved": "resolved", "closed": "closed"}


async def _load_changes(
    session: AsyncSession, auth: AuthContext, ids: Sequence[uuid.UUID], /, *, with_data: bool
) -> dict[uuid.UUID, LoadedEntry]:
    loaded = {}
    for change, case in await case_service.status_changes(session, auth, ids):
        verb = (
            "reopened"
            if change.from_value == "resolved" and change.to_value == "open"
            else (_VERBS.get(change.to_value or "", change.to_value or ""))
        )
        why = f" ({change.reason})" if change.reason else ""
        loaded[change.id] = LoadedEntry(
            channel=case.channel,
            summary=f"{format_number(case.number)} {verb}{why}: {case.subject}",
            data={
                **case_service.history_schema(change).model_dump(mode="json"),
                "number": format_number(case.number),
                "subject": case.subject,
            }
            if with_data
            else None,
        )
    return loaded


register_timeline_source(
    TimelineSource(kind="case", scope=Scope.cases_read, entries_of=_entries_of, load=_load)
)
register_timeline_source(
    TimelineSource(
        kind="case_status", scope=Scope.cases_read, entries_of=_changes_of, load=_load_changes
    )
)
