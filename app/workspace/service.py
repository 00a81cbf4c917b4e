"""Workspaces: the tenant record and its defaults."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from app.api_key.service import CreatedKey
from app.api_key.service import api_key as api_key_service
from app.auth.dependencies import AuthContext
from app.auth.scopes import Scope
from app.db.session import bind_workspace
from app.events import outbox
from app.kit.errors import NotFound
from app.kit.etag import check_if_match
from app.kit.ids import uuid7
from app.models import Workspace
from app.opportunity.defaults import ensure_default
from app.workspace import schemas
from app.workspace.repository import WorkspaceRepository


@dataclass
class NewWorkspace:
    workspace: Workspace
    admin_key: CreatedKey


class WorkspaceService:
    async def get(self, session: AsyncSession, auth: AuthContext) -> Workspace:
        workspace = await WorkspaceRepository(session).get(auth.workspace_id)
        if workspace is None:  # deleted while a cached key still pointed at it
            raise NotFound("The workspace no longer exists")
        return workspace

    async def update(
        self,
        session: AsyncSession,
        auth: AuthContext,
        patch: schemas.WorkspaceUpdate,
        *,
        if_match: str | None = None,
    ) -> Workspace:
        """Apply a merge patch.

        Raises:
            PreconditionFailed: ``if_match`` names an older version.
        """
        workspace = await WorkspaceRepository(session).get(auth.workspace_id, for_update=True)
        if workspace is None:
            raise NotFound("The workspace no longer exists")
        check_if_match(if_match, workspace.version)
        changes = {k: v for k, v in patch.changes().items() if getattr(workspace, k) != v}
        if not changes:
            return workspace
        for name, value in changes.items():
            setattr(workspace, name, value)
        # version_id_col bumps the version in the UPDATE, guarded by the version we read.
        await session.flush()
        await session.refresh(workspace, ["updated_at"])
        await outbox.record(
            session,
            workspace_id=workspace.id,
            type="workspace.updated",
            aggregate_type="workspace",
            aggregate_id=workspace.id,
            data=schemas.Workspace.model_validate(workspace),
            changed_fields=changes,
        )
        return workspace

    async def create(
        self, session: AsyncSession, *, name: str, key_name: str = "admin"
    ) -> NewWorkspace:
        """Create a workspace and its first admin API key (used by ``crm workspace create``)."""
        validated = schemas.WorkspaceUpdate(name=name)
        workspace = Workspace(id=uuid7(), name=validated.name, version=1)
        # The new workspace is the transaction's workspace, so row-level security lets the
        # service role insert it and its first key.
        await bind_workspace(session, workspace.id)
        WorkspaceRepository(session).add(workspace)
        await session.flush()
        await session.refresh(workspace)
        await outbox.record(
            session,
            workspace_id=workspace.id,
            type="workspace.created",
            aggregate_type="workspace",
            aggregate_id=workspace.id,
            data=schemas.Workspace.model_validate(workspace),
        )
        # Every workspace starts with a sales pipeline, in the same transaction.
        await ensure_default(session, workspace.id)
        admin_key = await api_key_service.issue(
            session, workspace_id=workspace.id, name=key_name, scopes=[Scope.admin.value]
        )
        return NewWorkspace(workspace=workspace, admin_key=admin_key)


workspace = WorkspaceService()
