"""Each contact's purchase summary, in one query per batch."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING

from strawberry.dataloader import DataLoader

from app.auth.scopes import Scope
from app.purchase.schemas import PurchaseSummary
from app.purchase.service import purchase as purchase_service

if TYPE_CHECKING:
    from app.graphql.context import Context

Key = uuid.UUID
Result = PurchaseSummary


def purchase_summary_by_contact(context: Context) -> DataLoader[Key, Result]:
    auth = context.require(Scope.purchases_read)

    async def load(ids: Sequence[Key]) -> list[Result]:
        found = await context.read(
            lambda session: purchase_service.summaries_for_contacts(session, auth, ids)
        )
        return [found[contact_id] for contact_id in ids]

    return DataLoader(load_fn=load)
