"""What a contact's timeline is made of: each module registers its kind of entry.

A source says how to find a contact's entries (a select of ``occurred_at`` and ``id``, newest
first, already filtered) and how to load a page's worth of them. The timeline merges the
sources in one statement; a module that adds entries registers a source when it is imported,
without editing the timeline.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.dependencies import AuthContext
from app.auth.scopes import Scope


@dataclass(frozen=True)
class TimelineFilter:
    kinds: Sequence[str] = ()
    channels: Sequence[str] = ()
    occurred_after: datetime | None = None
    occurred_before: datetime | None = None


def narrowed(
    statement: Select[datetime, uuid.UUID],
    filters: TimelineFilter,
    *,
    occurred_at: Any,
    channel: Any,
) -> Select[datetime, uuid.UUID]:
    """A source's entries limited to the filter's channels and time range."""
    if filters.channels:
        statement = statement.where(channel.in_(list(filters.channels)))
    if filters.occurred_after is not None:
        statement = statement.where(occurred_at >= filters.occurred_after)
    if filters.occurred_before is not None:
        statement = statement.where(occurred_at < filters.occurred_before)
    return statement


@dataclass(frozen=True)
class LoadedEntry:
    """An entry's presentation: its channel, a one-line summary and, when asked for, its full
    record."""

    channel: str | None
    summary: str
    data: dict[str, Any] | None = None


# (workspace id, contact id, filter) -> SELECT occurred_at, id ... of the contact's entries.
# The workspace and contact ids come as bound parameters (the statement is built once and run
# for every contact): compare columns with them, never use them as Python values.
EntriesOf = Callable[[Any, Any, TimelineFilter], Select[datetime, uuid.UUID]]


class LoadEntries(Protocol):
    """The entries with these ids. ``data`` only ``with_data``: a caller showing summaries only
    spares the reads and the rendering that the full record takes."""

    def __call__(
        self,
        session: AsyncSession,
        auth: AuthContext,
        ids: Sequence[uuid.UUID],
        /,
        *,
        with_data: bool,
    ) -> Awaitable[dict[uuid.UUID, LoadedEntry]]: ...


@dataclass(frozen=True)
class TimelineSource:
    kind: str
    # Keys without this scope do not see these entries (the rest of the timeline stays).
    scope: Scope
    entries_of: EntriesOf
    load: LoadEntries


_sources: dict[str, TimelineSource] = {}


def register_timeline_source(source: TimelineSource) -> None:
    _sources[source.kind] = source


def timeline_sources() -> list[TimelineSource]:
    return [_sources[kind] for kind in sorted(_sources)]
