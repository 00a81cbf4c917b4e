from __future__ import annotations

import builtins
import uuid
from typing import Annotated, Any

from fastapi import Query
from starlette.responses import Response

from app.auth.dependencies import OpportunitiesRead, OpportunitiesWrite
from app.db.session import SessionDep
from app.kit.errors import COMMON_RESPONSES, Conflict, InvalidCursor, NotFound, PreconditionFailed
from app.kit.http import Cursor, IfMatch, IfNoneMatch, Limit, conditional_get, json_response
from app.kit.pagination import DEFAULT_LIMIT, Page
from app.kit.routing import PrefixedRouter, UnitOfWorkRoute
from app.lead import schemas
from app.lead.service import LeadQuery
from app.lead.service import lead as lead_service

router = PrefixedRouter(
    prefix="/leads", tags=["leads"], route_class=UnitOfWorkRoute, responses=COMMON_RESPONSES
)
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: NotFound.openapi_response()}
NOT_MODIFIED: dict[int | str, dict[str, Any]] = {304: {"description": "Not modified"}}
PRECONDITION: dict[int | str, dict[str, Any]] = {412: PreconditionFailed.openapi_response()}
CONFLICT: dict[int | str, dict[str, Any]] = {409: Conflict.openapi_response()}


@router.get(
    "", response_model=Page[schemas.Lead], responses={400: InvalidCursor.openapi_response()}
)
async def list(
    session: SessionDep,
    auth: OpportunitiesRead,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
    sort: Annotated[
        str | None,
        Query(max_length=40, description="`created_at` or `updated_at`, `-` for descending."),
    ] = None,
    status: Annotated[builtins.list[schemas.LeadStatus] | None, Query(max_length=5)] = None,
    owner: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    source: Annotated[str | None, Query(min_length=1, max_length=100)] = None,
    email: Annotated[str | None, Query(min_length=3, max_length=320)] = None,
) -> Response:
    """List leads, newest first."""
    query = LeadQuery(
        statuses=status or (),
        owner=owner,
        source=source,
        email=email.strip().lower() if email else None,
    )
    rows, next_cursor = await lead_service.find(
        session, auth, query, limit=limit, cursor=cursor, sort=sort
    )
    return json_response(
        Page[schemas.Lead](data=[lead_service.to_schema(r) for r in rows], next_cursor=next_cursor)
    )


@router.post("", status_code=201, response_model=schemas.Lead)
async def create(
    data: schemas.LeadCreate, session: SessionDep, auth: OpportunitiesWrite
) -> Response:
    """Record a lead."""
    row = await lead_service.create(session, auth, data)
    return json_response(
        lead_service.to_schema(row),
        status_code=201,
        version=row.version,
        headers={"Location": f"/v1/leads/{row.id}"},
    )


@router.get("/{lead_id}", response_model=schemas.Lead, responses={**NOT_FOUND, **NOT_MODIFIED})
async def get(
    lead_id: uuid.UUID,
    session: SessionDep,
    auth: OpportunitiesRead,
    if_none_match: IfNoneMatch = None,
) -> Response:
    """One lead."""
    row = await lead_service.get(session, auth, lead_id)
    return conditional_get(
        lead_service.to_schema(row), version=row.version, if_none_match=if_none_match
    )


@router.patch(
    "/{lead_id}", response_model=schemas.Lead, responses={**NOT_FOUND, **CONFLICT, **PRECONDITION}
)
async def update(
    lead_id: uuid.UUID,
    patch: schemas.LeadUpdate,
    session: SessionDep,
    auth: OpportunitiesWrite,
    if_match: IfMatch = None,
) -> Response:
    """Change a lead (JSON merge patch); a converted lead cannot change (409)."""
    row = await lead_service.update(session, auth, lead_id, patch, if_match=if_match)
    return json_response(lead_service.to_schema(row), version=row.version)


@router.delete("/{lead_id}", status_code=204, responses={**NOT_FOUND, **PRECONDITION})
async def delete(
    lead_id: uuid.UUID, session: SessionDep, auth: OpportunitiesWrite, if_match: IfMatch = None
) -> Response:
    """Delete a lead (what a conversion created stays)."""
    await lead_service.delete(session, auth, lead_id, if_match=if_match)
    return Response(status_code=204)


@router.post(
    "/{lead_id}/convert",
    response_model=schemas.LeadConversion,
    responses={**NOT_FOUND, **CONFLICT, **PRECONDITION},
)
async def convert(
    lead_id: uuid.UUID,
    data: schemas.LeadConvert,
    session: SessionDep,
    auth: OpportunitiesWrite,
    if_match: IfMatch = None,
) -> Response:
    """Convert a lead into a contact, an account and optionally an opportunity, in one
    transaction.

    The contact is matched by e-mail, the account by the e-mail's domain (unless a public
    mail service's) or the company name; what is not matched is created (an account only when
    the lead names a company). Converting twice, or a disqualified lead, is a 409 naming
    `status`.
    """
    result = await lead_service.convert(session, auth, lead_id, data, if_match=if_match)
    return json_response(result, version=result.lead.version)
