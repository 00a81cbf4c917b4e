"""API keys by id, in one query per batch."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING

from strawberry.dataloader import DataLoader

from app.api_key.service import api_key as api_key_service
from app.models import ApiKey

if TYPE_CHECKING:
    from app.graphql.context import Context

Key = uuid.UUID
Result = ApiKey | None


def api_key_by_id(context: Context) -> DataLoader[Key, Result]:
    auth = context.require()

    async def load(ids: Sequence[Key]) -> list[Result]:
        found = await context.read(
            lambda session: api_key_service.get_many(session, auth, ids, include_revoked=True)
        )
        return [found.get(key_id) for key_id in ids]

    return DataLoader(load_fn=load)
