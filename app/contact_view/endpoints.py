from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import Query
from starlette.responses import Response

from app.auth.dependencies import ContactsRead
from app.contact_view import service as view_service
from app.contact_view.schemas import ContactView
from app.db.session import SessionDep
from app.kit.errors import COMMON_RESPONSES, NotFound
from app.kit.http import json_response
from app.kit.routing import PrefixedRouter, UnitOfWorkRoute

router = PrefixedRouter(
    prefix="/contacts", tags=["contacts"], route_class=UnitOfWorkRoute, responses=COMMON_RESPONSES
)
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: NotFound.openapi_response()}


@router.get("/{contact_id}/360", response_model=ContactView, responses=NOT_FOUND)
async def single_view(
    contact_id: uuid.UUID,
    session: SessionDep,
    auth: ContactsRead,
    recent: Annotated[
        int, Query(ge=1, le=20, description="How many recent interactions and purchases.")
    ] = view_service.DEFAULT_RECENT,
) -> Response:
    """The single view of the customer: profile, account, relationships, interaction counts
    by channel and the latest interactions, open feedback, purchase summary and the latest
    purchases, open opportunities. Sections the key has no read scope for are null."""
    return json_response(await view_service.view(session, auth, contact_id, recent=recent))
