from __future__ import annotations

import uuid
from datetime import datetime

import strawberry
from strawberry.types import Info

from app.api_key import schemas
from app.api_key.service import api_key as api_key_service
from app.auth.scopes import Scope
from app.graphql.context import Context
from app.graphql.dataloaders.api_key_by_id import api_key_by_id
from app.graphql.relay import Connection, Edge, page_of, page_size
from app.kit.schemas import parse_input
from app.models import ApiKey


@strawberry.type(name="ApiKey")
class ApiKeyType:
    id: uuid.UUID
    name: str
    prefix: str
    scopes: list[str]
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None
    version: int
    created_by_id: strawberry.Private[uuid.UUID | None] = None

    @strawberry.field(description="The key that issued this one (null for a workspace's first).")
    async def created_by(self, info: Info[Context, None]) -> ApiKeyType | None:
        if self.created_by_id is None:
            return None
        record = await info.context.loaders.get(api_key_by_id).load(self.created_by_id)
        return ApiKeyType.from_model(record) if record is not None else None

    @classmethod
    def from_model(cls, record: ApiKey) -> ApiKeyType:
        return cls(
            id=record.id, name=record.name, prefix=record.prefix, scopes=list(record.scopes),
            created_at=record.created_at, expires_at=record.expires_at,
            last_used_at=record.last_used_at, revoked_at=record.revoked_at,
            version=record.version, created_by_id=record.created_by_id,
        )  # fmt: skip


@strawberry.input
class ApiKeyCreateInput:
    name: str
    scopes: list[str]
    expires_at: datetime | None = None


@strawberry.type
class ApiKeyCreatePayload:
    api_key: ApiKeyType
    key: str = strawberry.field(description="The secret, shown once.")


@strawberry.type
class ApiKeyQuery:
    # Nullable: a key without the scope gets an error for this field, not a null response.
    @strawberry.field(description="The workspace's API keys, newest first (scope: admin).")
    async def api_keys(
        self,
        info: Info[Context, None],
        first: int | None = None,
        after: str | None = None,
        include_revoked: bool = False,
    ) -> Connection[ApiKeyType] | None:
        auth = info.context.require(Scope.admin)
        limit = page_size(first)
        rows, next_cursor = await info.context.read(
            lambda session: api_key_service.list(
                session,
                auth,
                limit=limit,
                cursor=after,
                sort=None,
                include_revoked=include_revoked,
            )
        )
        edges = [
            Edge(node=ApiKeyType.from_model(row), cursor=api_key_service.cursor_of(row))
            for row in rows
        ]
        return page_of(edges, next_cursor)


@strawberry.type
class ApiKeyMutation:
    @strawberry.mutation(description="Issue an API key; the payload holds its secret, once.")
    async def create_api_key(
        self, info: Info[Context, None], input: ApiKeyCreateInput
    ) -> ApiKeyCreatePayload | None:
        auth = info.context.require(Scope.admin)
        create = parse_input(schemas.ApiKeyCreate, vars(input))
        created = await info.context.write(
            lambda session: api_key_service.create(session, auth, create)
        )
        return ApiKeyCreatePayload(api_key=ApiKeyType.from_model(created.record),
                                   key=created.token)  # fmt: skip

    @strawberry.mutation(description="Revoke an API key: it stops working at once.")
    async def revoke_api_key(
        self, info: Info[Context, None], id: uuid.UUID, if_match: str | None = None
    ) -> ApiKeyType | None:
        auth = info.context.require(Scope.admin)
        record = await info.context.write(
            lambda session: api_key_service.revoke(session, auth, id, if_match=if_match)
        )
        return ApiKeyType.from_model(record)
