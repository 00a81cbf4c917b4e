"""Each account's newest contacts, in one query per page size asked for."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.dataloader import DataLoader

from app.account.service import account as account_service
from app.models import Contact

if TYPE_CHECKING:
    from app.graphql.context import Context

Key = tuple[uuid.UUID, int]  # (account id, how many)
Result = list[Contact]


def contacts_by_account(context: Context) -> DataLoader[Key, Result]:
    auth = context.require()

    async def load(keys: Sequence[Key]) -> list[Result]:
        by_size: dict[int, list[uuid.UUID]] = {}
        for account_id, size in keys:
            by_size.setdefault(size, []).append(account_id)
        found: dict[Key, Result] = {}
        for size, account_ids in by_size.items():

            async def newest(
                session: AsyncSession, ids: list[uuid.UUID] = account_ids, n: int = size
            ) -> dict[uuid.UUID, list[Contact]]:
                return await account_service.newest_contacts_of(session, auth, ids, per_account=n)

            grouped = await context.read(newest)
            for account_id in account_ids:
                found[(account_id, size)] = grouped.get(account_id, [])
        return [found[key] for key in keys]

    return DataLoader(load_fn=load)
