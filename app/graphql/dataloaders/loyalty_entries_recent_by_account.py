"""Each account's newest ledger entries, in one query per page size asked for."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.dataloader import DataLoader

from app.auth.scopes import Scope
from app.loyalty.service import loyalty as loyalty_service
from app.models import LoyaltyEntry

if TYPE_CHECKING:
    from app.graphql.context import Context

Key = tuple[uuid.UUID, int]  # (account id, how many)
Result = list[LoyaltyEntry]


def loyalty_entries_recent_by_account(context: Context) -> DataLoader[Key, Result]:
    auth = context.require(Scope.loyalty_read)

    async def load(keys: Sequence[Key]) -> list[Result]:
        by_size: dict[int, list[uuid.UUID]] = {}
        for account_id, size in keys:
            by_size.setdefault(size, []).append(account_id)
        found: dict[Key, Result] = {}
        for size, account_ids in by_size.items():

            async def newest(
                session: AsyncSession, ids: list[uuid.UUID] = account_ids, n: int = size
            ) -> dict[uuid.UUID, list[LoyaltyEntry]]:
                return await loyalty_service.recent_entries(session, auth, ids, n)

            grouped = await context.read(newest)
            for account_id in account_ids:
                found[(account_id, size)] = grouped.get(account_id, [])
        return [found[key] for key in keys]

    return DataLoader(load_fn=load)
