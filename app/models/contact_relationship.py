from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    CheckConstraint,
    ForeignKeyConstraint,
    Index,
    String,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, WorkspaceScopedMixin
from app.kit.ids import uuid7

# Each type and its inverse: creating one side writes the other, so both contacts see it.
RELATIONSHIP_INVERSES = {
    "referred_by": "referred",
    "referred": "referred_by",
    "household": "household",
    "spouse": "spouse",
    "parent": "child",
    "child": "parent",
    "colleague": "colleague",
    "advocate_of": "advocated_by",
    "advocated_by": "advocate_of",
}


class ContactRelationship(WorkspaceScopedMixin, Base):
    """One direction of a typed link between two contacts (the other is its own row)."""

    __tablename__ = "contact_relationships"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid7, sort_order=-10)
    contact_id: Mapped[uuid.UUID]
    related_contact_id: Mapped[uuid.UUID]
    type: Mapped[str] = mapped_column(String(20))
    # Both rows of a pair share it: deleting or reading "the relationship" means the pair.
    pair_id: Mapped[uuid.UUID]
    note: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())

    __table_args__ = (
        CheckConstraint("contact_id <> related_contact_id", name="not_self"),
        CheckConstraint(f"type IN {tuple(RELATIONSHIP_INVERSES)}", name="type"),
        UniqueConstraint(
            "workspace_id",
            "contact_id",
            "related_contact_id",
            "type",
            name="uq_contact_relationships_link",
        ),
        ForeignKeyConstraint(
            ["workspace_id", "contact_id"],
            ["contacts.workspace_id", "contacts.id"],
            ondelete="CASCADE",
            name="fk_contact_relationships_contact",
        ),
        ForeignKeyConstraint(
            ["workspace_id", "related_contact_id"],
            ["contacts.workspace_id", "contacts.id"],
            ondelete="CASCADE",
            name="fk_contact_relationships_related",
        ),
        Index("ix_contact_relationships_related", "workspace_id", "related_contact_id"),
        Index("ix_contact_relationships_pair", "workspace_id", "pair_id"),
    )
