from __future__ import annotations

import uuid
from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from app.kit.schemas import InputSchema, Schema, UTCDateTime

RelationshipType = Literal[
    "referred_by",
    "referred",
    "household",
    "spouse",
    "parent",
    "child",
    "colleague",
    "advocate_of",
    "advocated_by",
]


class RelationshipCreate(InputSchema):
    related_contact_id: uuid.UUID
    type: RelationshipType = Field(
        description="How the contact relates to the other: `referred_by` means this contact "
        "was referred by the other; its inverse (`referred`) appears on the other contact."
    )
    note: (
        Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
        | None
    ) = None


class Relationship(Schema):
    id: uuid.UUID
    contact_id: uuid.UUID
    related_contact_id: uuid.UUID
    type: RelationshipType
    note: str | None
    created_at: UTCDateTime
