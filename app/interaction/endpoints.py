from __future__ import annotations

import builtins
import uuid
from typing import Annotated, Any

from fastapi import Path, Query
from starlette.responses import Response

from app.auth.dependencies import InteractionsRead, InteractionsWrite
from app.db.session import SessionDep
from app.interaction import schemas
from app.interaction.service import InteractionQuery
from app.interaction.service import interaction as interaction_service
from app.kit.errors import (
    COMMON_RESPONSES,
    Duplicate,
    InvalidCursor,
    NotFound,
    PreconditionFailed,
)
from app.kit.http import Cursor, IfMatch, IfNoneMatch, Limit, conditional_get, json_response
from app.kit.pagination import DEFAULT_LIMIT, Page
from app.kit.routing import PrefixedRouter, UnitOfWorkRoute
from app.kit.schemas import QueryTimestamp
from app.models import Interaction

router = PrefixedRouter(
    prefix="/interactions",
    tags=["interactions"],
    route_class=UnitOfWorkRoute,
    responses=COMMON_RESPONSES,
)
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: NotFound.openapi_response()}
CONFLICT: dict[int | str, dict[str, Any]] = {409: Duplicate.openapi_response()}
BAD_CURSOR: dict[int | str, dict[str, Any]] = {400: InvalidCursor.openapi_response()}
NOT_MODIFIED: dict[int | str, dict[str, Any]] = {304: {"description": "Not modified"}}
BATCH_FAILED: dict[int | str, dict[str, Any]] = {
    422: {
        "model": schemas.InteractionBatchProblem,
        "description": "The request is not valid; or, with `all_or_none`, an item failed and "
        "nothing was written (`results` lists every item's result).",
        "content": {
            "application/problem+json": {
                "schema": {"$ref": "#/components/schemas/InteractionBatchProblem"}
            }
        },
    }
}


def _body(interaction: Interaction) -> schemas.Interaction:
    return interaction_service.to_schema(interaction)


@router.get("", response_model=Page[schemas.Interaction], responses=BAD_CURSOR)
# The endpoint's name is its operation id (interactions-list), hence builtins.list below.
async def list(
    session: SessionDep,
    auth: InteractionsRead,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
    sort: Annotated[
        str | None,
        Query(
            max_length=40,
            description="`occurred_at` or `created_at`, `-` for descending "
            "(default `-occurred_at`: newest first).",
        ),
    ] = None,
    contact_id: Annotated[uuid.UUID | None, Query(description="One contact's history.")] = None,
    channel: Annotated[builtins.list[schemas.Channel] | None, Query(max_length=12)] = None,
    type: Annotated[builtins.list[schemas.InteractionKind] | None, Query(max_length=15)] = None,
    direction: schemas.Direction | None = None,
    feedback_kind: Annotated[
        builtins.list[schemas.FeedbackKind] | None, Query(max_length=3)
    ] = None,
    sentiment: Annotated[builtins.list[schemas.Sentiment] | None, Query(max_length=4)] = None,
    needs_attention: Annotated[
        bool | None,
        Query(
            description="`true`: feedback needing attention that is not resolved yet (open); "
            "`false`: everything else."
        ),
    ] = None,
    occurred_after: Annotated[
        QueryTimestamp | None, Query(description="Inclusive lower bound.")
    ] = None,
    occurred_before: Annotated[
        QueryTimestamp | None, Query(description="Exclusive upper bound.")
    ] = None,
    case_id: uuid.UUID | None = None,
    opportunity_id: uuid.UUID | None = None,
    campaign_id: uuid.UUID | None = None,
) -> Response:
    """List interactions, newest first, optionally of one contact."""
    query = InteractionQuery(
        contact_id=contact_id,
        channels=channel or (),
        types=type or (),
        direction=direction,
        feedback_kinds=feedback_kind or (),
        sentiments=sentiment or (),
        needs_attention=needs_attention,
        occurred_after=occurred_after,
        occurred_before=occurred_before,
        case_id=case_id,
        opportunity_id=opportunity_id,
        campaign_id=campaign_id,
    )
    rows, next_cursor = await interaction_service.find(
        session, auth, query, limit=limit, cursor=cursor, sort=sort
    )
    return json_response(
        Page[schemas.Interaction](data=[_body(row) for row in rows], next_cursor=next_cursor)
    )


@router.post(
    "",
    status_code=201,
    response_model=schemas.Interaction,
    responses={
        200: {
            "model": schemas.Interaction,
            "description": "An interaction with one of the external ids was already stored: "
            "nothing was written, and the stored one is returned.",
        },
        **NOT_FOUND,
    },
)
async def create(
    data: schemas.InteractionCreate, session: SessionDep, auth: InteractionsWrite
) -> Response:
    """Record an interaction with a contact.

    Idempotent by external id: when an interaction with one of `external_ids` is already
    stored (even by a concurrent request), nothing is written and the stored interaction is
    returned with 200 instead of 201. An unknown contact is a 404 naming `contact_id`; a
    merged one a 404 whose `merged_into` names the survivor. A `case_id`, `opportunity_id`
    or `campaign_id` that does not exist in the workspace is a 422.
    """
    interaction, created = await interaction_service.create(session, auth, data)
    return json_response(
        _body(interaction),
        status_code=201 if created else 200,
        version=interaction.version,
        headers={"Location": f"/v1/interactions/{interaction.id}"},
    )


@router.post("/batch", response_model=schemas.InteractionBatchResult, responses=BATCH_FAILED)
async def ingest(
    batch: schemas.InteractionBatch, session: SessionDep, auth: InteractionsWrite
) -> Response:
    """Record up to 1,000 interactions at once.

    A 200 reports each item as `created`, `existing` (an interaction with one of its
    external ids was already stored, or listed by an earlier item: nothing new is written)
    or `error` (with the problem it alone would have had; it writes nothing). With
    `all_or_none`, one failed item makes the whole batch a 422, and nothing is written.
    """
    return json_response(await interaction_service.ingest(session, auth, batch))


@router.get(
    "/by-external-id/{system}/{value}",
    response_model=schemas.Interaction,
    responses={**NOT_FOUND, **NOT_MODIFIED},
)
async def get_by_external_id(
    system: Annotated[str, Path(max_length=64)],
    value: Annotated[str, Path(max_length=255)],
    session: SessionDep,
    auth: InteractionsRead,
    if_none_match: IfNoneMatch = None,
) -> Response:
    """Find an interaction by a partner system's key."""
    interaction = await interaction_service.get_by_external_id(session, auth, system, value)
    return conditional_get(
        _body(interaction), version=interaction.version, if_none_match=if_none_match
    )


@router.get(
    "/{interaction_id}",
    response_model=schemas.Interaction,
    responses={**NOT_FOUND, **NOT_MODIFIED},
)
async def get(
    interaction_id: uuid.UUID,
    session: SessionDep,
    auth: InteractionsRead,
    if_none_match: IfNoneMatch = None,
) -> Response:
    """One interaction."""
    interaction = await interaction_service.get(session, auth, interaction_id)
    return conditional_get(
        _body(interaction), version=interaction.version, if_none_match=if_none_match
    )


@router.patch(
    "/{interaction_id}",
    response_model=schemas.Interaction,
    responses={**NOT_FOUND, **CONFLICT, 412: PreconditionFailed.openapi_response()},
)
async def update(
    interaction_id: uuid.UUID,
    patch: schemas.InteractionUpdate,
    session: SessionDep,
    auth: InteractionsWrite,
    if_match: IfMatch = None,
) -> Response:
    """Change an interaction (JSON merge patch); e.g. resolve feedback needing attention with
    `{"attention_resolved_at": "2026-01-05T09:30:00+07:00"}`."""
    interaction = await interaction_service.update(
        session, auth, interaction_id, patch, if_match=if_match
    )
    return json_response(_body(interaction), version=interaction.version)


@router.delete(
    "/{interaction_id}",
    status_code=204,
    responses={**NOT_FOUND, 412: PreconditionFailed.openapi_response()},
)
async def delete(
    interaction_id: uuid.UUID,
    session: SessionDep,
    auth: InteractionsWrite,
    if_match: IfMatch = None,
) -> Response:
    """Delete an interaction; its external ids are freed."""
    await interaction_service.delete(session, auth, interaction_id, if_match=if_match)
    return Response(status_code=204)
