from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import Field

from app.kit.schemas import Schema


class TimelineEntry(Schema):
    kind: str = Field(
        description="What happened: `interaction`, `purchase`, `refund`, and the kinds later "
        "modules add."
    )
    id: uuid.UUID = Field(description="The id of the record behind the entry.")
    occurred_at: datetime
    channel: str | None
    summary: str = Field(description="One line for a list, in the record's own words.")
    data: dict[str, Any] = Field(
        description="The record as its own endpoint returns it (e.g. `GET /v1/interactions/{id}`)."
    )
