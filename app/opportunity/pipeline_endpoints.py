from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import Query
from starlette.responses import Response

from app.auth.dependencies import OpportunitiesRead, OpportunitiesWrite
from app.db.session import SessionDep
from app.kit.errors import (
    COMMON_RESPONSES,
    Conflict,
    Duplicate,
    InvalidCursor,
    NotFound,
    PreconditionFailed,
)
from app.kit.http import Cursor, IfMatch, IfNoneMatch, Limit, conditional_get, json_response
from app.kit.pagination import DEFAULT_LIMIT, Page
from app.kit.routing import PrefixedRouter, UnitOfWorkRoute
from app.opportunity import schemas
from app.opportunity.analytics import analytics as sales_analytics
from app.opportunity.pipelines import pipeline as pipeline_service
from app.opportunity.schemas import Reason

NOT_FOUND: dict[int | str, dict[str, Any]] = {404: NotFound.openapi_response()}
NOT_MODIFIED: dict[int | str, dict[str, Any]] = {304: {"description": "Not modified"}}
PRECONDITION: dict[int | str, dict[str, Any]] = {412: PreconditionFailed.openapi_response()}
CONFLICT: dict[int | str, dict[str, Any]] = {409: Conflict.openapi_response()}

router = PrefixedRouter(
    prefix="/pipelines", tags=["pipelines"], route_class=UnitOfWorkRoute,
    responses=COMMON_RESPONSES,
)  # fmt: skip

# -- pipelines -------------------------------------------------------------------------------


def _pipeline(row: Any) -> schemas.Pipeline:
    return pipeline_service.to_schema(row)


@router.get(
    "", response_model=Page[schemas.Pipeline], responses={400: InvalidCursor.openapi_response()}
)
async def list(
    session: SessionDep,
    auth: OpportunitiesRead,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Response:
    """Pipelines with their stages, oldest first; `is_default` marks the default one."""
    rows, next_cursor = await pipeline_service.page(session, auth, limit=limit, cursor=cursor)
    return json_response(
        Page[schemas.Pipeline](data=[_pipeline(row) for row in rows], next_cursor=next_cursor)
    )


@router.post(
    "",
    status_code=201,
    response_model=schemas.Pipeline,
    responses={409: Duplicate.openapi_response()},
)
async def create(
    data: schemas.PipelineCreate, session: SessionDep, auth: OpportunitiesWrite
) -> Response:
    """Create a pipeline with its stages in order (at least one open stage)."""
    row = await pipeline_service.create(session, auth, data)
    return json_response(
        _pipeline(row),
        status_code=201,
        version=row.version,
        headers={"Location": f"/v1/pipelines/{row.id}"},
    )


@router.get(
    "/{pipeline_id}", response_model=schemas.Pipeline, responses={**NOT_FOUND, **NOT_MODIFIED}
)
async def get(
    pipeline_id: uuid.UUID,
    session: SessionDep,
    auth: OpportunitiesRead,
    if_none_match: IfNoneMatch = None,
) -> Response:
    """One pipeline with its stages."""
    row = await pipeline_service.get(session, auth, pipeline_id)
    return conditional_get(_pipeline(row), version=row.version, if_none_match=if_none_match)


@router.patch(
    "/{pipeline_id}",
    response_model=schemas.Pipeline,
    responses={**NOT_FOUND, 409: Duplicate.openapi_response(), **PRECONDITION},
)
async def update(
    pipeline_id: uuid.UUID,
    patch: schemas.PipelineUpdate,
    session: SessionDep,
    auth: OpportunitiesWrite,
    if_match: IfMatch = None,
) -> Response:
    """Rename a pipeline, or make it the default (`is_default: true`)."""
    row = await pipeline_service.update(session, auth, pipeline_id, patch, if_match=if_match)
    return json_response(_pipeline(row), version=row.version)


@router.delete(
    "/{pipeline_id}", status_code=204, responses={**NOT_FOUND, **CONFLICT, **PRECONDITION}
)
async def delete(
    pipeline_id: uuid.UUID, session: SessionDep, auth: OpportunitiesWrite, if_match: IfMatch = None
) -> Response:
    """Delete a pipeline without opportunities; the default pipeline cannot be deleted (409)."""
    await pipeline_service.delete(session, auth, pipeline_id, if_match=if_match)
    return Response(status_code=204)


@router.post(
    "/{pipeline_id}/stages",
    status_code=201,
    response_model=schemas.Pipeline,
    responses={**NOT_FOUND, **PRECONDITION},
)
async def add_stage(
    pipeline_id: uuid.UUID,
    data: schemas.StageCreate,
    session: SessionDep,
    auth: OpportunitiesWrite,
    if_match: IfMatch = None,
) -> Response:
    """Add a stage at `position` (default: last); the response is the whole pipeline."""
    row, stage = await pipeline_service.add_stage(
        session, auth, pipeline_id, data, if_match=if_match
    )
    return json_response(
        _pipeline(row),
        status_code=201,
        version=row.version,
        headers={"Location": f"/v1/pipelines/{row.id}/stages/{stage.id}"},
    )


@router.patch(
    "/{pipeline_id}/stages/{stage_id}",
    response_model=schemas.Pipeline,
    responses={**NOT_FOUND, **CONFLICT, **PRECONDITION},
)
async def update_stage(
    pipeline_id: uuid.UUID,
    stage_id: uuid.UUID,
    patch: schemas.StageUpdate,
    session: SessionDep,
    auth: OpportunitiesWrite,
    if_match: IfMatch = None,
) -> Response:
    """Rename, re-weigh, move (`position`) or retype a stage.

    A `won` stage has probability 100 and a `lost` one 0. The type of a stage holding
    opportunities cannot change (409): their status follows it. `If-Match` takes the
    pipeline's ETag.
    """
    row, _ = await pipeline_service.update_stage(
        session, auth, pipeline_id, stage_id, patch, if_match=if_match
    )
    return json_response(_pipeline(row), version=row.version)


@router.post(
    "/{pipeline_id}/stages/reorder",
    response_model=schemas.Pipeline,
    responses={**NOT_FOUND, **PRECONDITION},
)
async def reorder_stages(
    pipeline_id: uuid.UUID,
    data: schemas.StageOrder,
    session: SessionDep,
    auth: OpportunitiesWrite,
    if_match: IfMatch = None,
) -> Response:
    """Put the stages in a new order: list every stage id once."""
    row = await pipeline_service.reorder(session, auth, pipeline_id, data, if_match=if_match)
    return json_response(_pipeline(row), version=row.version)


@router.delete(
    "/{pipeline_id}/stages/{stage_id}",
    response_model=schemas.Pipeline,
    responses={**NOT_FOUND, **CONFLICT, **PRECONDITION},
)
async def delete_stage(
    pipeline_id: uuid.UUID,
    stage_id: uuid.UUID,
    session: SessionDep,
    auth: OpportunitiesWrite,
    move_to: Annotated[
        uuid.UUID | None,
        Query(description="Another stage of the pipeline to move the stage's opportunities to."),
    ] = None,
    loss_reason: Annotated[
        Reason | None, Query(description="Required when `move_to` is a lost stage.")
    ] = None,
    if_match: IfMatch = None,
) -> Response:
    """Delete a stage. One that holds opportunities is a 409 unless `move_to` names the stage
    they move to, in the same transaction (each move is recorded in their history)."""
    row = await pipeline_service.delete_stage(
        session,
        auth,
        pipeline_id,
        stage_id,
        move_to=move_to,
        loss_reason=loss_reason,
        if_match=if_match,
    )
    return json_response(_pipeline(row), version=row.version)


@router.get(
    "/{pipeline_id}/analytics", response_model=schemas.PipelineAnalytics, responses=NOT_FOUND
)
async def analytics(
    pipeline_id: uuid.UUID,
    session: SessionDep,
    auth: OpportunitiesRead,
    from_date: Annotated[
        schemas.QueryDate | None, Query(alias="from", description="Created on or after.")
    ] = None,
    to_date: Annotated[
        schemas.QueryDate | None, Query(alias="to", description="Created on or before.")
    ] = None,
) -> Response:
    """How the pipeline's opportunities created between `from` and `to` fared: conversion
    from each stage to the next and to won, average and median time in each stage, win rate,
    loss reasons ranked, and wins and losses against each competitor."""
    result = await sales_analytics.pipeline_analytics(
        session, auth, pipeline_id, from_date=from_date, to_date=to_date
    )
    return json_response(result)
