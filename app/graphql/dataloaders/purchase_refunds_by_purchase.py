"""Each purchase's refunds, oldest first, in one query per batch."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING

from strawberry.dataloader import DataLoader

from app.models import PurchaseRefund
from app.purchase.service import purchase as purchase_service

if TYPE_CHECKING:
    from app.graphql.context import Context

Key = uuid.UUID
Result = list[PurchaseRefund]


def purchase_refunds_by_purchase(context: Context) -> DataLoader[Key, Result]:
    auth = context.require()

    async def load(ids: Sequence[Key]) -> list[Result]:
        found = await context.read(
            lambda session: purchase_service.refunds_for_purchases(session, auth, ids)
        )
        return [found.get(purchase_id, []) for purchase_id in ids]

    return DataLoader(load_fn=load)
