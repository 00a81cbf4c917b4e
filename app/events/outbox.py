"""Writing domain events to the outbox, inside the transaction of the change."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import OutboxEvent


async def record(
    session: AsyncSession,
    *,
    workspace_id: uuid.UUID,
    type: str,
    aggregate_type: str,
    aggregate_id: uuid.UUID,
    data: BaseModel | dict[str, Any],
    changed_fields: Iterable[str] = (),
) -> None:
    """Append ``{type, data, changed_fields}``; nothing leaves the database before commit."""
    payload = data.model_dump(mode="json") if isinstance(data, BaseModel) else data
    session.add(
        OutboxEvent(
            workspace_id=workspace_id,
            type=type,
            aggregate_type=aggregate_type,
            aggregate_id=aggregate_id,
            data=payload,
            changed_fields=sorted(changed_fields),
        )
    )
