"""Each account's newest ledger entries, in one query per page size asked for."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from strawberry.dataloader import DataLoader

from app.auth.scopes import Scope
from app.graphql.dataloaders import grouped_loader
from app.loyalty.service import loyalty as loyalty_service
from app.models import LoyaltyEntry

if TYPE_CHECKING:
    from app.graphql.context import Context

Key = tuple[uuid.UUID, int]  # (account id, how many)
Result = list[LoyaltyEntry]


def loyalty_entries_recent_by_account(context: Context) -> DataLoader[Key, Result]:
    auth = context.require(Scope.loyalty_read)
    return grouped_loader(
        context,
        lambda session, ids, shape: loyalty_service.recent_entries(session, auth, ids, *shape),
    )
