from __future__ import annotations

import functools
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    and_,
    bindparam,
    delete,
    func,
    literal_column,
    select,
    text,
    true,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased, with_expression

from app.db.pairs import pair_owners
from app.db.params import in_uuids, rows_among, uuid_array_param, uuid_param
from app.kit.ids import uuid7
from app.kit.pagination import Keyset
from app.models import Contact, Interaction, InteractionExternalId

# Column name and PostgreSQL array type of what ``insert_many`` sends per row.
_INSERT_COLUMNS = (
    ("id", "uuid"),
    ("contact_id", "uuid"),
    ("channel", "text"),
    ("direction", "text"),
    ("type", "text"),
    ("occurred_at", "timestamptz"),
    ("subject", "text"),
    ("body", "text"),
    ("agent_id", "text"),
    ("duration_seconds", "int"),
    ("attributes", "text"),
    ("feedback_kind", "text"),
    ("sentiment", "text"),
    ("score", "smallint"),
    ("score_scale", "text"),
    ("topic", "text"),
    ("urgency", "text"),
    ("needs_attention", "boolean"),
    ("attention_resolved_at", "timestamptz"),
    ("case_id", "uuid"),
    ("opportunity_id", "uuid"),
    ("campaign_id", "uuid"),
)
_INSERT_INTERACTIONS = text(
    "INSERT INTO interactions (workspace_id, version, "
    + ", ".join(name for name, _ in _INSERT_COLUMNS)
    + ") SELECT :workspace_id, 1, "
    + ", ".join(
        f"row.{name}::jsonb" if name == "attributes" else f"row.{name}"
        for name, _ in _INSERT_COLUMNS
    )
    + " FROM unnest("
    + ", ".join(f"CAST(:{name} AS {kind}[])" for name, kind in _INSERT_COLUMNS)
    + ") AS row("
    + ", ".join(name for name, _ in _INSERT_COLUMNS)
    + ") RETURNING id, created_at, updated_at"
)
_CLAIM_EXTERNAL_IDS = text(
    "INSERT INTO interaction_external_ids (workspace_id, system, value, interaction_id) "
    "SELECT :workspace_id, row.system, row.value, row.interaction_id FROM unnest("
    "CAST(:systems AS text[]), CAST(:values AS text[]), CAST(:interaction_ids AS uuid[])"
    ") AS row(system, value, interaction_id) "
    "ON CONFLICT (workspace_id, system, value) DO NOTHING RETURNING system, value"
)
_INSERT_EVENTS = text(
    "INSERT INTO outbox_events (workspace_id, id, type, aggregate_type, aggregate_id, data) "
    "SELECT :workspace_id, row.id, :type, 'interaction', row.aggregate_id, row.data::jsonb "
    "FROM unnest(CAST(:ids AS uuid[]), CAST(:aggregate_ids AS uuid[]), "
    "CAST(:data AS text[])) AS row(id, aggregate_id, data)"
)

# The ids travel as one array: an IN list of a batch's contacts is a thousand parameters to
# bind, and a statement of its own (prepared again) for every count of contacts.
_CONTACT_STATES = (
    select(Contact.id, Contact.merged_into_id)
    .where(Contact.workspace_id == uuid_param("workspace_id"), in_uuids(Contact.id, "contact_ids"))
    .with_for_update(read=True, key_share=True)
)
_COUNTS_BY_CHANNEL = (
    select(Interaction.contact_id, Interaction.channel, func.count())
    .where(
        Interaction.workspace_id == uuid_param("workspace_id"),
        in_uuids(Interaction.contact_id, "contact_ids"),
    )
    .group_by(Interaction.contact_id, Interaction.channel)
)


@dataclass(frozen=True)
class InteractionFilters:
    contact_id: uuid.UUID | None = None
    channels: Sequence[str] = ()
    types: Sequence[str] = ()
    direction: str | None = None
    feedback_kinds: Sequence[str] = ()
    sentiments: Sequence[str] = ()
    needs_attention: bool | None = None
    occurred_after: datetime | None = None
    occurred_before: datetime | None = None
    case_id: uuid.UUID | None = None
    opportunity_id: uuid.UUID | None = None
    campaign_id: uuid.UUID | None = None


def external_id_map(entity: Any = Interaction) -> ColumnElement[Any]:
    """``{system: value}`` of an interaction's external ids, as a correlated subquery."""
    return (
        select(
            func.coalesce(
                func.jsonb_object_agg(InteractionExternalId.system, InteractionExternalId.value),
                literal_column("'{}'::jsonb"),
            )
        )
        .where(
            InteractionExternalId.workspace_id == entity.workspace_id,
            InteractionExternalId.interaction_id == entity.id,
        )
        .scalar_subquery()
        .cast(JSONB)
    )


# Built once for the plain entity: constructing the expression costs more than running it.
_IDS_OPTION = with_expression(Interaction.external_id_map, external_id_map())


def _with_ids(statement: Select[Any], entity: Any = Interaction) -> Select[Any]:
    if entity is Interaction:
        return statement.options(_IDS_OPTION)
    return statement.options(with_expression(entity.external_id_map, external_id_map(entity)))


@functools.cache
def _interactions_by_id() -> Select[Any]:
    """Built once with bound parameters (app.db.params): it runs for every timeline page."""
    return _with_ids(rows_among(Interaction, Interaction.id)).execution_options(
        populate_existing=True
    )


def open_attention(entity: Any = Interaction) -> ColumnElement[bool]:
    """Feedback that needs attention and has not been dealt with."""
    return and_(entity.needs_attention.is_(True), entity.attention_resolved_at.is_(None))


class InteractionRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # -- reading -----------------------------------------------------------------------------
    async def get(
        self, workspace_id: uuid.UUID, interaction_id: uuid.UUID, *, for_update: bool = False
    ) -> Interaction | None:
        statement = _with_ids(
            select(Interaction).where(
                Interaction.workspace_id == workspace_id, Interaction.id == interaction_id
            )
        ).execution_options(populate_existing=True)
        if for_update:
            statement = statement.with_for_update(of=Interaction, key_share=True)
        found: Interaction | None = (await self.session.execute(statement)).scalar_one_or_none()
        return found

    async def get_many(
        self, workspace_id: uuid.UUID, interaction_ids: Iterable[uuid.UUID]
    ) -> list[Interaction]:
        result = await self.session.execute(
            _interactions_by_id(), {"workspace_id": workspace_id, "ids": list(interaction_ids)}
        )
        return list(result.scalars().all())

    def _filtered(self, workspace_id: uuid.UUID, filters: InteractionFilters) -> Select[Any]:
        statement = select(Interaction).where(Interaction.workspace_id == workspace_id)
        conditions: list[ColumnElement[bool]] = []
        if filters.contact_id is not None:
            conditions.append(Interaction.contact_id == filters.contact_id)
        if filters.channels:
            conditions.append(Interaction.channel.in_(list(filters.channels)))
        if filters.types:
            conditions.append(Interaction.type.in_(list(filters.types)))
        if filters.direction is not None:
            conditions.append(Interaction.direction == filters.direction)
        if filters.feedback_kinds:
            conditions.append(Interaction.feedback_kind.in_(list(filters.feedback_kinds)))
        if filters.sentiments:
            conditions.append(Interaction.sentiment.in_(list(filters.sentiments)))
        if filters.needs_attention is not None:
            attention = open_attention()
            conditions.append(attention if filters.needs_attention else ~attention)
        if filters.occurred_after is not None:
            conditions.append(Interaction.occurred_at >= filters.occurred_after)
        if filters.occurred_before is not None:
            conditions.append(Interaction.occurred_at < filters.occurred_before)
        for column, value in (
            (Interaction.case_id, filters.case_id),
            (Interaction.opportunity_id, filters.opportunity_id),
            (Interaction.campaign_id, filters.campaign_id),
        ):
            if value is not None:
                conditions.append(column == value)
        return statement.where(*conditions)

    async def find(
        self, workspace_id: uuid.UUID, filters: InteractionFilters, keyset: Keyset
    ) -> list[Interaction]:
        statement = _with_ids(keyset.apply(self._filtered(workspace_id, filters)))
        statement = statement.execution_options(populate_existing=True)
        return list((await self.session.execute(statement)).scalars().all())

    async def by_external_id(
        self, workspace_id: uuid.UUID, system: str, value: str
    ) -> uuid.UUID | None:
        result = await self.session.execute(
            select(InteractionExternalId.interaction_id).where(
                InteractionExternalId.workspace_id == workspace_id,
                InteractionExternalId.system == system,
                InteractionExternalId.value == value,
            )
        )
        return result.scalar_one_or_none()

    async def external_id_owners(
        self, workspace_id: uuid.UUID, pairs: Iterable[tuple[str, str]]
    ) -> dict[tuple[str, str], uuid.UUID]:
        return await pair_owners(
            self.session, InteractionExternalId.__table__, "interaction_id", workspace_id, pairs
        )

    async def contact_states(
        self, workspace_id: uuid.UUID, contact_ids: Iterable[uuid.UUID]
    ) -> dict[uuid.UUID, uuid.UUID | None]:
        """Contact id -> the survivor it was merged into (None for a live contact); unknown
        ids are absent. The rows are held (FOR KEY SHARE) until commit, so a contact cannot
        be deleted or merged away between this check and the insert that points at it."""
        wanted = list(set(contact_ids))
        if not wanted:
            return {}
        result = await self.session.execute(
            _CONTACT_STATES, {"workspace_id": workspace_id, "contact_ids": wanted}
        )
        return {row.id: row.merged_into_id for row in result}

    async def latest_per_contact(
        self,
        workspace_id: uuid.UUID,
        contact_ids: Sequence[uuid.UUID],
        limit: int,
        *,
        open_feedback_only: bool = False,
    ) -> list[Interaction]:
        if not contact_ids:
            return []
        result = await self.session.execute(
            _latest_per_contact(open_feedback_only),
            {
                "workspace_id": workspace_id,
                "contact_ids": list(dict.fromkeys(contact_ids)),
                "latest_limit": limit,
            },
        )
        return list(result.scalars().all())

    async def counts_by_channel(
        self, workspace_id: uuid.UUID, contact_ids: Sequence[uuid.UUID]
    ) -> list[tuple[uuid.UUID, str, int]]:
        if not contact_ids:
            return []
        result = await self.session.execute(
            _COUNTS_BY_CHANNEL,
            {"workspace_id": workspace_id, "contact_ids": list(set(contact_ids))},
        )
        return [(row[0], row[1], int(row[2])) for row in result]

    # -- writing -----------------------------------------------------------------------------
    async def insert_many(
        self, workspace_id: uuid.UUID, rows: Sequence[dict[str, Any]]
    ) -> dict[uuid.UUID, Any]:
        """Insert interactions in one statement; id -> (created_at, updated_at).

        Each column travels as one array parameter (``unnest``): a thousand rows cost one
        round trip and a few dozen parameters instead of tens of thousands.
        """
        if not rows:
            return {}
        params: dict[str, Any] = {"workspace_id": workspace_id}
        for name, _ in _INSERT_COLUMNS:
            params[name] = [row[name] for row in rows]
        params["attributes"] = [orjson.dumps(row["attributes"]).decode() for row in rows]
        result = await self.session.execute(_INSERT_INTERACTIONS, params)
        return {row.id: row for row in result}

    async def claim_external_ids(
        self, workspace_id: uuid.UUID, claims: Sequence[tuple[str, str, uuid.UUID]]
    ) -> set[tuple[str, str]]:
        """Insert (system, value, interaction id) rows; the pairs this transaction got.

        A pair another transaction holds is skipped (waiting for it to commit or roll back
        first), never an error: the caller then finds the winner and drops its own row.
        """
        if not claims:
            return set()
        # In one order for every transaction: two batches claiming overlapping pairs in
        # different orders would each wait for a pair the other holds (a deadlock).
        ordered = sorted(claims, key=lambda claim: (claim[0], claim[1]))
        result = await self.session.execute(
            _CLAIM_EXTERNAL_IDS,
            {
                "workspace_id": workspace_id,
                "systems": [system for system, _, _ in ordered],
                "values": [value for _, value, _ in ordered],
                "interaction_ids": [interaction_id for _, _, interaction_id in ordered],
            },
        )
        return {(row.system, row.value) for row in result}

    async def release_external_ids(
        self, workspace_id: uuid.UUID, interaction_id: uuid.UUID, systems: Iterable[str]
    ) -> None:
        wanted = list(systems)
        if not wanted:
            return
        await self.session.execute(
            delete(InteractionExternalId).where(
                InteractionExternalId.workspace_id == workspace_id,
                InteractionExternalId.interaction_id == interaction_id,
                InteractionExternalId.system.in_(wanted),
            )
        )

    async def delete_many(self, workspace_id: uuid.UUID, ids: Iterable[uuid.UUID]) -> None:
        wanted = list(ids)
        if not wanted:
            return
        await self.session.execute(
            delete(Interaction)
            .where(Interaction.workspace_id == workspace_id, Interaction.id.in_(wanted))
            .execution_options(synchronize_session=False)
        )

    async def insert_events(
        self,
        workspace_id: uuid.UUID,
        type: str,
        events: Sequence[tuple[uuid.UUID, bytes]],
    ) -> None:
        """Append one outbox event per (aggregate id, JSON data) in one statement
        (``outbox.record`` adds one ORM row each)."""
        if not events:
            return
        await self.session.execute(
            _INSERT_EVENTS,
            {
                "workspace_id": workspace_id,
                "type": type,
                "ids": [uuid7() for _ in events],
                "aggregate_ids": [aggregate_id for aggregate_id, _ in events],
                "data": [data.decode() for _, data in events],
            },
        )


@functools.cache
def _latest_per_contact(open_feedback_only: bool) -> Select[Any]:
    """Each contact's newest ``:latest_limit`` interactions: one LATERAL probe of the
    (workspace, contact, occurred_at) index per contact, whatever its history's length.

    Built once per variant, with bound parameters: constructing it costs more than running it.
    """
    wanted = (
        func.unnest(uuid_array_param("contact_ids"))
        .table_valued("contact_id")
        .render_derived(name="wanted")
    )
    inner = select(Interaction).where(
        Interaction.workspace_id == uuid_param("workspace_id"),
        Interaction.contact_id == wanted.c.contact_id,
    )
    if open_feedback_only:
        inner = inner.where(open_attention())
    latest = (
        inner.order_by(Interaction.occurred_at.desc(), Interaction.id.desc())
        .limit(bindparam("latest_limit", type_=Integer))
        .lateral("latest")
    )
    entity = aliased(Interaction, latest)
    statement = (
        select(entity)
        .select_from(wanted)
        .join(latest, true())
        .order_by(entity.contact_id, entity.occurred_at.desc(), entity.id.desc())
    )
    return _with_ids(statement, entity).execution_options(populate_existing=True)
