from __future__ import annotations

import builtins
import uuid
from typing import Annotated, Any

from fastapi import Path, Query
from starlette.responses import Response

from app.auth.dependencies import CasesRead, CasesWrite
from app.case import schemas
from app.case.report import report as report_service
from app.case.service import CaseQuery
from app.case.service import case as case_service
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
from app.kit.schemas import QueryTimestamp

router = PrefixedRouter(
    prefix="/cases", tags=["cases"], route_class=UnitOfWorkRoute, responses=COMMON_RESPONSES
)
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: NotFound.openapi_response()}
NOT_MODIFIED: dict[int | str, dict[str, Any]] = {304: {"description": "Not modified"}}
BAD_CURSOR: dict[int | str, dict[str, Any]] = {400: InvalidCursor.openapi_response()}
PRECONDITION: dict[int | str, dict[str, Any]] = {412: PreconditionFailed.openapi_response()}
CONFLICT: dict[int | str, dict[str, Any]] = {409: Conflict.openapi_response()}


@router.get("", response_model=Page[schemas.Case], responses=BAD_CURSOR)
async def list(
    session: SessionDep,
    auth: CasesRead,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
    sort: Annotated[
        str | None,
        Query(
            max_length=40,
            description="`created_at`, `updated_at` or `number`, `-` for descending "
            "(default `-created_at`).",
        ),
    ] = None,
    contact_id: uuid.UUID | None = None,
    status: Annotated[builtins.list[schemas.CaseStatus] | None, Query(max_length=5)] = None,
    priority: Annotated[builtins.list[schemas.Priority] | None, Query(max_length=4)] = None,
    queue_id: uuid.UUID | None = None,
    assignee: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    category: Annotated[str | None, Query(min_length=1, max_length=100)] = None,
    channel: Annotated[str | None, Query(min_length=1, max_length=20)] = None,
    breached: Annotated[
        bool | None, Query(description="Only cases whose SLA was (or was not) missed.")
    ] = None,
    created_after: QueryTimestamp | None = None,
    created_before: QueryTimestamp | None = None,
) -> Response:
    """List cases, newest first."""
    query = CaseQuery(
        contact_id=contact_id,
        statuses=status or (),
        priorities=priority or (),
        queue_id=queue_id,
        assignee=assignee,
        category=category,
        channel=channel,
        breached=breached,
        created_after=created_after,
        created_before=created_before,
    )
    rows, next_cursor = await case_service.find(
        session, auth, query, limit=limit, cursor=cursor, sort=sort
    )
    bodies = await case_service.schemas_of(session, auth, rows)
    return json_response(Page[schemas.Case](data=bodies, next_cursor=next_cursor))


@router.post(
    "",
    status_code=201,
    response_model=schemas.Case,
    responses={**NOT_FOUND, 409: Duplicate.openapi_response()},
)
async def create(data: schemas.CaseCreate, session: SessionDep, auth: CasesWrite) -> Response:
    """Open a case.

    Without `queue_id`, the routing rules choose the queue (and maybe the assignee). The SLA
    policy is the most specific active one for the priority, category and account type. With
    `source_interaction_id` (a complaint, negative feedback), the contact, channel and subject
    default to the interaction's, and the interaction is linked to the case. An unknown contact
    is a 404; unknown references in the body are a 422 naming the field.
    """
    case = await case_service.create(session, auth, data)
    return json_response(
        await case_service.schema_of(session, auth, case),
        status_code=201,
        version=case.version,
        headers={"Location": f"/v1/cases/{case.id}"},
    )


@router.get(
    "/report",
    response_model=schemas.Report,
    responses={422: {"description": "Bad period or grouping"}},
)
async def report(
    session: SessionDep,
    auth: CasesRead,
    from_: Annotated[QueryTimestamp, Query(alias="from", description="Created at or after.")],
    to: Annotated[QueryTimestamp, Query(description="Created strictly before.")],
    group_by: schemas.ReportGroup = "queue",
) -> Response:
    """Cases created in `[from, to)`, grouped by queue, priority, category or assignee.

    Per group: counts, median and 90th percentile of the first response and resolution times
    (wall clock, seconds), the SLA met rate (resolved cases with a policy that met both first
    response and resolution targets) and the age of the backlog at `to` (or now if earlier).
    """
    return json_response(await report_service.build(session, auth, from_, to, group_by))


@router.get(
    "/by-number/{number}",
    response_model=schemas.Case,
    responses={**NOT_FOUND, **NOT_MODIFIED},
)
async def get_by_number(
    number: Annotated[str, Path(max_length=40, description="`CASE-000123`.")],
    session: SessionDep,
    auth: CasesRead,
    if_none_match: IfNoneMatch = None,
) -> Response:
    """Find a case by its number."""
    case = await case_service.get_by_number(session, auth, number)
    body = await case_service.schema_of(session, auth, case)
    return conditional_get(body, version=case.version, if_none_match=if_none_match)


@router.get(
    "/by-external-id/{system}/{value}",
    response_model=schemas.Case,
    responses={**NOT_FOUND, **NOT_MODIFIED},
)
async def get_by_external_id(
    system: Annotated[str, Path(max_length=64)],
    value: Annotated[str, Path(max_length=255)],
    session: SessionDep,
    auth: CasesRead,
    if_none_match: IfNoneMatch = None,
) -> Response:
    """Find a case by another system's id for it."""
    case = await case_service.get_by_external_id(session, auth, system, value)
    body = await case_service.schema_of(session, auth, case)
    return conditional_get(body, version=case.version, if_none_match=if_none_match)


@router.get("/{case_id}", response_model=schemas.Case, responses={**NOT_FOUND, **NOT_MODIFIED})
async def get(
    case_id: uuid.UUID, session: SessionDep, auth: CasesRead, if_none_match: IfNoneMatch = None
) -> Response:
    """One case with its SLA status (due times, met or breached, remaining business time)."""
    case = await case_service.get(session, auth, case_id)
    body = await case_service.schema_of(session, auth, case)
    return conditional_get(body, version=case.version, if_none_match=if_none_match)


@router.patch(
    "/{case_id}",
    response_model=schemas.Case,
    responses={**NOT_FOUND, **CONFLICT, **PRECONDITION},
)
async def update(
    case_id: uuid.UUID,
    patch: schemas.CaseUpdate,
    session: SessionDep,
    auth: CasesWrite,
    if_match: IfMatch = None,
) -> Response:
    """Change a case (JSON merge patch). Status changes go through `/transitions`.

    Queue, assignee and priority changes are recorded in the history. A new priority,
    category or account chooses the SLA policy again; due times are recomputed keeping the
    time the clock was paused. A closed case is read-only (409).
    """
    case = await case_service.update(session, auth, case_id, patch, if_match=if_match)
    body = await case_service.schema_of(session, auth, case)
    return json_response(body, version=case.version)


@router.delete("/{case_id}", status_code=204, responses={**NOT_FOUND, **PRECONDITION})
async def delete(
    case_id: uuid.UUID, session: SessionDep, auth: CasesWrite, if_match: IfMatch = None
) -> Response:
    """Delete a case with its comments and history; its interactions stay, unlinked."""
    await case_service.delete(session, auth, case_id, if_match=if_match)
    return Response(status_code=204)


@router.post(
    "/{case_id}/transitions",
    response_model=schemas.Case,
    responses={**NOT_FOUND, **CONFLICT, **PRECONDITION},
)
async def transition(
    case_id: uuid.UUID,
    data: schemas.TransitionCreate,
    session: SessionDep,
    auth: CasesWrite,
    if_match: IfMatch = None,
) -> Response:
    """Change the status: `new` -> `open` -> `pending` -> `resolved` -> `closed`.

    Allowed: new -> open, pending, resolved; open -> pending, resolved; pending -> open,
    resolved; resolved -> open (a reopen, within the policy's window, default 7 days) or
    closed; closed is final. Anything else is a 409 `illegal_transition` whose `allowed` lists
    the statuses reachable now. `pending` needs a `reason`. Resolving records an outbound
    `notification` interaction on the channel of origin and emits `case.resolved`; a resolved
    case closes by itself once its reopen window has passed (the SLA sweep). With a
    stale `If-Match` the change is refused with 412, so of two agents changing one case at
    once exactly one wins.
    """
    case = await case_service.transition(session, auth, case_id, data, if_match=if_match)
    body = await case_service.schema_of(session, auth, case)
    return json_response(body, version=case.version)


@router.post(
    "/{case_id}/route",
    response_model=schemas.Case,
    responses={**NOT_FOUND, **CONFLICT, **PRECONDITION},
)
async def route(
    case_id: uuid.UUID, session: SessionDep, auth: CasesWrite, if_match: IfMatch = None
) -> Response:
    """Run the routing rules on the case now; `routing_rule_id` names the rule that matched."""
    case = await case_service.route(session, auth, case_id, if_match=if_match)
    body = await case_service.schema_of(session, auth, case)
    return json_response(body, version=case.version)


@router.post(
    "/{case_id}/comments",
    status_code=201,
    response_model=schemas.Comment,
    responses={**NOT_FOUND, **CONFLICT},
)
async def create_comment(
    case_id: uuid.UUID, data: schemas.CommentCreate, session: SessionDep, auth: CasesWrite
) -> Response:
    """Comment on a case: `public` reaches the customer, otherwise internal.

    A public comment is also an outbound interaction on the contact's timeline; the first is
    the case's first response (a `new` case becomes `open`). A closed case takes no comments
    (409 `case_closed`).
    """
    comment, _ = await case_service.comment(session, auth, case_id, data)
    return json_response(
        case_service.comment_schema(comment),
        status_code=201,
        headers={"Location": f"/v1/cases/{case_id}/comments/{comment.id}"},
    )


@router.get(
    "/{case_id}/comments",
    response_model=Page[schemas.Comment],
    responses={**NOT_FOUND, **BAD_CURSOR},
)
async def list_comments(
    case_id: uuid.UUID,
    session: SessionDep,
    auth: CasesRead,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
    public: bool | None = None,
) -> Response:
    """The case's comments, oldest first."""
    rows, next_cursor = await case_service.comments(
        session, auth, case_id, limit=limit, cursor=cursor, public=public
    )
    return json_response(
        Page[schemas.Comment](
            data=[case_service.comment_schema(row) for row in rows], next_cursor=next_cursor
        )
    )


@router.get("/{case_id}/history", response_model=Page[schemas.HistoryEntry], responses=NOT_FOUND)
async def history(case_id: uuid.UUID, session: SessionDep, auth: CasesRead) -> Response:
    """Every status, queue, assignee and priority change, oldest first (all on one page)."""
    rows = await case_service.history(session, auth, case_id)
    return json_response(
        Page[schemas.HistoryEntry](
            data=[case_service.history_schema(row) for row in rows], next_cursor=None
        )
    )


@router.get("/{case_id}/metrics", response_model=schemas.Metrics, responses=NOT_FOUND)
async def metrics(case_id: uuid.UUID, session: SessionDep, auth: CasesRead) -> Response:
    """Time in each status (wall clock, and business time on the SLA policy's calendar),
    first response and resolution times, reopen count."""
    return json_response(await case_service.metrics(session, auth, case_id))
