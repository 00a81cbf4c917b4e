"""Each contact's loyalty accounts (balances, tier, progress, expiring points), in a fixed
number of statements per batch."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING

from strawberry.dataloader import DataLoader

from app.auth.scopes import Scope
from app.loyalty.schemas import Account
from app.loyalty.service import loyalty as loyalty_service

if TYPE_CHECKING:
    from app.graphql.context import Context

Key = uuid.UUID
Result = list[Account]


def loyalty_accounts_by_contact(context: Context) -> DataLoader[Key, Result]:
    auth = context.require(Scope.loyalty_read)

    async def load(ids: Sequence[Key]) -> list[Result]:
        found = await context.read(
            lambda session: loyalty_service.accounts_for_contacts(session, auth, ids)
        )
        return [found.get(contact_id, []) for contact_id in ids]

    return DataLoader(load_fn=load)
