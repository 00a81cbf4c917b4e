from __future__ import annotations

import builtins
import uuid
from decimal import Decimal
from typing import Annotated, Any

from fastapi import Path, Query
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
from app.kit.money import Currency
from app.kit.pagination import DEFAULT_LIMIT, Page
from app.kit.routing import PrefixedRouter, UnitOfWorkRoute
from app.opportunity import schemas
from app.opportunity.analytics import analytics as sales_analytics
from app.opportunity.service import OpportunityQuery
from app.opportunity.service import opportunity as opportunity_service

NOT_FOUND: dict[int | str, dict[str, Any]] = {404: NotFound.openapi_response()}
NOT_MODIFIED: dict[int | str, dict[str, Any]] = {304: {"description": "Not modified"}}
BAD_CURSOR: dict[int | str, dict[str, Any]] = {400: InvalidCursor.openapi_response()}
PRECONDITION: dict[int | str, dict[str, Any]] = {412: PreconditionFailed.openapi_response()}
CONFLICT: dict[int | str, dict[str, Any]] = {409: Conflict.openapi_response()}

router = PrefixedRouter(
    prefix="/opportunities", tags=["opportunities"], route_class=UnitOfWorkRoute,
    responses=COMMON_RESPONSES,
)  # fmt: skip


# -- opportunities ---------------------------------------------------------------------------


def _body(row: Any) -> schemas.Opportunity:
    return opportunity_service.to_schema(row)


@router.get("", response_model=Page[schemas.Opportunity], responses=BAD_CURSOR)
async def list(
    session: SessionDep,
    auth: OpportunitiesRead,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
    sort: Annotated[
        str | None,
        Query(
            max_length=40,
            description="`amount`, `expected_close_date`, `updated_at` or `created_at`, `-` "
            "for descending (default `-updated_at`). Amounts sort in minor units whatever "
            "the currency: filter by `currency` to compare like with like.",
        ),
    ] = None,
    pipeline_id: uuid.UUID | None = None,
    stage_id: Annotated[builtins.list[uuid.UUID] | None, Query(max_length=30)] = None,
    status: Annotated[builtins.list[schemas.OpportunityStatus] | None, Query(max_length=3)] = None,
    owner: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    contact_id: uuid.UUID | None = None,
    account_id: uuid.UUID | None = None,
    currency: Annotated[Currency | None, Query(description="ISO 4217 code.")] = None,
    amount_min: Annotated[
        Decimal | None, Query(ge=0, lt=Decimal("1e15"), description="Needs `currency`.")
    ] = None,
    amount_max: Annotated[
        Decimal | None, Query(ge=0, lt=Decimal("1e15"), description="Needs `currency`.")
    ] = None,
    close_from: Annotated[
        schemas.QueryDate | None, Query(description="Expected close on or after.")
    ] = None,
    close_to: Annotated[
        schemas.QueryDate | None, Query(description="Expected close on or before.")
    ] = None,
) -> Response:
    """List opportunities, filtered and sorted."""
    query = OpportunityQuery(
        pipeline_id=pipeline_id,
        stage_ids=stage_id or (),
        statuses=status or (),
        owner=owner,
        contact_id=contact_id,
        account_id=account_id,
        currency=currency,
        amount_min=amount_min,
        amount_max=amount_max,
        close_from=close_from,
        close_to=close_to,
    )
    rows, next_cursor = await opportunity_service.find(
        session, auth, query, limit=limit, cursor=cursor, sort=sort
    )
    return json_response(
        Page[schemas.Opportunity](data=[_body(row) for row in rows], next_cursor=next_cursor)
    )


@router.post(
    "",
    status_code=201,
    response_model=schemas.Opportunity,
    responses={**NOT_FOUND, 409: Duplicate.openapi_response()},
)
async def create(
    data: schemas.OpportunityCreate, session: SessionDep, auth: OpportunitiesWrite
) -> Response:
    """Create an opportunity with a contact and/or an account.

    Without `pipeline_id` it goes to the default pipeline; without `stage_id`, to the
    pipeline's first open stage. A lost stage needs `loss_reason`. The stage it starts in is
    the first entry of its history.
    """
    row = await opportunity_service.create(session, auth, data)
    return json_response(
        _body(row),
        status_code=201,
        version=row.version,
        headers={"Location": f"/v1/opportunities/{row.id}"},
    )


@router.get(
    "/by-external-id/{system}/{value}",
    response_model=schemas.Opportunity,
    responses={**NOT_FOUND, **NOT_MODIFIED},
)
async def get_by_external_id(
    system: Annotated[str, Path(max_length=64)],
    value: Annotated[str, Path(max_length=255)],
    session: SessionDep,
    auth: OpportunitiesRead,
    if_none_match: IfNoneMatch = None,
) -> Response:
    """Find an opportunity by a partner system's key."""
    row = await opportunity_service.get_by_external_id(session, auth, system, value)
    return conditional_get(_body(row), version=row.version, if_none_match=if_none_match)


@router.get("/forecast", response_model=schemas.Forecast, responses={**NOT_FOUND})
async def forecast(
    session: SessionDep,
    auth: OpportunitiesRead,
    pipeline_id: Annotated[uuid.UUID | None, Query(description="Default: every pipeline.")] = None,
    from_date: Annotated[
        schemas.QueryDate | None, Query(alias="from", description="First day.")
    ] = None,
    to_date: Annotated[
        schemas.QueryDate | None, Query(alias="to", description="Last day (inclusive).")
    ] = None,
    group_by: Annotated[schemas.ForecastGroup | None, Query()] = None,
    owner: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
) -> Response:
    """The forecast per currency (amounts are never converted).

    Open and weighted pipeline (amount x stage probability) count open deals expected to
    close between `from` and `to`; won and lost count deals closed in that range (days in the
    workspace's time zone). `group_by` splits it by `owner`, `stage` or `month` (of the
    expected or actual close).
    """
    result = await sales_analytics.forecast(
        session,
        auth,
        pipeline_id=pipeline_id,
        from_date=from_date,
        to_date=to_date,
        group_by=group_by,
        owner=owner,
    )
    return json_response(result)


@router.get(
    "/{opportunity_id}",
    response_model=schemas.Opportunity,
    responses={**NOT_FOUND, **NOT_MODIFIED},
)
async def get(
    opportunity_id: uuid.UUID,
    session: SessionDep,
    auth: OpportunitiesRead,
    if_none_match: IfNoneMatch = None,
) -> Response:
    """One opportunity."""
    row = await opportunity_service.get(session, auth, opportunity_id)
    return conditional_get(_body(row), version=row.version, if_none_match=if_none_match)


@router.patch(
    "/{opportunity_id}",
    response_model=schemas.Opportunity,
    responses={**NOT_FOUND, 409: Duplicate.openapi_response(), **PRECONDITION},
)
async def update(
    opportunity_id: uuid.UUID,
    patch: schemas.OpportunityUpdate,
    session: SessionDep,
    auth: OpportunitiesWrite,
    if_match: IfMatch = None,
) -> Response:
    """Change an opportunity (JSON merge patch).

    A new `stage_id` is a stage move, recorded in the history like `POST .../stage`;
    `pipeline_id` changes only with a `stage_id` of the new pipeline. `competitors` replaces
    the list.
    """
    row = await opportunity_service.update(session, auth, opportunity_id, patch, if_match=if_match)
    return json_response(_body(row), version=row.version)


@router.delete("/{opportunity_id}", status_code=204, responses={**NOT_FOUND, **PRECONDITION})
async def delete(
    opportunity_id: uuid.UUID,
    session: SessionDep,
    auth: OpportunitiesWrite,
    if_match: IfMatch = None,
) -> Response:
    """Delete an opportunity with its history."""
    await opportunity_service.delete(session, auth, opportunity_id, if_match=if_match)
    return Response(status_code=204)


@router.post(
    "/{opportunity_id}/stage",
    response_model=schemas.Opportunity,
    responses={**NOT_FOUND, **PRECONDITION},
)
async def move_stage(
    opportunity_id: uuid.UUID,
    data: schemas.StageMove,
    session: SessionDep,
    auth: OpportunitiesWrite,
    if_match: IfMatch = None,
) -> Response:
    """Move the opportunity to another stage of its pipeline.

    The move is recorded (from, to, when, by which key, time spent in the previous stage);
    a lost stage needs `loss_reason`; moving a won or lost deal to an open stage reopens it.
    Of two concurrent moves with the same `If-Match`, one wins and the other is a 412.
    """
    row, _ = await opportunity_service.move_stage(
        session, auth, opportunity_id, data, if_match=if_match
    )
    return json_response(_body(row), version=row.version)


@router.get(
    "/{opportunity_id}/history",
    response_model=Page[schemas.StageChange],
    responses={**NOT_FOUND, **BAD_CURSOR},
)
async def history(
    opportunity_id: uuid.UUID,
    session: SessionDep,
    auth: OpportunitiesRead,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Response:
    """The opportunity's stage changes, oldest first; the first is the stage it was
    created in."""
    rows, next_cursor = await opportunity_service.history(
        session, auth, opportunity_id, limit=limit, cursor=cursor
    )
    return json_response(
        Page[schemas.StageChange](
            data=[opportunity_service.change_to_schema(row) for row in rows],
            next_cursor=next_cursor,
        )
    )
