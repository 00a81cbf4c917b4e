"""REST for business calendars, SLA policies, queues and routing rules: one shape for four.

Built by one factory; no ``from __future__ import annotations`` here, because FastAPI reads the
endpoints' annotations, which name the factory's arguments.
"""

import uuid
from typing import Annotated, Any

from fastapi import Query
from pydantic import BaseModel
from starlette.responses import Response

from app.auth.dependencies import CasesRead, CasesWrite
from app.case import schemas
from app.case.setup import setup as setup_service
from app.case.setup import to_schema
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
from app.models import BusinessCalendar, CaseQueue, CaseRoutingRule, SlaPolicy

NOT_FOUND: dict[int | str, dict[str, Any]] = {404: NotFound.openapi_response()}


def _router(
    prefix: str,
    tag: str,
    what: str,
    model: Any,
    read: type[BaseModel],
    create_schema: type[BaseModel],
    update_schema: type[BaseModel],
    sorts: str,
    notes: str = "",
) -> PrefixedRouter:
    router = PrefixedRouter(
        prefix=prefix, tags=[tag], route_class=UnitOfWorkRoute, responses=COMMON_RESPONSES
    )

    @router.get(
        "",
        response_model=Page[read],  # type: ignore[valid-type]
        responses={400: InvalidCursor.openapi_response()},
        description=f"List {what.replace('policy', 'policie')}s.",
    )
    async def list(
        session: SessionDep,
        auth: CasesRead,
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
        sort: Annotated[str | None, Query(max_length=40, description=sorts)] = None,
    ) -> Response:
        rows, next_cursor = await setup_service.find(
            session, auth, model, limit=limit, cursor=cursor, sort=sort
        )
        return json_response(
            Page[read](data=[to_schema(row) for row in rows], next_cursor=next_cursor)  # type: ignore[valid-type]
        )

    @router.post(
        "",
        status_code=201,
        response_model=read,
        responses={409: Duplicate.openapi_response()},
        description=f"Create a {what}. {notes}".strip(),
    )
    async def create(data: create_schema, session: SessionDep, auth: CasesWrite) -> Response:  # type: ignore[valid-type]
        record = await setup_service.create(session, auth, model, data)
        return json_response(
            to_schema(record),
            status_code=201,
            version=record.version,
            headers={"Location": f"/v1{prefix}/{record.id}"},
        )

    @router.get(
        "/{record_id}",
        response_model=read,
        responses={**NOT_FOUND, 304: {"description": "Not modified"}},
        description=f"One {what}.",
    )
    async def get(
        record_id: uuid.UUID,
        session: SessionDep,
        auth: CasesRead,
        if_none_match: IfNoneMatch = None,
    ) -> Response:
        record = await setup_service.get(session, auth, model, record_id)
        return conditional_get(
            to_schema(record), version=record.version, if_none_match=if_none_match
        )

    @router.patch(
        "/{record_id}",
        response_model=read,
        responses={
            **NOT_FOUND,
            409: Duplicate.openapi_response(),
            412: PreconditionFailed.openapi_response(),
        },
        description=f"Change a {what} (JSON merge patch; lists and `hours` are replaced whole).",
    )
    async def update(
        record_id: uuid.UUID,
        patch: update_schema,  # type: ignore[valid-type]
        session: SessionDep,
        auth: CasesWrite,
        if_match: IfMatch = None,
    ) -> Response:
        record = await setup_service.update(
            session, auth, model, record_id, patch, if_match=if_match
        )
        return json_response(to_schema(record), version=record.version)

    @router.delete(
        "/{record_id}",
        status_code=204,
        responses={
            **NOT_FOUND,
            409: Conflict.openapi_response(),
            412: PreconditionFailed.openapi_response(),
        },
        description=f"Delete a {what}.",
    )
    async def delete(
        record_id: uuid.UUID, session: SessionDep, auth: CasesWrite, if_match: IfMatch = None
    ) -> Response:
        await setup_service.delete(session, auth, model, record_id, if_match=if_match)
        return Response(status_code=204)

    return router


calendar_router = _router(
    "/business-calendars", "business-calendars", "business calendar", BusinessCalendar,
    schemas.Calendar, schemas.CalendarCreate, schemas.CalendarUpdate,
    "`created_at`, `-` for descending (default oldest first).",
    "Changing its hours, zone or holidays recomputes the due times of unfinished cases.",
)  # fmt: skip
policy_router = _router(
    "/sla-policies", "sla-policies", "SLA policy", SlaPolicy,
    schemas.SlaPolicy, schemas.SlaPolicyCreate, schemas.SlaPolicyUpdate,
    "`created_at`, `-` for descending (default oldest first).",
    "New cases of its priority get the most specific active policy; changing targets "
    "recomputes the due times of unfinished cases, keeping their paused time.",
)  # fmt: skip
queue_router = _router(
    "/case-queues", "case-queues", "case queue", CaseQueue,
    schemas.Queue, schemas.QueueCreate, schemas.QueueUpdate,
    "`created_at`, `-` for descending (default oldest first).",
)  # fmt: skip
rule_router = _router(
    "/case-routing-rules", "case-routing-rules", "routing rule", CaseRoutingRule,
    schemas.RoutingRule, schemas.RoutingRuleCreate, schemas.RoutingRuleUpdate,
    "`position` or `created_at`, `-` for descending (default by position).",
    "Rules run in `position` order on each new case without a queue and on "
    "`POST /v1/cases/{id}/route`; the first that matches sets the queue and the assignee.",
)  # fmt: skip
