from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import Query
from starlette.responses import Response

from app.auth.dependencies import ContactsRead
from app.db.session import SessionDep
from app.kit.errors import COMMON_RESPONSES, InvalidCursor, NotFound
from app.kit.http import Cursor, Limit, json_response
from app.kit.pagination import Page
from app.kit.routing import PrefixedRouter, UnitOfWorkRoute
from app.kit.schemas import QueryTimestamp
from app.timeline import service as timeline_service
from app.timeline.registry import TimelineFilter
from app.timeline.schemas import TimelineEntry

router = PrefixedRouter(
    prefix="/contacts", tags=["contacts"], route_class=UnitOfWorkRoute, responses=COMMON_RESPONSES
)
RESPONSES: dict[int | str, dict[str, Any]] = {
    400: InvalidCursor.openapi_response(),
    404: NotFound.openapi_response(),
}


@router.get("/{contact_id}/timeline", response_model=Page[TimelineEntry], responses=RESPONSES)
async def timeline(
    contact_id: uuid.UUID,
    session: SessionDep,
    auth: ContactsRead,
    limit: Limit = 50,
    cursor: Cursor = None,
    kind: Annotated[
        list[Annotated[str, Query(max_length=40)]] | None,
        Query(max_length=20, description="Only entries of these kinds."),
    ] = None,
    channel: Annotated[
        list[Annotated[str, Query(max_length=20)]] | None,
        Query(max_length=20, description="Only entries on these channels."),
    ] = None,
    occurred_after: QueryTimestamp | None = None,
    occurred_before: QueryTimestamp | None = None,
) -> Response:
    """Everything that happened with the contact, newest first, under one cursor.

    Interactions on every channel, purchases and refunds, and the entries of other modules.
    Kinds the key has no read scope for (e.g. `purchases:read`) are left out.
    """
    filters = TimelineFilter(
        kinds=kind or (),
        channels=channel or (),
        occurred_after=occurred_after,
        occurred_before=occurred_before,
    )
    entries, next_cursor = await timeline_service.page(
        session, auth, contact_id, filters, limit=limit, cursor=cursor
    )
    return json_response(Page[TimelineEntry](data=entries, next_cursor=next_cursor))
