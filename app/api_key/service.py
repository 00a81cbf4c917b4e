"""API keys: issue (secret shown once), list, revoke."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncSession

from app.api_key import schemas
from app.api_key.repository import ApiKeyRepository
from app.auth import keys
from app.auth.dependencies import AuthContext, key_cache
from app.events import outbox
from app.kit.errors import FieldError, NotFound, ValidationFailed
from app.kit.etag import check_if_match
from app.kit.ids import uuid7
from app.kit.pagination import Keyset, SortField, parse_datetime, parse_sort, parse_str
from app.models import ApiKey

SORTS = {
    "created_at": SortField(ApiKey.created_at, parse_datetime),
    "name": SortField(ApiKey.name, parse_str),
}


@dataclass
class CreatedKey:
    record: ApiKey
    token: str


class ApiKeyService:
    async def issue(
        self,
        session: AsyncSession,
        *,
        workspace_id: uuid.UUID,
        name: str,
        scopes: list[str],
        expires_at: datetime | None = None,
        created_by_id: uuid.UUID | None = None,
    ) -> CreatedKey:
        new_key = keys.generate()
        record = ApiKey(
            workspace_id=workspace_id,
            id=uuid7(),
            name=name,
            prefix=new_key.prefix,
            secret_hash=new_key.digest,
            scopes=scopes,
            expires_at=expires_at,
            created_by_id=created_by_id,
            version=1,
        )
        ApiKeyRepository(session).add(record)
        await session.flush()
        await session.refresh(record)
        await outbox.record(
            session,
            workspace_id=workspace_id,
            type="api_key.created",
            aggregate_type="api_key",
            aggregate_id=record.id,
            data=schemas.ApiKey.model_validate(record),
        )
        return CreatedKey(record=record, token=new_key.token)

    async def create(
        self, session: AsyncSession, auth: AuthContext, create: schemas.ApiKeyCreate
    ) -> CreatedKey:
        """Issue a key in the caller's workspace.

        Raises:
            ValidationFailed: the expiry is in the past.
        """
        if create.expires_at is not None and create.expires_at <= datetime.now(UTC):
            raise ValidationFailed(
                "The key would already be expired",
                errors=[FieldError(field="expires_at", message="must be in the future")],
            )
        return await self.issue(
            session,
            workspace_id=auth.workspace_id,
            name=create.name,
            scopes=[scope.value for scope in create.scopes],
            expires_at=create.expires_at,
            created_by_id=auth.api_key_id,
        )

    async def get(self, session: AsyncSession, auth: AuthContext, key_id: uuid.UUID) -> ApiKey:
        record = await ApiKeyRepository(session).get(auth.workspace_id, key_id)
        if record is None:
            raise NotFound("No such API key")
        return record

    async def get_many(
        self,
        session: AsyncSession,
        auth: AuthContext,
        key_ids: Sequence[uuid.UUID],
        *,
        include_revoked: bool = False,
    ) -> dict[uuid.UUID, ApiKey]:
        """Keys of the caller's workspace by id; ids of other workspaces are simply absent."""
        if not key_ids:
            return {}
        rows = await ApiKeyRepository(session).get_many(
            auth.workspace_id, key_ids, live_only=not include_revoked
        )
        return {row.id: row for row in rows}

    async def list(
        self,
        session: AsyncSession,
        auth: AuthContext,
        *,
        limit: int,
        cursor: str | None,
        sort: str | None,
        include_revoked: bool,
    ) -> tuple[list[ApiKey], str | None]:
        """A page of keys, newest first unless ``sort`` says otherwise.

        Raises:
            ValidationFailed: unknown sort field.
            InvalidCursor: the cursor is malformed or from another sort order.
        """
        keyset = Keyset.build(
            sort=parse_sort(sort, SORTS, "-created_at"),
            allowed=SORTS,
            id_column=ApiKey.id,
            limit=limit,
            cursor=cursor,
        )
        rows = await ApiKeyRepository(session).list(
            auth.workspace_id, keyset, include_revoked=include_revoked
        )
        sort_column = keyset.field.column.key
        return keyset.page(rows, lambda row: (getattr(row, sort_column), row.id))

    def cursor_of(self, record: ApiKey) -> str:
        """The default-order cursor that resumes a listing right after ``record``."""
        keyset = Keyset.build(sort=parse_sort(None, SORTS, "-created_at"), allowed=SORTS,
                              id_column=ApiKey.id, limit=1, cursor=None)  # fmt: skip
        return keyset.cursor(record.created_at, record.id)

    async def revoke(
        self,
        session: AsyncSession,
        auth: AuthContext,
        key_id: uuid.UUID,
        *,
        if_match: str | None = None,
    ) -> ApiKey:
        record = await self.get(session, auth, key_id)
        check_if_match(if_match, record.version)
        record.revoked_at = func.now()
        await session.flush()
        # Other workers notice within the cache TTL; this one at once.
        key_cache.forget(record.id)
        await session.refresh(record, ["revoked_at"])
        await outbox.record(
            session,
            workspace_id=auth.workspace_id,
            type="api_key.revoked",
            aggregate_type="api_key",
            aggregate_id=record.id,
            data=schemas.ApiKey.model_validate(record),
            changed_fields=["revoked_at"],
        )
        return record


api_key = ApiKeyService()
