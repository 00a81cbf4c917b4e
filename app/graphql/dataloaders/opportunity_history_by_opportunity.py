"""Each opportunity's stage changes, oldest first, in one query per batch."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING

from strawberry.dataloader import DataLoader

from app.auth.scopes import Scope
from app.models import OpportunityStageChange
from app.opportunity.service import opportunity as opportunity_service

if TYPE_CHECKING:
    from app.graphql.context import Context

Key = uuid.UUID
Result = list[OpportunityStageChange]


def opportunity_history_by_opportunity(context: Context) -> DataLoader[Key, Result]:
    auth = context.require(Scope.opportunities_read)

    async def load(ids: Sequence[Key]) -> list[Result]:
        found = await context.read(
            lambda session: opportunity_service.histories(session, auth, ids)
        )
        return [found.get(opportunity_id, []) for opportunity_id in ids]

    return DataLoader(load_fn=load)
