"""Each contact's links to other contacts, in one batch."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING

from strawberry.dataloader import DataLoader

from app.contact.relationships import relationship as relationship_service
from app.models import ContactRelationship

if TYPE_CHECKING:
    from app.graphql.context import Context

Key = uuid.UUID
Result = list[ContactRelationship]


def relationships_by_contact(context: Context) -> DataLoader[Key, Result]:
    auth = context.require()

    async def load(ids: Sequence[Key]) -> list[Result]:
        found = await context.read(
            lambda session: relationship_service.by_contacts(session, auth, ids)
        )
        return [found.get(contact_id, []) for contact_id in ids]

    return DataLoader(load_fn=load)
