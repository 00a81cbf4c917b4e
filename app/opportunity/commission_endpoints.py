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
from app.opportunity.targets import commission as commission_service

rules_router = PrefixedRouter(
    prefix="/commission-rules",
    tags=["commission-rules"],
    route_class=UnitOfWorkRoute,
    responses=COMMON_RESPONSES,
)
router = PrefixedRouter(
    prefix="/commissions",
    tags=["commissions"],
    route_class=UnitOfWorkRoute,
    responses=COMMON_RESPONSES,
)
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: NotFound.openapi_response()}
PRECONDITION: dict[int | str, dict[str, Any]] = {412: PreconditionFailed.openapi_response()}
DUPLICATE: dict[int | str, dict[str, Any]] = {409: Duplicate.openapi_response()}


@router.get("", response_model=schemas.Commissions)
async def statements(
    session: SessionDep,
    auth: OpportunitiesRead,
    from_date: Annotated[
        schemas.QueryDate, Query(alias="from", description="First day of the period.")
    ],
    to_date: Annotated[schemas.QueryDate, Query(alias="to", description="Last day (inclusive).")],
    owner: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
) -> Response:
    """Commission per owner and currency on the deals won in the period, with the deals.

    Each deal takes the most specific rule (pipeline and owner, owner, pipeline, the
    workspace's); tiers raise the rate on the part of the owner's won amount above a share of
    the owner's targets lying within the period.
    """
    result = await commission_service.statements(
        session, auth, owner=owner, from_date=from_date, to_date=to_date
    )
    return json_response(result)


@rules_router.get(
    "",
    response_model=Page[schemas.CommissionRule],
    responses={400: InvalidCursor.openapi_response()},
)
async def list(
    session: SessionDep,
    auth: OpportunitiesRead,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Response:
    """The workspace's commission rules, oldest first."""
    rows, next_cursor = await commission_service.page(session, auth, limit=limit, cursor=cursor)
    return json_response(
        Page[schemas.CommissionRule](
            data=[commission_service.rule_to_schema(row) for row in rows],
            next_cursor=next_cursor,
        )
    )


@rules_router.post(
    "", status_code=201, response_model=schemas.CommissionRule, responses={**NOT_FOUND, **DUPLICATE}
)
async def create(
    data: schemas.CommissionRuleCreate, session: SessionDep, auth: OpportunitiesWrite
) -> Response:
    """Add a rule: a rate in basis points for a pipeline, an owner, both or neither, with
    optional tiers above target (e.g. 500 up to target, `{"above_percent": 100,
    "rate_bp": 800}` beyond)."""
    row = await commission_service.create_rule(session, auth, data)
    return json_response(
        commission_service.rule_to_schema(row),
        status_code=201,
        version=row.version,
        headers={"Location": f"/v1/commission-rules/{row.id}"},
    )


@rules_router.get("/{rule_id}", response_model=schemas.CommissionRule, responses=NOT_FOUND)
async def get(
    rule_id: uuid.UUID,
    session: SessionDep,
    auth: OpportunitiesRead,
    if_none_match: IfNoneMatch = None,
) -> Response:
    """One commission rule."""
    row = await commission_service.get_rule(session, auth, rule_id)
    return conditional_get(
        commission_service.rule_to_schema(row), version=row.version, if_none_match=if_none_match
    )


@rules_router.patch(
    "/{rule_id}",
    response_model=schemas.CommissionRule,
    responses={**NOT_FOUND, **DUPLICATE, **PRECONDITION},
)
async def update(
    rule_id: uuid.UUID,
    patch: schemas.CommissionRuleUpdate,
    session: SessionDep,
    auth: OpportunitiesWrite,
    if_match: IfMatch = None,
) -> Response:
    """Change a rule (JSON merge patch; `tiers` replaces the list)."""
    row = await commission_service.update_rule(session, auth, rule_id, patch, if_match=if_match)
    return json_response(commission_service.rule_to_schema(row), version=row.version)


@rules_router.delete("/{rule_id}", status_code=204, responses={**NOT_FOUND, **PRECONDITION})
async def delete(
    rule_id: uuid.UUID, session: SessionDep, auth: OpportunitiesWrite, if_match: IfMatch = None
) -> Response:
    """Delete a rule."""
    await commission_service.delete_rule(session, auth, rule_id, if_match=if_match)
    return Response(status_code=204)
