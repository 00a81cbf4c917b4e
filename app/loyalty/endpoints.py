from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import Query, Request
from starlette.responses import Response

from app.auth.dependencies import LoyaltyRead, LoyaltyWrite, authorize
from app.auth.scopes import Scope
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
from app.kit.hot import HotRoute, parse_body
from app.kit.http import Cursor, IfMatch, IfNoneMatch, Limit, conditional_get, json_response
from app.kit.idempotency import IDEMPOTENCY_KEY
from app.kit.pagination import DEFAULT_LIMIT, Page
from app.kit.routing import PrefixedRouter, UnitOfWorkRoute
from app.loyalty import schemas
from app.loyalty.exceptions import InsufficientPoints
from app.loyalty.service import loyalty as loyalty_service

router = PrefixedRouter(
    prefix="/loyalty",
    tags=["loyalty"],
    route_class=UnitOfWorkRoute,
    responses=COMMON_RESPONSES,
)
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: NotFound.openapi_response()}
NOT_MODIFIED: dict[int | str, dict[str, Any]] = {304: {"description": "Not modified"}}
BAD_CURSOR: dict[int | str, dict[str, Any]] = {400: InvalidCursor.openapi_response()}
PRECONDITION: dict[int | str, dict[str, Any]] = {412: PreconditionFailed.openapi_response()}
CONFLICT: dict[int | str, dict[str, Any]] = {409: Conflict.openapi_response()}


def _entry_created(account_id: uuid.UUID, body: schemas.EntryResult, *, created: bool) -> Response:
    return json_response(
        body,
        status_code=201 if created else 200,
        headers={"Location": f"/v1/loyalty/accounts/{account_id}/entries/{body.entry.id}"},
    )


def _redemption_made(
    account_id: uuid.UUID, body: schemas.RedemptionResult, *, created: bool
) -> Response:
    return json_response(
        body,
        status_code=201 if created else 200,
        headers={"Location": f"/v1/loyalty/accounts/{account_id}/redemptions/{body.id}"},
    )


# -- programmes ------------------------------------------------------------------------------
@router.get("/programs", response_model=Page[schemas.Program], responses=BAD_CURSOR)
async def list_programs(
    session: SessionDep, auth: LoyaltyRead, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None
) -> Response:
    """List loyalty programmes with their tiers, oldest first."""
    rows, next_cursor = await loyalty_service.find_programs(
        session, auth, limit=limit, cursor=cursor
    )
    return json_response(
        Page[schemas.Program](
            data=[loyalty_service.program_schema(p, t) for p, t in rows], next_cursor=next_cursor
        )
    )


@router.post("/programs", status_code=201, response_model=schemas.Program)
async def create_program(
    data: schemas.ProgramCreate, session: SessionDep, auth: LoyaltyWrite
) -> Response:
    """Create a programme: earn rates per currency (rounded down per purchase), category and
    tier multipliers, bonuses, pending days, expiry, clawback policy and tiers."""
    program, tiers = await loyalty_service.create_program(session, auth, data)
    return json_response(
        loyalty_service.program_schema(program, tiers),
        status_code=201,
        version=program.version,
        headers={"Location": f"/v1/loyalty/programs/{program.id}"},
    )


@router.get(
    "/programs/{program_id}",
    response_model=schemas.Program,
    responses={**NOT_FOUND, **NOT_MODIFIED},
)
async def get_program(
    program_id: uuid.UUID,
    session: SessionDep,
    auth: LoyaltyRead,
    if_none_match: IfNoneMatch = None,
) -> Response:
    """One programme with its tiers."""
    program, tiers = await loyalty_service.get_program(session, auth, program_id)
    return conditional_get(
        loyalty_service.program_schema(program, tiers),
        version=program.version,
        if_none_match=if_none_match,
    )


@router.patch(
    "/programs/{program_id}",
    response_model=schemas.Program,
    responses={**NOT_FOUND, **PRECONDITION},
)
async def update_program(
    program_id: uuid.UUID,
    patch: schemas.ProgramUpdate,
    session: SessionDep,
    auth: LoyaltyWrite,
    if_match: IfMatch = None,
) -> Response:
    """Change a programme (merge patch). Rules apply to later earnings; the clawback policy
    and tier basis are fixed at creation."""
    program, tiers = await loyalty_service.update_program(
        session, auth, program_id, patch, if_match=if_match
    )
    return json_response(loyalty_service.program_schema(program, tiers), version=program.version)


@router.post(
    "/programs/{program_id}/tiers",
    status_code=201,
    response_model=schemas.Tier,
    responses={**NOT_FOUND, 409: Duplicate.openapi_response()},
)
async def create_tier(
    program_id: uuid.UUID, data: schemas.TierCreate, session: SessionDep, auth: LoyaltyWrite
) -> Response:
    """Add a tier; every member's tier is re-derived at once."""
    tier = await loyalty_service.create_tier(session, auth, program_id, data)
    return json_response(
        loyalty_service.tier_schema(tier),
        status_code=201,
        headers={"Location": f"/v1/loyalty/programs/{program_id}/tiers/{tier.id}"},
    )


@router.patch(
    "/programs/{program_id}/tiers/{tier_id}",
    response_model=schemas.Tier,
    responses={**NOT_FOUND, 409: Duplicate.openapi_response()},
)
async def update_tier(
    program_id: uuid.UUID,
    tier_id: uuid.UUID,
    patch: schemas.TierUpdate,
    session: SessionDep,
    auth: LoyaltyWrite,
) -> Response:
    """Change a tier (merge patch); every member's tier is re-derived at once."""
    tier = await loyalty_service.update_tier(session, auth, program_id, tier_id, patch)
    return json_response(loyalty_service.tier_schema(tier))


# -- accounts --------------------------------------------------------------------------------
@router.get("/accounts", response_model=Page[schemas.Account], responses=BAD_CURSOR)
async def list_accounts(
    session: SessionDep,
    auth: LoyaltyRead,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
    program_id: Annotated[uuid.UUID | None, Query()] = None,
    contact_id: Annotated[uuid.UUID | None, Query()] = None,
) -> Response:
    """List member accounts, oldest first."""
    rows, next_cursor = await loyalty_service.find_accounts(
        session, auth, program_id=program_id, contact_id=contact_id, limit=limit, cursor=cursor
    )
    return json_response(
        Page[schemas.Account](
            data=await loyalty_service.account_schemas(session, auth, rows),
            next_cursor=next_cursor,
        )
    )


@router.post(
    "/accounts",
    status_code=201,
    response_model=schemas.Account,
    responses={**NOT_FOUND, 409: Duplicate.openapi_response()},
)
async def enrol(data: schemas.AccountCreate, session: SessionDep, auth: LoyaltyWrite) -> Response:
    """Enrol a contact in a programme; a second enrolment in the same programme is a 409."""
    account = await loyalty_service.enrol(session, auth, data)
    return json_response(
        await loyalty_service.account_schema(session, auth, account),
        status_code=201,
        version=account.version,
        headers={"Location": f"/v1/loyalty/accounts/{account.id}"},
    )


@router.get(
    "/accounts/{account_id}",
    response_model=schemas.Account,
    responses={**NOT_FOUND, **NOT_MODIFIED},
)
async def get_account(
    account_id: uuid.UUID,
    session: SessionDep,
    auth: LoyaltyRead,
    if_none_match: IfNoneMatch = None,
) -> Response:
    """Balances, tier, progress to the next tier and points expiring in 30/60/90 days."""
    account = await loyalty_service.get_account(session, auth, account_id)
    return conditional_get(
        await loyalty_service.account_schema(session, auth, account),
        version=account.version,
        if_none_match=if_none_match,
    )


@router.get(
    "/accounts/{account_id}/entries",
    response_model=Page[schemas.Entry],
    responses={**NOT_FOUND, **BAD_CURSOR},
)
async def list_entries(
    account_id: uuid.UUID,
    session: SessionDep,
    auth: LoyaltyRead,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Response:
    """The account's append-only ledger, newest first."""
    rows, next_cursor = await loyalty_service.entries(
        session, auth, account_id, limit=limit, cursor=cursor
    )
    return json_response(
        Page[schemas.Entry](
            data=[loyalty_service.entry_schema(row) for row in rows], next_cursor=next_cursor
        )
    )


@router.get(
    "/accounts/{account_id}/entries/{entry_id}", response_model=schemas.Entry, responses=NOT_FOUND
)
async def get_entry(
    account_id: uuid.UUID, entry_id: uuid.UUID, session: SessionDep, auth: LoyaltyRead
) -> Response:
    """One ledger entry."""
    entry = await loyalty_service.get_entry(session, auth, account_id, entry_id)
    return json_response(loyalty_service.entry_schema(entry))


@router.post(
    "/accounts/{account_id}/entries",
    status_code=201,
    response_model=schemas.EntryResult,
    responses={
        200: {
            "model": schemas.EntryResult,
            "description": "An entry with this `reference` was already recorded; it is returned.",
        },
        **NOT_FOUND,
        409: InsufficientPoints.openapi_response(),
    },
)
async def create_entry(
    account_id: uuid.UUID,
    data: schemas.EntryCreate,
    session: SessionDep,
    auth: LoyaltyWrite,
) -> Response:
    """A manual `earn`, or an `adjust` (with a reason; recorded with the API key that made it).

    Earned and positively adjusted points are available at once and expire per the
    programme. A negative adjust spends available points like a redemption; beyond them it is
    a 409 `insufficient_points`. A known `reference` returns the recorded entry with 200; the
    same reference with other values is a 409 `reference_reused`.
    """
    # A plain entry without Idempotency-Key is answered by _hot_entry below; what reaches this
    # endpoint commits with the request's transaction.
    entry, account, created = await loyalty_service.post_entry(session, auth, account_id, data)
    body = schemas.EntryResult(
        entry=loyalty_service.entry_schema(entry),
        account=await loyalty_service.account_schema(session, auth, account),
    )
    return _entry_created(account_id, body, created=created)


async def _hot_entry(request: Request, params: Mapping[str, uuid.UUID]) -> Response | None:
    # Only the plain case, without the session's transaction; anything else (an
    # Idempotency-Key, a reference, a body the schema refuses, an account with a lot due)
    # is left to the endpoint, which answers it as always.
    if IDEMPOTENCY_KEY in request.headers:
        return None
    data = await parse_body(request, schemas.EntryCreate)
    if data is None or data.reference is not None:
        return None
    auth = await authorize(request, Scope.loyalty_write)
    account_id = params["account_id"]
    result = await loyalty_service.post_entry_alone(direct_pool(request), auth, account_id, data)
    return None if result is None else _entry_created(account_id, result, created=True)


# -- redemptions -----------------------------------------------------------------------------
@router.get(
    "/accounts/{account_id}/redemptions",
    response_model=Page[schemas.Redemption],
    responses={**NOT_FOUND, **BAD_CURSOR},
)
async def list_redemptions(
    account_id: uuid.UUID,
    session: SessionDep,
    auth: LoyaltyRead,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Response:
    """The account's redemptions, newest first."""
    rows, next_cursor = await loyalty_service.find_redemptions(
        session, auth, account_id, limit=limit, cursor=cursor
    )
    return json_response(
        Page[schemas.Redemption](
            data=[loyalty_service.redemption_schema(row) for row in rows], next_cursor=next_cursor
        )
    )


@router.post(
    "/accounts/{account_id}/redemptions",
    status_code=201,
    response_model=schemas.RedemptionResult,
    responses={
        200: {
            "model": schemas.RedemptionResult,
            "description": "A redemption with this `reference` exists; it is returned.",
        },
        **NOT_FOUND,
        409: InsufficientPoints.openapi_response(),
    },
)
async def redeem(
    account_id: uuid.UUID,
    data: schemas.RedemptionCreate,
    session: SessionDep,
    auth: LoyaltyWrite,
) -> Response:
    """Redeem `points`, or a reward (`reward_id`) at its cost.

    Consumes available lots, the earliest expiry first. Not enough available points is a
    409 `insufficient_points`; a reward out of stock a 409 `out_of_stock`; a reward outside
    its validity or inactive a 409 `reward_unavailable`; a member below the reward's
    minimum tier a 409 `tier_too_low`. Stock and points change in one transaction.
    """
    # As create_entry: the plain case is answered by _hot_redemption below.
    redemption, account, created = await loyalty_service.redeem(session, auth, account_id, data)
    body = schemas.RedemptionResult(
        **loyalty_service.redemption_schema(redemption).model_dump(),
        account=await loyalty_service.account_schema(session, auth, account),
    )
    return _redemption_made(account_id, body, created=created)


async def _hot_redemption(request: Request, params: Mapping[str, uuid.UUID]) -> Response | None:
    # As _hot_entry: the plain case only.
    if IDEMPOTENCY_KEY in request.headers:
        return None
    data = await parse_body(request, schemas.RedemptionCreate)
    if data is None or data.reference is not None or data.points is None:
        return None
    auth = await authorize(request, Scope.loyalty_write)
    account_id = params["account_id"]
    result = await loyalty_service.redeem_alone(direct_pool(request), auth, account_id, data)
    return None if result is None else _redemption_made(account_id, result, created=True)


@router.get(
    "/accounts/{account_id}/redemptions/{redemption_id}",
    response_model=schemas.Redemption,
    responses=NOT_FOUND,
)
async def get_redemption(
    account_id: uuid.UUID, redemption_id: uuid.UUID, session: SessionDep, auth: LoyaltyRead
) -> Response:
    """One redemption."""
    redemption = await loyalty_service.get_redemption(session, auth, account_id, redemption_id)
    return json_response(loyalty_service.redemption_schema(redemption))


@router.post(
    "/accounts/{account_id}/redemptions/{redemption_id}/reverse",
    response_model=schemas.RedemptionResult,
    responses={**NOT_FOUND, **CONFLICT},
)
async def reverse_redemption(
    account_id: uuid.UUID,
    redemption_id: uuid.UUID,
    session: SessionDep,
    auth: LoyaltyWrite,
    data: schemas.RedemptionReverse | None = None,
) -> Response:
    """Reverse a redemption: exactly the consumed points go back to the lots they came from,
    with those lots' expiry (points already past it expire at once); a reward's unit goes
    back into stock. A second reversal is a 409 `already_reversed`."""
    redemption, account = await loyalty_service.reverse_redemption(
        session, auth, account_id, redemption_id, data or schemas.RedemptionReverse()
    )
    body = schemas.RedemptionResult(
        **loyalty_service.redemption_schema(redemption).model_dump(),
        account=await loyalty_service.account_schema(session, auth, account),
    )
    return json_response(body)


# -- rewards ---------------------------------------------------------------------------------
@router.get("/rewards", response_model=Page[schemas.Reward], responses=BAD_CURSOR)
async def list_rewards(
    session: SessionDep,
    auth: LoyaltyRead,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
    program_id: Annotated[uuid.UUID | None, Query()] = None,
) -> Response:
    """The rewards catalogue, oldest first."""
    rows, next_cursor = await loyalty_service.find_rewards(
        session, auth, program_id=program_id, limit=limit, cursor=cursor
    )
    return json_response(
        Page[schemas.Reward](
            data=[loyalty_service.reward_schema(row) for row in rows], next_cursor=next_cursor
        )
    )


@router.post("/rewards", status_code=201, response_model=schemas.Reward, responses=NOT_FOUND)
async def create_reward(
    data: schemas.RewardCreate, session: SessionDep, auth: LoyaltyWrite
) -> Response:
    """Add a reward: cost in points, stock (null: unlimited), validity, minimum tier."""
    reward = await loyalty_service.create_reward(session, auth, data)
    return json_response(
        loyalty_service.reward_schema(reward),
        status_code=201,
        version=reward.version,
        headers={"Location": f"/v1/loyalty/rewards/{reward.id}"},
    )


@router.get(
    "/rewards/{reward_id}", response_model=schemas.Reward, responses={**NOT_FOUND, **NOT_MODIFIED}
)
async def get_reward(
    reward_id: uuid.UUID, session: SessionDep, auth: LoyaltyRead, if_none_match: IfNoneMatch = None
) -> Response:
    """One reward."""
    reward = await loyalty_service.get_reward(session, auth, reward_id)
    return conditional_get(
        loyalty_service.reward_schema(reward), version=reward.version, if_none_match=if_none_match
    )


@router.patch(
    "/rewards/{reward_id}",
    response_model=schemas.Reward,
    responses={**NOT_FOUND, **PRECONDITION},
)
async def update_reward(
    reward_id: uuid.UUID,
    patch: schemas.RewardUpdate,
    session: SessionDep,
    auth: LoyaltyWrite,
    if_match: IfMatch = None,
) -> Response:
    """Change a reward (merge patch); `active: false` withdraws it."""
    reward = await loyalty_service.update_reward(session, auth, reward_id, patch, if_match=if_match)
    return json_response(loyalty_service.reward_schema(reward), version=reward.version)


HOT_ROUTES = [
    HotRoute("POST", "/v1/loyalty/accounts/{account_id}/entries", _hot_entry),
    HotRoute("POST", "/v1/loyalty/accounts/{account_id}/redemptions", _hot_redemption),
]
