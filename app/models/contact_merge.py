from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ARRAY, Index, Uuid, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, WorkspaceScopedMixin


class ContactMerge(WorkspaceScopedMixin, Base):
    """The record of a merge: who absorbed whom, with which field choices. Append-only."""

    __tablename__ = "contact_merges"

    survivor_id: Mapped[uuid.UUID]
    absorbed_ids: Mapped[list[uuid.UUID]] = mapped_column(ARRAY(Uuid()))
    field_choices: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    # What each absorbed contact looked like, so a merge can be audited (or undone by hand).
    snapshots: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, server_default="[]")
    merged_by_id: Mapped[uuid.UUID | None]
    merged_at: Mapped[datetime] = mapped_column(server_default=func.now())

    __table_args__ = (Index("ix_contact_merges_survivor", "workspace_id", "survivor_id"),)
