from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.kit.pagination import Keyset
from app.models import ApiKey


class ApiKeyRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(
        self, workspace_id: uuid.UUID, key_id: uuid.UUID, *, live_only: bool = True
    ) -> ApiKey | None:
        statement = select(ApiKey).where(ApiKey.workspace_id == workspace_id, ApiKey.id == key_id)
        if live_only:
            statement = statement.where(ApiKey.revoked_at.is_(None))
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def get_many(
        self, workspace_id: uuid.UUID, key_ids: Sequence[uuid.UUID], *, live_only: bool
    ) -> list[ApiKey]:
        statement = select(ApiKey).where(
            ApiKey.workspace_id == workspace_id, ApiKey.id.in_(list(key_ids))
        )
        if live_only:
            statement = statement.where(ApiKey.revoked_at.is_(None))
        return list((await self.session.execute(statement)).scalars().all())

    async def list(
        self, workspace_id: uuid.UUID, keyset: Keyset, *, include_revoked: bool
    ) -> Sequence[ApiKey]:
        statement = select(ApiKey).where(ApiKey.workspace_id == workspace_id)
        if not include_revoked:
            statement = statement.where(ApiKey.revoked_at.is_(None))
        result = await self.session.execute(keyset.apply(statement))
        return list(result.scalars().all())

    def add(self, api_key: ApiKey) -> None:
        self.session.add(api_key)
