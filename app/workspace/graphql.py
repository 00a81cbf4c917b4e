from __future__ import annotations

import uuid
from datetime import datetime

import strawberry
from strawberry.types import Info

from app.auth.scopes import Scope
from app.graphql.context import Context
from app.kit.schemas import parse_input
from app.models import Workspace
from app.workspace import schemas
from app.workspace.service import workspace as workspace_service


@strawberry.type(name="Workspace")
class WorkspaceType:
    id: uuid.UUID
    name: str
    default_region: str
    default_currency: str
    timezone: str
    locale: str
    created_at: datetime
    updated_at: datetime
    version: int

    @classmethod
    def from_model(cls, record: Workspace) -> WorkspaceType:
        return cls(
            id=record.id, name=record.name, default_region=record.default_region,
            default_currency=record.default_currency, timezone=record.timezone,
            locale=record.locale, created_at=record.created_at, updated_at=record.updated_at,
            version=record.version,
        )  # fmt: skip


@strawberry.input
class WorkspaceUpdateInput:
    name: str | None = strawberry.UNSET
    default_region: str | None = strawberry.UNSET
    default_currency: str | None = strawberry.UNSET
    timezone: str | None = strawberry.UNSET
    locale: str | None = strawberry.UNSET


@strawberry.type
class WorkspaceQuery:
    @strawberry.field(description="The workspace of the calling API key.")
    async def workspace(self, info: Info[Context, None]) -> WorkspaceType:
        auth = info.context.require()
        record = await info.context.read(lambda session: workspace_service.get(session, auth))
        return WorkspaceType.from_model(record)


@strawberry.type
class WorkspaceMutation:
    # Mutation fields are nullable throughout: a failed mutation reports its error without
    # nulling the results of the others in the same request.

    @strawberry.mutation(description="Change the workspace's name or defaults.")
    async def update_workspace(
        self, info: Info[Context, None], input: WorkspaceUpdateInput, if_match: str | None = None
    ) -> WorkspaceType | None:
        auth = info.context.require(Scope.admin)
        patch = parse_input(
            schemas.WorkspaceUpdate,
            {key: value for key, value in vars(input).items() if value is not strawberry.UNSET},
        )
        record = await info.context.write(
            lambda session: workspace_service.update(session, auth, patch, if_match=if_match)
        )
        return WorkspaceType.from_model(record)
