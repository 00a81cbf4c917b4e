"""Transaction-scoped advisory locks on names, for values that have no row to lock yet."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

_LOCK = text(
    "SELECT pg_advisory_xact_lock(hashtextextended(t.name, 0)) "
    "FROM unnest(CAST(:names AS text[])) "
    "AS t(name) ORDER BY name"
)


async def lock_keys(session: AsyncSession, workspace_id: uuid.UUID, keys: Iterable[str]) -> None:
    """Hold a lock per key until the transaction ends, taken in one sorted pass so that two
    transactions locking overlapping sets cannot deadlock. Hash collisions only make
    unrelated writers wait, never skip a check."""
    names = sorted({f"{workspace_id}:{key}" for key in keys})
    if names:
        await session.execute(_LOCK, {"names": names})
