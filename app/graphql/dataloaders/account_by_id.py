"""Accounts by id, in one batch."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING

from strawberry.dataloader import DataLoader

from app.account.service import account as account_service
from app.models import Account

if TYPE_CHECKING:
    from app.graphql.context import Context

Key = uuid.UUID
Result = Account | None


def account_by_id(context: Context) -> DataLoader[Key, Result]:
    auth = context.require()

    async def load(ids: Sequence[Key]) -> list[Result]:
        found = await context.read(lambda session: account_service.get_many(session, auth, ids))
        return [found.get(account_id) for account_id in ids]

    return DataLoader(load_fn=load)
