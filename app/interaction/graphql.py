from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from app.auth.scopes import Scope
from app.graphql.common import ExternalIdInput, ExternalIdType, external_ids_dict
from app.graphql.context import Context
from app.graphql.dataloaders.contact_by_id import contact_by_id
from app.graphql.relay import Connection, Edge, page_of, page_size
from app.interaction import schemas
from app.interaction.service import InteractionQuery
from app.interaction.service import interaction as interaction_service
from app.kit.schemas import InputSchema, UTCDateTime, parse_input
from app.models import Interaction

if TYPE_CHECKING:
    from app.contact.graphql import ContactType


@strawberry.type(name="Feedback")
class FeedbackType:
    kind: str
    sentiment: str | None
    scale: str | None
    score: int | None
    topic: str | None
    urgency: str | None


@strawberry.type(name="Interaction")
class InteractionType:
    id: uuid.UUID
    contact_id: uuid.UUID
    channel: str
    direction: str | None
    type: str
    occurred_at: datetime
    subject: str | None
    body: str | None
    agent_id: str | None
    duration_seconds: int | None
    attributes: JSON
    external_ids: list[ExternalIdType]
    feedback: FeedbackType | None
    needs_attention: bool = strawberry.field(description=schemas.NEEDS_ATTENTION_RULES)
    attention_resolved_at: datetime | None
    case_id: uuid.UUID | None
    opportunity_id: uuid.UUID | None
    campaign_id: uuid.UUID | None
    created_at: datetime
    updated_at: datetime
    version: int

    @strawberry.field(description="The contact it happened with (scope: contacts:read).")
    async def contact(
        self, info: Info[Context, None]
    ) -> Annotated[ContactType, strawberry.lazy("app.contact.graphql")] | None:
        from app.contact.graphql import ContactType

        info.context.require(Scope.contacts_read)
        record = await info.context.loaders.get(contact_by_id).load(self.contact_id)
        return ContactType.from_schema(record) if record is not None else None

    @classmethod
    def from_model(cls, record: Interaction) -> InteractionType:
        return cls.from_schema(interaction_service.to_schema(record))

    @classmethod
    def from_schema(cls, data: schemas.Interaction) -> InteractionType:
        values: dict[str, Any] = {
            name: getattr(data, name) for name in type(data).model_fields if name != "feedback"
        }
        values["external_ids"] = ExternalIdType.from_dict(data.external_ids)
        values["feedback"] = (
            FeedbackType(**data.feedback.model_dump()) if data.feedback is not None else None
        )
        return cls(**values)


@strawberry.input
class InteractionFilter:
    contact_id: uuid.UUID | None = None
    channels: list[str] | None = None
    types: list[str] | None = None
    direction: str | None = None
    feedback_kinds: list[str] | None = None
    sentiments: list[str] | None = None
    needs_attention: bool | None = strawberry.field(
        default=None, description="true: open feedback needing attention; false: the rest."
    )
    occurred_after: datetime | None = None
    occurred_before: datetime | None = None
    case_id: uuid.UUID | None = None
    opportunity_id: uuid.UUID | None = None
    campaign_id: uuid.UUID | None = None

    def as_query(self) -> InteractionQuery:
        """The filter as the service's query; values are checked by the service's types."""
        filters = parse_input(_FilterValues, vars(self))
        return InteractionQuery(
            contact_id=filters.contact_id,
            channels=filters.channels or (),
            types=filters.types or (),
            direction=filters.direction,
            feedback_kinds=filters.feedback_kinds or (),
            sentiments=filters.sentiments or (),
            needs_attention=filters.needs_attention,
            occurred_after=filters.occurred_after,
            occurred_before=filters.occurred_before,
            case_id=filters.case_id,
            opportunity_id=filters.opportunity_id,
            campaign_id=filters.campaign_id,
        )


class _FilterValues(InputSchema):
    """Refuses unknown channels and the like with a validation_error naming the filter."""

    contact_id: uuid.UUID | None = None
    channels: list[schemas.Channel] | None = None
    types: list[schemas.InteractionKind] | None = None
    direction: schemas.Direction | None = None
    feedback_kinds: list[schemas.FeedbackKind] | None = None
    sentiments: list[schemas.Sentiment] | None = None
    needs_attention: bool | None = None
    occurred_after: UTCDateTime | None = None
    occurred_before: UTCDateTime | None = None
    case_id: uuid.UUID | None = None
    opportunity_id: uuid.UUID | None = None
    campaign_id: uuid.UUID | None = None


@strawberry.input(description="Field names and rules are those of the REST feedback.")
class FeedbackInput:
    kind: str | None = strawberry.UNSET
    sentiment: str | None = strawberry.UNSET
    scale: str | None = strawberry.UNSET
    score: int | None = strawberry.UNSET
    topic: str | None = strawberry.UNSET
    urgency: str | None = strawberry.UNSET


@strawberry.input(description="Field names and rules are those of the REST interaction.")
class InteractionInput:
    contact_id: uuid.UUID | None = strawberry.UNSET
    channel: str | None = strawberry.UNSET
    direction: str | None = strawberry.UNSET
    type: str | None = strawberry.UNSET
    occurred_at: datetime | None = strawberry.UNSET
    subject: str | None = strawberry.UNSET
    body: str | None = strawberry.UNSET
    agent_id: str | None = strawberry.UNSET
    duration_seconds: int | None = strawberry.UNSET
    attributes: JSON | None = strawberry.UNSET
    external_ids: list[ExternalIdInput] | None = strawberry.UNSET
    feedback: FeedbackInput | None = strawberry.UNSET
    attention_resolved_at: datetime | None = strawberry.UNSET
    case_id: uuid.UUID | None = strawberry.UNSET
    opportunity_id: uuid.UUID | None = strawberry.UNSET
    campaign_id: uuid.UUID | None = strawberry.UNSET


def _set(value: Any) -> dict[str, Any]:
    return {name: item for name, item in vars(value).items() if item is not strawberry.UNSET}


def _as_dict(value: InteractionInput) -> dict[str, Any]:
    """The input as the REST body it stands for (unset fields left out)."""
    data = _set(value)
    if "external_ids" in data:
        data["external_ids"] = external_ids_dict(data["external_ids"])
    if data.get("feedback") is not None:
        data["feedback"] = _set(data["feedback"])
    return data


@strawberry.type(name="InteractionBatchItemResult")
class BatchItemResultType:
    index: int
    status: str
    id: uuid.UUID | None
    error: JSON | None


@strawberry.type(name="InteractionBatchResult")
class BatchResultType:
    results: list[BatchItemResultType]
    created: int
    existing: int
    errors: int


def connection(
    rows: list[Interaction], next_cursor: str | None, sort: str | None
) -> Connection[InteractionType]:
    """A Relay connection of a page from ``InteractionService.find``."""
    edges = [
        Edge(node=InteractionType.from_model(row), cursor=interaction_service.cursor_of(row, sort))
        for row in rows
    ]
    return page_of(edges, next_cursor)


@strawberry.type
class InteractionRootQuery:
    @strawberry.field(description="One interaction (scope: interactions:read).")
    async def interaction(self, info: Info[Context, None], id: uuid.UUID) -> InteractionType | None:
        auth = info.context.require(Scope.interactions_read)
        record = await info.context.read(lambda session: interaction_service.get(session, auth, id))
        return InteractionType.from_model(record)

    @strawberry.field(description="An interaction by a partner system's key.")
    async def interaction_by_external_id(
        self, info: Info[Context, None], system: str, value: str
    ) -> InteractionType | None:
        auth = info.context.require(Scope.interactions_read)
        record = await info.context.read(
            lambda session: interaction_service.get_by_external_id(session, auth, system, value)
        )
        return InteractionType.from_model(record)

    @strawberry.field(
        description="Interactions, newest first (sort: occurred_at, created_at, `-` for "
        "descending)."
    )
    async def interactions(
        self,
        info: Info[Context, None],
        first: int | None = None,
        after: str | None = None,
        filter: InteractionFilter | None = None,
        sort: str | None = None,
    ) -> Connection[InteractionType] | None:
        auth = info.context.require(Scope.interactions_read)
        query = (filter or InteractionFilter()).as_query()
        limit = page_size(first)
        rows, next_cursor = await info.context.read(
            lambda session: interaction_service.find(
                session, auth, query, limit=limit, cursor=after, sort=sort
            )
        )
        return connection(rows, next_cursor, sort)


@strawberry.type
class InteractionMutation:
    # Nullable results: a failed mutation reports its error without nulling the others.
    @strawberry.mutation(
        description="Record an interaction. Idempotent by external id: when one of its "
        "external ids is already stored, nothing is written and the stored one is returned."
    )
    async def create_interaction(
        self, info: Info[Context, None], input: InteractionInput
    ) -> InteractionType | None:
        auth = info.context.require(Scope.interactions_write)
        data = parse_input(schemas.InteractionCreate, _as_dict(input))
        record, _ = await info.context.write(
            lambda session: interaction_service.create(session, auth, data)
        )
        return InteractionType.from_model(record)

    @strawberry.mutation(description="Change an interaction (merge-patch semantics).")
    async def update_interaction(
        self,
        info: Info[Context, None],
        id: uuid.UUID,
        input: InteractionInput,
        if_match: str | None = None,
    ) -> InteractionType | None:
        auth = info.context.require(Scope.interactions_write)
        patch = parse_input(schemas.InteractionUpdate, _as_dict(input))
        record = await info.context.write(
            lambda session: interaction_service.update(session, auth, id, patch, if_match=if_match)
        )
        return InteractionType.from_model(record)

    @strawberry.mutation(description="Delete an interaction; returns its id.")
    async def delete_interaction(
        self, info: Info[Context, None], id: uuid.UUID, if_match: str | None = None
    ) -> uuid.UUID | None:
        auth = info.context.require(Scope.interactions_write)
        await info.context.write(
            lambda session: interaction_service.delete(session, auth, id, if_match=if_match)
        )
        return id

    @strawberry.mutation(description="Record up to 1,000 interactions, reporting each item.")
    async def ingest_interactions(
        self, info: Info[Context, None], items: list[InteractionInput], all_or_none: bool = False
    ) -> BatchResultType | None:
        auth = info.context.require(Scope.interactions_write)
        batch = parse_input(
            schemas.InteractionBatch,
            {"items": [_as_dict(item) for item in items], "all_or_none": all_or_none},
        )
        result = await info.context.write(
            lambda session: interaction_service.ingest(session, auth, batch)
        )
        return BatchResultType(
            results=[
                BatchItemResultType(
                    index=item.index,
                    status=item.status,
                    id=item.id,
                    error=JSON(item.error.model_dump(mode="json")) if item.error else None,
                )
                for item in result.results
            ],
            created=result.created,
            existing=result.existing,
            errors=result.errors,
        )
