"""Each contact's newest purchases (with items), in one query per page size asked for."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from strawberry.dataloader import DataLoader

from app.auth.scopes import Scope
from app.graphql.dataloaders import grouped_loader
from app.models import Purchase
from app.purchase.service import purchase as purchase_service

if TYPE_CHECKING:
    from app.graphql.context import Context

Key = tuple[uuid.UUID, int]  # (contact id, how many)
Result = list[Purchase]


def purchases_recent_by_contact(context: Context) -> DataLoader[Key, Result]:
    auth = context.require(Scope.purchases_read)
    return grouped_loader(
        context,
        lambda session, ids, shape: purchase_service.recent_for_contacts(
            session, auth, ids, *shape
        ),
    )
