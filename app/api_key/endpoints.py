from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import Query
from starlette.responses import Response

from app.api_key import schemas
from app.api_key.service import api_key as api_key_service
from app.auth.dependencies import AdminKey
from app.db.session import SessionDep
from app.kit.errors import COMMON_RESPONSES, InvalidCursor, NotFound, PreconditionFailed
from app.kit.http import Cursor, IfMatch, IfNoneMatch, Limit, conditional_get, json_response
from app.kit.pagination import DEFAULT_LIMIT, Page
from app.kit.routing import PrefixedRouter, UnitOfWorkRoute

router = PrefixedRouter(prefix="/api-keys", tags=["api-keys"], route_class=UnitOfWorkRoute,
                   responses=COMMON_RESPONSES)  # fmt: skip
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: NotFound.openapi_response()}


@router.get(
    "", response_model=Page[schemas.ApiKey], responses={400: InvalidCursor.openapi_response()}
)
async def list(
    session: SessionDep,
    auth: AdminKey,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
    sort: Annotated[
        str | None, Query(max_length=40, description="`created_at` or `name`; `-` for descending.")
    ] = None,
    include_revoked: bool = False,
) -> Response:
    """List the workspace's API keys, newest first."""
    rows, next_cursor = await api_key_service.list(
        session, auth, limit=limit, cursor=cursor, sort=sort, include_revoked=include_revoked
    )
    page = Page[schemas.ApiKey](
        data=[schemas.ApiKey.model_validate(row) for row in rows], next_cursor=next_cursor
    )
    return json_response(page)


@router.post("", status_code=201, response_model=schemas.ApiKeyWithSecret)
async def create(create: schemas.ApiKeyCreate, session: SessionDep, auth: AdminKey) -> Response:
    """Issue an API key. Its secret is in this response only."""
    created = await api_key_service.create(session, auth, create)
    body = schemas.ApiKeyWithSecret.model_validate(
        {**schemas.ApiKey.model_validate(created.record).model_dump(), "key": created.token}
    )
    return json_response(
        body,
        status_code=201,
        version=created.record.version,
        headers={"Location": f"/v1/api-keys/{created.record.id}"},
    )


@router.get(
    "/{api_key_id}",
    response_model=schemas.ApiKey,
    responses={**NOT_FOUND, 304: {"description": "Not modified"}},
)
async def get(
    api_key_id: uuid.UUID, session: SessionDep, auth: AdminKey, if_none_match: IfNoneMatch = None
) -> Response:
    """One API key, without its secret."""
    record = await api_key_service.get(session, auth, api_key_id)
    body = schemas.ApiKey.model_validate(record)
    return conditional_get(body, version=record.version, if_none_match=if_none_match)


@router.delete(
    "/{api_key_id}",
    status_code=204,
    responses={**NOT_FOUND, 412: PreconditionFailed.openapi_response()},
)
async def delete(
    api_key_id: uuid.UUID, session: SessionDep, auth: AdminKey, if_match: IfMatch = None
) -> Response:
    """Revoke an API key: it stops working at once."""
    await api_key_service.revoke(session, auth, api_key_id, if_match=if_match)
    return Response(status_code=204)
