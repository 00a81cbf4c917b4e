"""Reactions of other modules to new interactions, inside the transaction that writes them.

A module registers a listener when it is imported::

    register_interaction_listener(on_created=reopen_waiting_cases)

where ``on_created`` is ``async (session, auth, interactions) -> None``, called after a single
create or a batch ingest has written its interactions (the ones actually created, not repeats
of known external ids). A listener that raises fails the write: it runs in the same unit of
work. This module imports no other domain; the listeners come to it.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession

if TYPE_CHECKING:
    from app.auth.dependencies import AuthContext


@dataclass(frozen=True)
class CreatedInteraction:
    id: uuid.UUID
    contact_id: uuid.UUID
    channel: str
    direction: str | None
    type: str
    occurred_at: datetime
    case_id: uuid.UUID | None
    opportunity_id: uuid.UUID | None
    campaign_id: uuid.UUID | None


OnCreated = Callable[[AsyncSession, "AuthContext", Sequence[CreatedInteraction]], Awaitable[None]]

_on_created: list[OnCreated] = []


def register_interaction_listener(*, on_created: OnCreated) -> None:
    if on_created not in _on_created:
        _on_created.append(on_created)


async def interactions_created(
    session: AsyncSession, auth: AuthContext, created: Sequence[CreatedInteraction]
) -> None:
    if not created:
        return
    for listener in list(_on_created):
        await listener(session, auth, created)
