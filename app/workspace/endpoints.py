from __future__ import annotations

from starlette.responses import Response

from app.auth.dependencies import AdminKey, AnyKey
from app.db.session import SessionDep
from app.kit.errors import COMMON_RESPONSES, NotFound, PreconditionFailed
from app.kit.http import IfMatch, IfNoneMatch, conditional_get, json_response
from app.kit.routing import PrefixedRouter, UnitOfWorkRoute
from app.workspace import schemas
from app.workspace.service import workspace as workspace_service

router = PrefixedRouter(prefix="/workspace", tags=["workspace"], route_class=UnitOfWorkRoute,
                   responses=COMMON_RESPONSES)  # fmt: skip


@router.get(
    "",
    response_model=schemas.Workspace,
    responses={304: {"description": "Not modified"}, 404: NotFound.openapi_response()},
)
async def get(session: SessionDep, auth: AnyKey, if_none_match: IfNoneMatch = None) -> Response:
    """The workspace of the calling API key."""
    workspace = await workspace_service.get(session, auth)
    body = schemas.Workspace.model_validate(workspace)
    return conditional_get(body, version=workspace.version, if_none_match=if_none_match)


@router.patch(
    "",
    response_model=schemas.Workspace,
    responses={412: PreconditionFailed.openapi_response()},
)
async def update(
    patch: schemas.WorkspaceUpdate, session: SessionDep, auth: AdminKey, if_match: IfMatch = None
) -> Response:
    """Change the workspace's name or defaults (JSON merge patch)."""
    workspace = await workspace_service.update(session, auth, patch, if_match=if_match)
    return json_response(schemas.Workspace.model_validate(workspace), version=workspace.version)
