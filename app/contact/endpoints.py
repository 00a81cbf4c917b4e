from __future__ import annotations

import builtins
import uuid
from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import Path, Query, Request
from pydantic import RootModel
from starlette.responses import Response

from app.auth.dependencies import (
    AuthContext,
    ContactsRead,
    ContactsReadNoSession,
    ContactsWrite,
    authorize,
)
from app.auth.scopes import Scope
from app.contact import schemas
from app.contact.batch import batch as batch_service
from app.contact.merge import merge as merge_service
from app.contact.relationship_schemas import Relationship, RelationshipCreate
from app.contact.relationships import relationship as relationship_service
from app.contact.service import ContactQuery
from app.contact.service import contact as contact_service
from app.db.direct import direct_pool
from app.db.session import SessionDep
from app.kit.errors import (
    COMMON_RESPONSES,
    Conflict,
    Duplicate,
    InvalidCursor,
    NotFound,
    PreconditionFailed,
)
from app.kit.hot import HotRoute
from app.kit.http import (
    IF_NONE_MATCH_MAX_LENGTH,
    Cursor,
    IfMatch,
    IfNoneMatch,
    Limit,
    conditional_document,
    conditional_get,
    json_response,
)
from app.kit.pagination import DEFAULT_LIMIT, Page
from app.kit.routing import PrefixedRouter, UnitOfWorkRoute
from app.kit.schemas import QueryTimestamp

router = PrefixedRouter(
    prefix="/contacts", tags=["contacts"], route_class=UnitOfWorkRoute, responses=COMMON_RESPONSES
)
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: NotFound.openapi_response()}
CONFLICT: dict[int | str, dict[str, Any]] = {409: Duplicate.openapi_response()}


class DuplicateList(RootModel[builtins.list[schemas.Duplicate]]):
    pass


class RelationshipList(RootModel[builtins.list[Relationship]]):
    pass


def _body(contact: Any) -> schemas.Contact:
    return contact_service.to_schema(contact)


@router.get(
    "", response_model=Page[schemas.Contact], responses={400: InvalidCursor.openapi_response()}
)
# The endpoint's name is its operation id (contacts-list), hence builtins.list above.
async def list(
    session: SessionDep,
    auth: ContactsRead,
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
            description="Search names, e-mails and phones: accent- and case-insensitive, "
            "substrings of three letters or more (Thai included), two-letter word starts, "
            "phone numbers in any format; a whole e-mail address finds the contact that has "
            "it. Every word must match. When more than 200 contacts match, the best of the "
            "first 200 are ranked (and paged through): refine the query.",
        ),
    ] = None,
    lifecycle_stage: Annotated[
        builtins.list[schemas.LifecycleStage] | None, Query(max_length=6)
    ] = None,
    tag: Annotated[
        builtins.list[Annotated[str, Query(max_length=64)]] | None,
        Query(max_length=20, description="Contacts carrying all of these tags."),
    ] = None,
    account_id: uuid.UUID | None = None,
    owner_id: Annotated[str | None, Query(max_length=200)] = None,
    email: Annotated[str | None, Query(max_length=320, description="Exact e-mail.")] = None,
    phone: Annotated[str | None, Query(max_length=64, description="A phone, any format.")] = None,
    has_email: bool | None = None,
    has_phone: bool | None = None,
    created_after: QueryTimestamp | None = None,
    created_before: QueryTimestamp | None = None,
    updated_after: QueryTimestamp | None = None,
    updated_before: QueryTimestamp | None = None,
) -> Response:
    """List or search contacts."""
    query = ContactQuery(
        q=q.strip() if q else None,
        lifecycle_stages=lifecycle_stage or (),
        tags=tag or (),
        account_id=account_id,
        owner_id=owner_id,
        email=email.strip().lower() if email else None,
        phone=phone,
        has_email=has_email,
        has_phone=has_phone,
        created_after=created_after,
        created_before=created_before,
        updated_after=updated_after,
        updated_before=updated_before,
    )
    rows, next_cursor = await contact_service.find(
        session, auth, query, limit=limit, cursor=cursor, sort=sort
    )
    return json_response(
        Page[schemas.Contact](data=[_body(row) for row in rows], next_cursor=next_cursor)
    )


@router.post("", status_code=201, response_model=schemas.Contact, responses=CONFLICT)
async def create(data: schemas.ContactCreate, session: SessionDep, auth: ContactsWrite) -> Response:
    """Create a contact. An e-mail already used by another contact is a 409 naming it."""
    contact = await contact_service.create(session, auth, data)
    return json_response(
        _body(contact),
        status_code=201,
        version=contact.version,
        headers={"Location": f"/v1/contacts/{contact.id}"},
    )


@router.get(
    "/by-external-id/{system}/{value}",
    response_model=schemas.Contact,
    responses={**NOT_FOUND, 304: {"description": "Not modified"}},
)
async def get_by_external_id(
    system: Annotated[str, Path(max_length=64)],
    value: Annotated[str, Path(max_length=255)],
    session: SessionDep,
    auth: ContactsRead,
    if_none_match: IfNoneMatch = None,
) -> Response:
    """Find a contact by a partner system's key."""
    contact = await contact_service.get_by_external_id(session, auth, system, value)
    return conditional_get(_body(contact), version=contact.version, if_none_match=if_none_match)


@router.get(
    "/{contact_id}",
    response_model=schemas.Contact,
    responses={**NOT_FOUND, 304: {"description": "Not modified"}},
)
async def get(
    contact_id: uuid.UUID,
    request: Request,
    auth: ContactsReadNoSession,
    if_none_match: IfNoneMatch = None,
) -> Response:
    """One contact. A merged contact is a 404 whose `merged_into` names the survivor."""
    return await _read(request, auth, contact_id, if_none_match)


async def _read(
    request: Request, auth: AuthContext, contact_id: uuid.UUID, if_none_match: str | None
) -> Response:
    # The hottest read: no session, one statement (app.db.direct), and a hot route below.
    version, body = await contact_service.document(direct_pool(request), auth, contact_id)
    return conditional_document(body, version=version, if_none_match=if_none_match)


async def _hot_read(request: Request, params: Mapping[str, uuid.UUID]) -> Response | None:
    if_none_match = request.headers.get("if-none-match")
    if if_none_match is not None and len(if_none_match) > IF_NONE_MATCH_MAX_LENGTH:
        return None  # the endpoint's validation answers it (after the key is checked)
    auth = await authorize(request, Scope.contacts_read)
    return await _read(request, auth, params["contact_id"], if_none_match)


HOT_ROUTES = [HotRoute("GET", "/v1/contacts/{contact_id}", _hot_read)]


@router.patch(
    "/{contact_id}",
    response_model=schemas.Contact,
    responses={**NOT_FOUND, **CONFLICT, 412: PreconditionFailed.openapi_response()},
)
async def update(
    contact_id: uuid.UUID,
    patch: schemas.ContactUpdate,
    session: SessionDep,
    auth: ContactsWrite,
    if_match: IfMatch = None,
) -> Response:
    """Change a contact (JSON merge patch)."""
    contact = await contact_service.update(session, auth, contact_id, patch, if_match=if_match)
    return json_response(_body(contact), version=contact.version)


@router.delete(
    "/{contact_id}",
    status_code=204,
    responses={**NOT_FOUND, 412: PreconditionFailed.openapi_response()},
)
async def delete(
    contact_id: uuid.UUID, session: SessionDep, auth: ContactsWrite, if_match: IfMatch = None
) -> Response:
    """Delete a contact, with its contact points and relationships."""
    await contact_service.delete(session, auth, contact_id, if_match=if_match)
    return Response(status_code=204)


@router.post("/batch", response_model=schemas.BatchResult)
async def batch_upsert(
    batch: schemas.BatchUpsert, session: SessionDep, auth: ContactsWrite
) -> Response:
    """Create or update up to 1,000 contacts, matched by external id or e-mail."""
    return json_response(await batch_service.upsert(session, auth, batch))


@router.get(
    "/{contact_id}/duplicates", response_model=builtins.list[schemas.Duplicate], responses=NOT_FOUND
)
async def duplicates(contact_id: uuid.UUID, session: SessionDep, auth: ContactsRead) -> Response:
    """Likely duplicates of a contact (same phone, similar name), most likely first."""
    found = await merge_service.duplicates(session, auth, contact_id)
    return json_response(DuplicateList(found))


@router.post("/{contact_id}/merge", response_model=schemas.MergeResult, responses=NOT_FOUND)
async def merge(
    contact_id: uuid.UUID, request: schemas.MergeRequest, session: SessionDep, auth: ContactsWrite
) -> Response:
    """Merge other contacts into this one (`dry_run` previews the result)."""
    result = await merge_service.merge(session, auth, contact_id, request)
    return json_response(result, version=None if result.dry_run else result.contact.version)


@router.get(
    "/{contact_id}/relationships",
    response_model=builtins.list[Relationship],
    responses=NOT_FOUND,
)
async def list_relationships(
    contact_id: uuid.UUID, session: SessionDep, auth: ContactsRead
) -> Response:
    """The contact's links to other contacts, seen from its side."""
    rows = await relationship_service.list_for(session, auth, contact_id)
    return json_response(RelationshipList([Relationship.model_validate(r) for r in rows]))


@router.post(
    "/{contact_id}/relationships",
    status_code=201,
    response_model=Relationship,
    responses={**NOT_FOUND, 409: Conflict.openapi_response()},
)
async def create_relationship(
    contact_id: uuid.UUID, data: RelationshipCreate, session: SessionDep, auth: ContactsWrite
) -> Response:
    """Link two contacts; the inverse link appears on the other contact."""
    row = await relationship_service.create(session, auth, contact_id, data)
    return json_response(
        Relationship.model_validate(row),
        status_code=201,
        headers={"Location": f"/v1/contacts/{contact_id}/relationships/{row.id}"},
    )


@router.delete(
    "/{contact_id}/relationships/{relationship_id}", status_code=204, responses=NOT_FOUND
)
async def delete_relationship(
    contact_id: uuid.UUID, relationship_id: uuid.UUID, session: SessionDep, auth: ContactsWrite
) -> Response:
    """Remove a link (both directions)."""
    await relationship_service.delete(session, auth, contact_id, relationship_id)
    return Response(status_code=204)
