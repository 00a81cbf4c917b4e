"""Live contacts by id as the API shows them, in one statement per batch."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING

from strawberry.dataloader import DataLoader

from app.contact.schemas import Contact
from app.contact.service import contact as contact_service

if TYPE_CHECKING:
    from app.graphql.context import Context

Key = uuid.UUID
Result = Contact | None


def contact_by_id(context: Context) -> DataLoader[Key, Result]:
    auth = context.require()

    async def load(ids: Sequence[Key]) -> list[Result]:
        found = await context.read(lambda session: contact_service.read_many(session, auth, ids))
        return [found.get(contact_id) for contact_id in ids]

    return DataLoader(load_fn=load)
