"""Each contact's newest interactions, in one statement per page size asked for."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from strawberry.dataloader import DataLoader

from app.auth.scopes import Scope
from app.graphql.dataloaders import grouped_loader
from app.interaction.service import interaction as interaction_service
from app.models import Interaction

if TYPE_CHECKING:
    from app.graphql.context import Context

Key = tuple[uuid.UUID, int]  # (contact id, how many)
Result = list[Interaction]


def interaction_recent_by_contact(context: Context) -> DataLoader[Key, Result]:
    auth = context.require(Scope.interactions_read)
    return grouped_loader(
        context,
        lambda session, ids, shape: interaction_service.recent_for_contacts(
            session, auth, ids, *shape
        ),
    )
