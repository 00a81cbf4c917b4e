"""The database's clock for the current transaction, read once per transaction."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

_NOW = text("SELECT transaction_timestamp()")

# The session's transaction, and the moment it began by the database's clock.
_KEPT = "crm.clock.transaction_now"


async def transaction_now(session: AsyncSession) -> datetime:
    """``transaction_timestamp()``: what ``now()`` and the columns' defaults write in the
    session's current transaction (savepoints share it). Read from the database once per
    transaction, so that a row can be given the value its default would have written, and
    the value known without reading the row back."""
    kept: tuple[object, datetime] | None = session.info.get(_KEPT)
    transaction = session.sync_session.get_transaction()
    if kept is not None and transaction is not None and kept[0] is transaction:
        return kept[1]
    moment: datetime = (await session.execute(_NOW)).scalar_one()
    # Recorded after the read, which begins the transaction when none had begun.
    session.info[_KEPT] = (session.sync_session.get_transaction(), moment)
    return moment
