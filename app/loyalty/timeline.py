"""Ledger entries on a contact's timeline (kind ``loyalty``), for every programme the contact
is a member of."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Select, literal_column, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.dependencies import AuthContext
from app.auth.scopes import Scope
from app.loyalty.service import loyalty as loyalty_service
from app.models import LoyaltyAccount, LoyaltyEntry
from app.timeline.registry import (
    LoadedEntry,
    TimelineFilter,
    TimelineSource,
    narrowed,
    register_timeline_source,
)

_VERBS = {
    "earn": "Earned",
    "redeem": "Redeemed",
    "adjust": "Adjusted",
    "expire": "Expired",
    "reverse": "Reversed",
    "release": "Released",
}


def _entries_of(
    workspace_id: uuid.UUID, contact_id: uuid.UUID, filters: TimelineFilter
) -> Select[datetime, uuid.UUID]:
    # Through the account: entries are immutable, and a contact merge re-points accounts.
    statement = (
        select(LoyaltyEntry.recorded_at.label("occurred_at"), LoyaltyEntry.id)
        .join(
            LoyaltyAccount,
            (LoyaltyAccount.workspace_id == LoyaltyEntry.workspace_id)
            & (LoyaltyAccount.id == LoyaltyEntry.account_id),
        )
        .where(LoyaltyAccount.workspace_id == workspace_id, LoyaltyAccount.contact_id == contact_id)
    )
    # Ledger entries have no channel: a channel filter leaves them out.
    return narrowed(
        statement,
        filters,
        occurred_at=LoyaltyEntry.recorded_at,
        channel=literal_column("CAST(NULL AS varchar)"),
    )


def entry_summary(entry: LoyaltyEntry) -> str:
    points = abs(entry.amount) if entry.kind != "release" else entry.available_change
    text = f"{_VERBS[entry.kind]} {points:,} points"
    if entry.reason:
        text += f": {entry.reason}"
    return text


async def _load(
    session: AsyncSession, auth: AuthContext, ids: Sequence[uuid.UUID], /, *, with_data: bool
) -> dict[uuid.UUID, LoadedEntry]:
    found = await loyalty_service.entries_by_id(session, auth, ids)
    return {
        entry_id: LoadedEntry(
            channel=None,
            summary=entry_summary(row),
            data=loyalty_service.entry_schema(row).model_dump(mode="json") if with_data else None,
        )
        for entry_id, row in found.items()
    }


register_timeline_source(
    TimelineSource(kind="loyalty", scope=Scope.loyalty_read, entries_of=_entries_of, load=_load)
)
