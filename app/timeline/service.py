"""A contact's timeline: every registered kind of entry, newest first, under one cursor."""

from __future__ import annotations

import functools
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, Integer, Select, bindparam, literal, select, tuple_, union_all
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.dependencies import AuthContext
from app.contact.service import contact as contact_service
from app.kit.errors import FieldError, InvalidCursor, ValidationFailed
from app.kit.pagination import _decode, _encode
from app.timeline.registry import TimelineFilter, TimelineSource, timeline_sources
from app.timeline.schemas import TimelineEntry

LISTING = "timeline"


def _after(cursor: str | None) -> tuple[datetime, uuid.UUID] | None:
    if not cursor:
        return None
    token, occurred_at, raw_id = _decode(cursor)
    if token != LISTING or not isinstance(occurred_at, str):
        raise InvalidCursor("The cursor belongs to a different listing")
    try:
        moment = datetime.fromisoformat(occurred_at)
        entry_id = uuid.UUID(str(raw_id))
    except ValueError:
        raise InvalidCursor() from None
    if moment.tzinfo is None:
        raise InvalidCursor()
    return moment, entry_id


def _visible_sources(auth: AuthContext, kinds: list[str]) -> list[TimelineSource]:
    sources = timeline_sources()
    known = {source.kind for source in sources}
    unknown = sorted(set(kinds) - known)
    if unknown:
        raise ValidationFailed(
            "Unknown timeline entry kind",
            errors=[FieldError(field="query.kind", message=f"one of: {', '.join(sorted(known))}")],
        )
    return [
        source
        for source in sources
        if auth.has(source.scope) and (not kinds or source.kind in kinds)
    ]


@functools.lru_cache(maxsize=128)
def _page_keys(
    sources: tuple[TimelineSource, ...], filters: TimelineFilter, after: bool
) -> Select[Any]:
    """One statement: each source's newest ``limit + 1`` keys, merged and cut to the page.

    Each branch is ordered and limited on its own (index order), so the cost is that of a few
    index range scans whatever the length of the history. Built once per shape (sources,
    filter, first or later page) with the workspace, contact, cursor and limit as bound
    parameters: constructing a union of sources costs more than running it.
    """
    workspace = bindparam("timeline_workspace", type_=PG_UUID(as_uuid=True))
    contact = bindparam("timeline_contact", type_=PG_UUID(as_uuid=True))
    limit = bindparam("timeline_limit", type_=Integer)
    branches = []
    for source in sources:
        keys = source.entries_of(workspace, contact, filters).subquery()
        branch = select(literal(source.kind).label("kind"), keys.c.occurred_at, keys.c.id)
        if after:
            branch = branch.where(
                tuple_(keys.c.occurred_at, keys.c.id)
                < tuple_(
                    bindparam("timeline_after_at", type_=DateTime(timezone=True)),
                    bindparam("timeline_after_id", type_=PG_UUID(as_uuid=True)),
                )
            )
        branches.append(branch.order_by(keys.c.occurred_at.desc(), keys.c.id.desc()).limit(limit))
    merged = union_all(*branches).subquery("entries")
    return (
        select(merged.c.kind, merged.c.occurred_at, merged.c.id)
        .order_by(merged.c.occurred_at.desc(), merged.c.id.desc())
        .limit(limit)
    )


async def page(
    session: AsyncSession,
    auth: AuthContext,
    contact_id: uuid.UUID,
    filters: TimelineFilter,
    *,
    limit: int,
    cursor: str | None,
    known_live: bool = False,
    with_data: bool = True,
) -> tuple[list[TimelineEntry], str | None]:
    """A page of the contact's timeline, newest first, and the cursor after it.

    Entry kinds whose scope the key lacks are left out, not refused. ``known_live``: the
    caller has read the contact as live in this transaction, so the check is not repeated.
    Without ``with_data``, entries come with an empty ``data``, for a caller that shows the
    summaries only.

    Raises:
        ContactNotFound / ContactMerged: no such live contact in the workspace.
        InvalidCursor: the cursor is malformed or from another listing.
        ValidationFailed: an unknown entry kind.
    """
    after = _after(cursor)
    if not known_live:
        await contact_service.require_live(session, auth, contact_id)
    sources = _visible_sources(auth, list(filters.kinds))
    if not sources:
        return [], None
    shape = TimelineFilter(
        kinds=tuple(filters.kinds),
        channels=tuple(filters.channels),
        occurred_after=filters.occurred_after,
        occurred_before=filters.occurred_before,
    )
    params: dict[str, Any] = {
        "timeline_workspace": auth.workspace_id,
        "timeline_contact": contact_id,
        "timeline_limit": limit + 1,
    }
    if after is not None:
        params["timeline_after_at"], params["timeline_after_id"] = after
    statement = _page_keys(tuple(sources), shape, after is not None)
    keys = (await session.execute(statement, params)).all()
    by_kind = {source.kind: source for source in sources}
    shown = keys[:limit]
    loaded: dict[str, dict[uuid.UUID, Any]] = {}
    for kind in dict.fromkeys(row.kind for row in shown):
        ids = [row.id for row in shown if row.kind == kind]
        loaded[kind] = await by_kind[kind].load(session, auth, ids, with_data=with_data)
    entries = []
    for row in shown:
        found = loaded[row.kind].get(row.id)
        if found is None:
            continue
        if with_data and found.data is None:
            raise RuntimeError(f"the {row.kind!r} timeline source loaded no record")
        entries.append(
            TimelineEntry(
                kind=row.kind,
                id=row.id,
                occurred_at=row.occurred_at,
                channel=found.channel,
                summary=found.summary,
                data=found.data if found.data is not None else {},
            )
        )
    next_cursor = None
    if len(keys) > limit and shown:
        last = shown[-1]
        next_cursor = _cursor(last.occurred_at, last.id)
    return entries, next_cursor


def _cursor(occurred_at: datetime, entry_id: uuid.UUID) -> str:
    return _encode([LISTING, occurred_at.isoformat(), str(entry_id)])


def cursor_of(entry: TimelineEntry) -> str:
    """The cursor that continues the timeline after ``entry``."""
    return _cursor(entry.occurred_at, entry.id)
