from __future__ import annotations

import builtins
import uuid
from typing import Annotated, Any

from fastapi import Path, Query
from pydantic import AfterValidator
from starlette.responses import Response

from app.account import schemas
from app.account.service import AccountQuery
from app.account.service import account as account_service
from app.auth.dependencies import AccountsRead, AccountsWrite
from app.contact.schemas import Contact as ContactSchema
from app.contact.service import contact as contact_service
from app.db.session import SessionDep
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
from app.models import Account

router = PrefixedRouter(
    prefix="/accounts", tags=["accounts"], route_class=UnitOfWorkRoute, responses=COMMON_RESPONSES
)
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: NotFound.openapi_response()}
CONFLICT: dict[int | str, dict[str, Any]] = {409: Duplicate.openapi_response()}
BAD_CURSOR: dict[int | str, dict[str, Any]] = {400: InvalidCursor.openapi_response()}
BATCH_FAILED: dict[int | str, dict[str, Any]] = {
    422: {
        "model": schemas.AccountBatchProblem,
        "description": "The request is not valid; or, with `all_or_none`, an item failed and "
        "nothing was written (`results` lists every item's result).",
        "content": {
            "application/problem+json": {
                "schema": {"$ref": "#/components/schemas/AccountBatchProblem"}
            }
        },
    }
}


def _body(account: Account) -> schemas.Account:
    return account_service.to_schema(account)


@router.get("", response_model=Page[schemas.Account], responses=BAD_CURSOR)
# The endpoint's name is its operation id (accounts-list), hence builtins.list above.
async def list(
    session: SessionDep,
    auth: AccountsRead,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
    sort: Annotated[
        str | None,
        Query(
            max_length=40,
            description="`created_at`, `updated_at` or `name`, `-` for descending "
            "(default `-created_at`); with `q`, results are ranked by relevance.",
        ),
    ] = None,
    q: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=200,
            description="Search names and domains: accent- and case-insensitive, substrings "
            "(Thai included).",
        ),
    ] = None,
    type: Annotated[builtins.list[schemas.AccountType] | None, Query(max_length=6)] = None,
    parent_account_id: Annotated[
        uuid.UUID | None, Query(description="Direct children of this account.")
    ] = None,
    owner_id: Annotated[str | None, Query(max_length=200)] = None,
    domain: Annotated[
        Annotated[str, AfterValidator(schemas.normalize_domain)] | None,
        Query(max_length=2048, description="Exact domain; a URL or `www.` form matches too."),
    ] = None,
    created_after: QueryTimestamp | None = None,
    created_before: QueryTimestamp | None = None,
    updated_after: QueryTimestamp | None = None,
    updated_before: QueryTimestamp | None = None,
) -> Response:
    """List or search accounts."""
    query = AccountQuery(
        q=q.strip() if q else None,
        types=type or (),
        parent_account_id=parent_account_id,
        owner_id=owner_id,
        domain=domain,
        created_after=created_after,
        created_before=created_before,
        updated_after=updated_after,
        updated_before=updated_before,
    )
    rows, next_cursor = await account_service.find(
        session, auth, query, limit=limit, cursor=cursor, sort=sort
    )
    return json_response(
        Page[schemas.Account](data=[_body(row) for row in rows], next_cursor=next_cursor)
    )


@router.post("", status_code=201, response_model=schemas.Account, responses=CONFLICT)
async def create(data: schemas.AccountCreate, session: SessionDep, auth: AccountsWrite) -> Response:
    """Create an account. A domain or external id already used is a 409 naming its account."""
    account = await account_service.create(session, auth, data)
    return json_response(
        _body(account),
        status_code=201,
        version=account.version,
        headers={"Location": f"/v1/accounts/{account.id}"},
    )


@router.post("/batch", response_model=schemas.AccountBatchResult, responses=BATCH_FAILED)
async def batch_upsert(
    batch: schemas.AccountBatchUpsert, session: SessionDep, auth: AccountsWrite
) -> Response:
    """Create or update up to 1,000 accounts, matched by external id or domain.

    A 200 reports each item as `created`, `updated` or `error` (with the problem it alone
    would have had); failed items write nothing, the others are kept. With `all_or_none`,
    one failed item makes the whole batch a 422, and nothing is written.
    """
    return json_response(await account_service.batch(session, auth, batch))


@router.get(
    "/by-external-id/{system}/{value}",
    response_model=schemas.Account,
    responses={**NOT_FOUND, 304: {"description": "Not modified"}},
)
async def get_by_external_id(
    system: Annotated[str, Path(max_length=64)],
    value: Annotated[str, Path(max_length=255)],
    session: SessionDep,
    auth: AccountsRead,
    if_none_match: IfNoneMatch = None,
) -> Response:
    """Find an account by a partner system's key."""
    account = await account_service.get_by_external_id(session, auth, system, value)
    return conditional_get(_body(account), version=account.version, if_none_match=if_none_match)


@router.get(
    "/{account_id}",
    response_model=schemas.Account,
    responses={**NOT_FOUND, 304: {"description": "Not modified"}},
)
async def get(
    account_id: uuid.UUID,
    session: SessionDep,
    auth: AccountsRead,
    if_none_match: IfNoneMatch = None,
) -> Response:
    """One account."""
    account = await account_service.get(session, auth, account_id)
    return conditional_get(_body(account), version=account.version, if_none_match=if_none_match)


@router.patch(
    "/{account_id}",
    response_model=schemas.Account,
    responses={**NOT_FOUND, **CONFLICT, 412: PreconditionFailed.openapi_response()},
)
async def update(
    account_id: uuid.UUID,
    patch: schemas.AccountUpdate,
    session: SessionDep,
    auth: AccountsWrite,
    if_match: IfMatch = None,
) -> Response:
    """Change an account (JSON merge patch). A parent that would make a cycle is a 422."""
    account = await account_service.update(session, auth, account_id, patch, if_match=if_match)
    return json_response(_body(account), version=account.version)


@router.delete(
    "/{account_id}",
    status_code=204,
    responses={**NOT_FOUND, 412: PreconditionFailed.openapi_response()},
)
async def delete(
    account_id: uuid.UUID, session: SessionDep, auth: AccountsWrite, if_match: IfMatch = None
) -> Response:
    """Delete an account. Its contacts and child accounts stay, unlinked from it."""
    await account_service.delete(session, auth, account_id, if_match=if_match)
    return Response(status_code=204)


@router.get(
    "/{account_id}/contacts",
    response_model=Page[ContactSchema],
    responses={**NOT_FOUND, **BAD_CURSOR},
)
async def list_contacts(
    account_id: uuid.UUID,
    session: SessionDep,
    auth: AccountsRead,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Response:
    """The account's contacts, newest first."""
    rows, next_cursor = await account_service.contacts(
        session, auth, account_id, limit=limit, cursor=cursor
    )
    return json_response(
        Page[ContactSchema](
            data=[contact_service.to_schema(row) for row in rows], next_cursor=next_cursor
        )
    )
