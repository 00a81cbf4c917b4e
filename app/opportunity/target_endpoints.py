from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import Query
from starlette.responses import Response

from app.auth.dependencies import OpportunitiesRead, OpportunitiesWrite
from app.db.session import SessionDep
from app.kit.errors import COMMON_RESPONSES, Duplicate, InvalidCursor, NotFound, PreconditionFailed
from app.kit.http import Cursor, IfMatch, IfNoneMatch, Limit, conditional_get, json_response
from app.kit.pagination import DEFAULT_LIMIT, Page
from app.kit.routing import PrefixedRouter, UnitOfWorkRoute
from app.opportunity import schemas
from app.opportunity.targets import sales_target as target_service

router = PrefixedRouter(
    prefix="/sales-targets",
    tags=["sales-targets"],
    route_class=UnitOfWorkRoute,
    responses=COMMON_RESPONSES,
)
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: NotFound.openapi_response()}
PRECONDITION: dict[int | str, dict[str, Any]] = {412: PreconditionFailed.openapi_response()}
DUPLICATE: dict[int | str, dict[str, Any]] = {409: Duplicate.openapi_response()}


@router.get(
    "", response_model=Page[schemas.SalesTarget], responses={400: InvalidCursor.openapi_response()}
)
async def list(
    session: SessionDep,
    auth: OpportunitiesRead,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
    sort: Annotated[
        str | None, Query(max_length=40, description="`period_start` (default) or `created_at`.")
    ] = None,
    owner: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    from_date: Annotated[
        schemas.QueryDate | None, Query(alias="from", description="Periods ending on or after.")
    ] = None,
    to_date: Annotated[
        schemas.QueryDate | None, Query(alias="to", description="Periods starting on or before.")
    ] = None,
) -> Response:
    """Sales targets with their attainment (won / target), by period."""
    rows, next_cursor = await target_service.find(
        session,
        auth,
        owner=owner,
        from_date=from_date,
        to_date=to_date,
        limit=limit,
        cursor=cursor,
        sort=sort,
    )
    return json_response(Page[schemas.SalesTarget](data=rows, next_cursor=next_cursor))


@router.post("", status_code=201, response_model=schemas.SalesTarget, responses=DUPLICATE)
async def create(
    data: schemas.SalesTargetCreate, session: SessionDep, auth: OpportunitiesWrite
) -> Response:
    """Set an owner's target for a period (dates inclusive) in one currency."""
    row, body = await target_service.create(session, auth, data)
    return json_response(
        body,
        status_code=201,
        version=row.version,
        headers={"Location": f"/v1/sales-targets/{row.id}"},
    )


@router.get("/{target_id}", response_model=schemas.SalesTarget, responses=NOT_FOUND)
async def get(
    target_id: uuid.UUID,
    session: SessionDep,
    auth: OpportunitiesRead,
    if_none_match: IfNoneMatch = None,
) -> Response:
    """One target with its attainment (computed now: its ETag is the target's version)."""
    row, body = await target_service.get(session, auth, target_id)
    return conditional_get(body, version=row.version, if_none_match=if_none_match)


@router.patch(
    "/{target_id}",
    response_model=schemas.SalesTarget,
    responses={**NOT_FOUND, **DUPLICATE, **PRECONDITION},
)
async def update(
    target_id: uuid.UUID,
    patch: schemas.SalesTargetUpdate,
    session: SessionDep,
    auth: OpportunitiesWrite,
    if_match: IfMatch = None,
) -> Response:
    """Change a target (JSON merge patch)."""
    row, body = await target_service.update(session, auth, target_id, patch, if_match=if_match)
    return json_response(body, version=row.version)


@router.delete("/{target_id}", status_code=204, responses={**NOT_FOUND, **PRECONDITION})
async def delete(
    target_id: uuid.UUID, session: SessionDep, auth: OpportunitiesWrite, if_match: IfMatch = None
) -> Response:
    """Delete a target."""
    await target_service.delete(session, auth, target_id, if_match=if_match)
    return Response(status_code=204)
