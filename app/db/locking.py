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


# The keys the session's current transaction holds, taken outside any savepoint (a lock taken
# inside one that rolls back is let go with it), with that transaction.
_HELD = "crm.locking.held"


async def lock_keys(session: AsyncSession, workspace_id: uuid.UUID, keys: Iterable[str]) -> None:
    """Hold a lock per key until the transaction ends, taken in one sorted pass so that two
    transactions locking overlapping sets cannot deadlock. Hash collisions only make
    unrelated writers wait, never skip a check. Keys the transaction already holds are not
    asked for again (a batch locks all its items' keys first, then writes them one by one)."""
    transaction = session.sync_session.get_transaction()
    kept: tuple[object, set[str]] | None = session.info.get(_HELD)
    held = kept[1] if kept is not None and kept[0] is transaction else set()
    names = sorted({f"{workspace_id}:{key}" for key in keys} - held)
    if not names:
        return
    await session.execute(_LOCK, {"names": names})
    if not session.in_nested_transaction():
        session.info[_HELD] = (session.sync_session.get_transaction(), held.union(names))
