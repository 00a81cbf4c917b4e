"""A contact's history in GraphQL: interactions, purchases, the timeline and a summary.

Fields of ``Contact``. The first page of interactions and purchases and the summary come from
DataLoaders, so a list of contacts costs a fixed number of statements whatever its length and
whatever the length of each history; later pages (``after``) and filtered pages are one query
per contact.
"""

from __future__ import annotations

import dataclasses
import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from app.auth.scopes import Scope
from app.graphql.common import selects
from app.graphql.context import Context
from app.graphql.dataloaders.interaction_counts_by_contact import interaction_counts_by_contact
from app.graphql.dataloaders.interaction_open_feedback_by_contact import (
    interaction_open_feedback_by_contact,
)
from app.graphql.dataloaders.interaction_recent_by_contact import interaction_recent_by_contact
from app.graphql.dataloaders.purchase_summary_by_contact import purchase_summary_by_contact
from app.graphql.dataloaders.purchases_recent_by_contact import purchases_recent_by_contact
from app.graphql.relay import Connection, Edge, page_of, page_size
from app.interaction.graphql import InteractionFilter, InteractionType
from app.interaction.graphql import connection as interaction_connection
from app.interaction.service import MAX_PER_CONTACT
from app.interaction.service import interaction as interaction_service
from app.opportunity.graphql import OpportunityType, contact_opportunities
from app.purchase.graphql import PurchaseSummaryType, PurchaseType
from app.purchase.graphql import connection as purchase_connection
from app.purchase.graphql import cursor_of as purchase_cursor_of
from app.purchase.service import MAX_RECENT, PurchaseQuery
from app.purchase.service import purchase as purchase_service
from app.timeline import service as timeline_service
from app.timeline.registry import TimelineFilter

if TYPE_CHECKING:
    from app.contact.graphql import ContactType

OPEN_FEEDBACK_DEFAULT = 5


@strawberry.type(name="TimelineEntry")
class TimelineEntryType:
    kind: str
    id: uuid.UUID
    occurred_at: datetime
    channel: str | None
    summary: str
    data: JSON = strawberry.field(description="The record as its own REST endpoint returns it.")


@strawberry.input
class TimelineFilterInput:
    kinds: list[str] | None = None
    channels: list[str] | None = None
    occurred_after: datetime | None = None
    occurred_before: datetime | None = None


@strawberry.type(name="ChannelCount")
class ChannelCountType:
    channel: str
    count: int


@strawberry.type(name="ContactSummary")
class ContactSummaryType:
    contact_id: strawberry.Private[uuid.UUID]

    @strawberry.field(description="Interactions on every channel. Needs `interactions:read`.")
    async def interaction_count(self, info: Info[Context, None]) -> int | None:
        counts = await info.context.loaders.get(interaction_counts_by_contact).load(self.contact_id)
        return sum(counts.values())

    @strawberry.field(description="Interactions per channel. Needs `interactions:read`.")
    async def interactions_by_channel(
        self, info: Info[Context, None]
    ) -> list[ChannelCountType] | None:
        counts = await info.context.loaders.get(interaction_counts_by_contact).load(self.contact_id)
        return [ChannelCountType(channel=c, count=n) for c, n in sorted(counts.items())]

    @strawberry.field(
        description="Negative or urgent feedback not yet resolved, newest first. Needs "
        "`interactions:read`."
    )
    async def open_feedback(
        self, info: Info[Context, None], first: int = OPEN_FEEDBACK_DEFAULT
    ) -> list[InteractionType] | None:
        rows = await info.context.loaders.get(interaction_open_feedback_by_contact).load(
            (self.contact_id, first)
        )
        return [InteractionType.from_model(row) for row in rows]

    @strawberry.field(description="Purchases at a glance. Needs `purchases:read`.")
    async def purchases(self, info: Info[Context, None]) -> PurchaseSummaryType | None:
        info.context.require(Scope.purchases_read)
        summary = await info.context.loaders.get(purchase_summary_by_contact).load(self.contact_id)
        return PurchaseSummaryType.from_schema(summary)


async def interactions(
    root: ContactType,
    info: Info[Context, None],
    first: int | None = None,
    after: str | None = None,
    filter: InteractionFilter | None = None,
) -> Connection[InteractionType] | None:
    auth = info.context.require(Scope.interactions_read)
    size = page_size(first)
    if after is None and filter is None and size < MAX_PER_CONTACT:
        rows = await info.context.loaders.get(interaction_recent_by_contact).load(
            (root.id, size + 1)
        )
        more = len(rows) > size
        page = rows[:size]
        next_cursor = interaction_service.cursor_of(page[-1], None) if more else None
        return interaction_connection(page, next_cursor, None)
    query = dataclasses.replace((filter or InteractionFilter()).as_query(), contact_id=root.id)
    rows, next_cursor = await info.context.read(
        lambda session: interaction_service.find(
            session, auth, query, limit=size, cursor=after, sort=None
        )
    )
    return interaction_connection(rows, next_cursor, None)


async def purchases(
    root: ContactType,
    info: Info[Context, None],
    first: int | None = None,
    after: str | None = None,
) -> Connection[PurchaseType] | None:
    auth = info.context.require(Scope.purchases_read)
    size = page_size(first)
    if after is None and size < MAX_RECENT:
        rows = await info.context.loaders.get(purchases_recent_by_contact).load((root.id, size + 1))
        page, more = rows[:size], len(rows) > size
        next_cursor = purchase_cursor_of(page[-1], None) if more else None
    else:
        query = PurchaseQuery(contact_id=root.id)
        page, next_cursor = await info.context.read(
            lambda session: purchase_service.find(
                session, auth, query, limit=size, cursor=after, sort=None
            )
        )
    return purchase_connection(page, next_cursor, None)


async def opportunities(
    root: ContactType,
    info: Info[Context, None],
    first: int | None = None,
    after: str | None = None,
    statuses: list[str] | None = None,
) -> Connection[OpportunityType] | None:
    return await contact_opportunities(root, info, first, after, statuses)


async def timeline(
    root: ContactType,
    info: Info[Context, None],
    first: int | None = None,
    after: str | None = None,
    filter: TimelineFilterInput | None = None,
) -> Connection[TimelineEntryType] | None:
    auth = info.context.require(Scope.contacts_read)
    criteria = filter or TimelineFilterInput()
    filters = TimelineFilter(
        kinds=criteria.kinds or (),
        channels=criteria.channels or (),
        occurred_after=criteria.occurred_after,
        occurred_before=criteria.occurred_before,
    )
    size = page_size(first)
    # Each entry's full record is read and rendered only for a query that shows it.
    with_data = any(
        selects(field.selections, "edges", "node", "data") for field in info.selected_fields
    )
    entries, next_cursor = await info.context.read(
        # A Contact is one this request read as live (the root fields, lists and loaders
        # leave out merged and missing contacts): its liveness is not checked again.
        lambda session: timeline_service.page(
            session,
            auth,
            root.id,
            filters,
            limit=size,
            cursor=after,
            known_live=True,
            with_data=with_data,
        )
    )
    edges = [
        Edge(
            node=TimelineEntryType(
                kind=entry.kind,
                id=entry.id,
                occurred_at=entry.occurred_at,
                channel=entry.channel,
                summary=entry.summary,
                data=cast(Any, entry.data),
            ),
            cursor=timeline_service.cursor_of(entry),
        )
        for entry in entries
    ]
    return page_of(edges, next_cursor)


def summary(root: ContactType) -> ContactSummaryType:
    return ContactSummaryType(contact_id=root.id)
