"""Each contact's most recently updated opportunities, in one query per page size and status
set asked for."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from strawberry.dataloader import DataLoader

from app.auth.scopes import Scope
from app.graphql.dataloaders import grouped_loader
from app.models import Opportunity
from app.opportunity.service import opportunity as opportunity_service

if TYPE_CHECKING:
    from app.graphql.context import Context

Key = tuple[uuid.UUID, int, tuple[str, ...]]  # (contact id, how many, statuses)
Result = list[Opportunity]


def opportunities_recent_by_contact(context: Context) -> DataLoader[Key, Result]:
    auth = context.require(Scope.opportunities_read)
    return grouped_loader(
        context,
        lambda session, ids, shape: opportunity_service.recent_for_contacts(
            session, auth, ids, *shape
        ),
    )
