"""Each contact's newest open feedback (needing attention, unresolved), one statement per size."""

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


def interaction_open_feedback_by_contact(context: Context) -> DataLoader[Key, Result]:
    auth = context.require(Scope.interactions_read)
    return grouped_loader(
        context,
        lambda session, ids, shape: interaction_service.open_feedback_for_contacts(
            session, auth, ids, *shape
        ),
    )
