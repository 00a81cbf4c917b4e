from __future__ import annotations

import builtins
import uuid
from typing import Annotated, Any

from fastapi import Path, Query
from starlette.responses import Response

from app.auth.dependencies import PurchasesRead, PurchasesWrite
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
from app.kit.schemas import QueryTimestamp
from app.models import Purchase
from app.purchase import schemas
from app.purchase.service import PurchaseQuery
from app.purchase.service import purchase as purchase_service

router = PrefixedRouter(
    prefix="/purchases",
    tags=["purchases"],
    route_class=UnitOfWorkRoute,
    responses=COMMON_RESPONSES,
)
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: NotFound.openapi_response()}
NOT_MODIFIED: dict[int | str, dict[str, Any]] = {304: {"description": "Not modified"}}
BAD_CURSOR: dict[int | str, dict[str, Any]] = {400: InvalidCursor.openapi_response()}
PRECONDITION: dict[int | str, dict[str, Any]] = {412: PreconditionFailed.openapi_response()}


def _body(purchase: Purchase) -> schemas.Purchase:
    return purchase_service.to_schema(purchase)


@router.get("", response_model=Page[schemas.Purchase], responses=BAD_CURSOR)
# The endpoint's name is its operation id (purchases-list), hence builtins.list above.
async def list(
    session: SessionDep,
    auth: PurchasesRead,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
    sort: Annotated[
        str | None,
        Query(
            max_length=40,
            description="`occurred_at` or `created_at`, `-` for descending "
            "(default `-occurred_at`, newest first).",
        ),
    ] = None,
    contact_id: Annotated[uuid.UUID | None, Query(description="The buyer.")] = None,
    status: Annotated[builtins.list[schemas.PurchaseStatus] | None, Query(max_length=4)] = None,
    channel: Annotated[builtins.list[schemas.PurchaseChannel] | None, Query(max_length=7)] = None,
    store_id: Annotated[str | None, Query(min_length=1, max_length=100)] = None,
    currency: Annotated[Currency | None, Query(description="ISO 4217 code.")] = None,
    occurred_after: Annotated[
        QueryTimestamp | None, Query(description="At or after this time.")
    ] = None,
    occurred_before: Annotated[
        QueryTimestamp | None, Query(description="Strictly before this time.")
    ] = None,
) -> Response:
    """List purchases with their items, newest first."""
    query = PurchaseQuery(
        contact_id=contact_id,
        statuses=status or (),
        channels=channel or (),
        store_id=store_id,
        currency=currency,
        occurred_after=occurred_after,
        occurred_before=occurred_before,
    )
    rows, next_cursor = await purchase_service.find(
        session, auth, query, limit=limit, cursor=cursor, sort=sort
    )
    return json_response(
        Page[schemas.Purchase](data=[_body(row) for row in rows], next_cursor=next_cursor)
    )


@router.post(
    "",
    status_code=201,
    response_model=schemas.Purchase,
    responses={
        200: {
            "model": schemas.Purchase,
            "description": "A purchase with one of these external ids was already recorded; "
            "nothing was stored and the recorded purchase is returned.",
        },
        **NOT_FOUND,
        409: Duplicate.openapi_response(),
    },
)
async def create(
    data: schemas.PurchaseCreate, session: SessionDep, auth: PurchasesWrite
) -> Response:
    """Record a purchase.

    The items' amounts (quantity x unit price - discount) must add up exactly to `total`, in
    its currency; otherwise a 422 names the offending fields. Totals and items cannot change
    afterwards.

    Ingest is idempotent by external id: when a purchase with one of the `external_ids`
    (the POS or shop order id) is already recorded, nothing is stored and that purchase is
    returned with 200 instead of 201. Concurrent duplicates create one purchase. An unknown
    contact is a 404; a contact merged into another is a 404 whose `merged_into` names the
    survivor.
    """
    purchase, created = await purchase_service.create(session, auth, data)
    return json_response(
        _body(purchase),
        status_code=201 if created else 200,
        version=purchase.version,
        headers={"Location": f"/v1/purchases/{purchase.id}"},
    )


@router.get(
    "/by-external-id/{system}/{value}",
    response_model=schemas.Purchase,
    responses={**NOT_FOUND, **NOT_MODIFIED},
)
async def get_by_external_id(
    system: Annotated[str, Path(max_length=64)],
    value: Annotated[str, Path(max_length=255)],
    session: SessionDep,
    auth: PurchasesRead,
    if_none_match: IfNoneMatch = None,
) -> Response:
    """Find a purchase by its POS or shop order id."""
    purchase = await purchase_service.get_by_external_id(session, auth, system, value)
    return conditional_get(_body(purchase), version=purchase.version, if_none_match=if_none_match)


@router.get(
    "/{purchase_id}", response_model=schemas.Purchase, responses={**NOT_FOUND, **NOT_MODIFIED}
)
async def get(
    purchase_id: uuid.UUID,
    session: SessionDep,
    auth: PurchasesRead,
    if_none_match: IfNoneMatch = None,
) -> Response:
    """One purchase with its items."""
    purchase = await purchase_service.get(session, auth, purchase_id)
    return conditional_get(_body(purchase), version=purchase.version, if_none_match=if_none_match)


@router.patch(
    "/{purchase_id}",
    response_model=schemas.Purchase,
    responses={**NOT_FOUND, 409: Conflict.openapi_response(), **PRECONDITION},
)
async def update(
    purchase_id: uuid.UUID,
    patch: schemas.PurchaseUpdate,
    session: SessionDep,
    auth: PurchasesWrite,
    if_match: IfMatch = None,
) -> Response:
    """Change a purchase (JSON merge patch): `channel`, `store_id`, `attributes`,
    `external_ids`, or `status: "cancelled"` for a purchase without refunds.

    The buyer, time, total and items are immutable: record a refund or cancel the purchase
    instead. An external id of another purchase is a 409; cancelling a purchase with refunds
    is a 409 `conflict`.
    """
    purchase = await purchase_service.update(session, auth, purchase_id, patch, if_match=if_match)
    return json_response(_body(purchase), version=purchase.version)


@router.delete("/{purchase_id}", status_code=204, responses={**NOT_FOUND, **PRECONDITION})
async def delete(
    purchase_id: uuid.UUID, session: SessionDep, auth: PurchasesWrite, if_match: IfMatch = None
) -> Response:
    """Delete a purchase, with its items and refunds."""
    await purchase_service.delete(session, auth, purchase_id, if_match=if_match)
    return Response(status_code=204)


# -- refunds ---------------------------------------------------------------------------------


@router.post(
    "/{purchase_id}/refunds",
    status_code=201,
    response_model=schemas.RefundResult,
    responses={
        200: {
            "model": schemas.RefundResult,
            "description": "A refund with this `external_id` was already recorded on the "
            "purchase; nothing was stored and it is returned.",
        },
        **NOT_FOUND,
        409: Conflict.openapi_response(),
    },
)
async def create_refund(
    purchase_id: uuid.UUID,
    data: schemas.RefundCreate,
    session: SessionDep,
    auth: PurchasesWrite,
) -> Response:
    """Refund a purchase, by `amount` or by returned `items`.

    By items, each returned unit gives back its unit price minus its share of the line's
    discount; the discount carried by the first n units ever returned from a line is
    ceil(discount x n / quantity) minor units, so all returns of a line add up exactly to the
    line's amount. A refund larger than what remains (total - refunded), or more units than
    remain of a line, is a 422 `refund_exceeds_paid`; refunding a cancelled purchase is a 409
    `conflict`. The purchase becomes `partially_refunded` or `refunded` and gets a new version.
    Concurrent refunds of one purchase are serialised and never exceed its total. The
    response is the refund with the purchase's new status.
    """
    refund, purchase, created = await purchase_service.refund(session, auth, purchase_id, data)
    return json_response(
        purchase_service.refund_result(refund, purchase),
        status_code=201 if created else 200,
        headers={"Location": f"/v1/purchases/{purchase.id}/refunds/{refund.id}"},
    )


@router.get(
    "/{purchase_id}/refunds",
    response_model=Page[schemas.PurchaseRefund],
    responses={**NOT_FOUND, **BAD_CURSOR},
)
async def list_refunds(
    purchase_id: uuid.UUID,
    session: SessionDep,
    auth: PurchasesRead,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Response:
    """The purchase's refunds, oldest first."""
    rows, next_cursor = await purchase_service.refunds(
        session, auth, purchase_id, limit=limit, cursor=cursor
    )
    return json_response(
        Page[schemas.PurchaseRefund](
            data=[purchase_service.refund_to_schema(row) for row in rows],
            next_cursor=next_cursor,
        )
    )


@router.get(
    "/{purchase_id}/refunds/{refund_id}",
    response_model=schemas.PurchaseRefund,
    responses=NOT_FOUND,
)
async def get_refund(
    purchase_id: uuid.UUID, refund_id: uuid.UUID, session: SessionDep, auth: PurchasesRead
) -> Response:
    """One refund of the purchase."""
    refund = await purchase_service.get_refund(session, auth, purchase_id, refund_id)
    return json_response(purchase_service.refund_to_schema(refund))
