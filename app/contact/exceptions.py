from __future__ import annotations

import uuid

from app.kit.errors import Duplicate, FieldError, NotFound


class ContactNotFound(NotFound):
    title = "No such contact"


class ContactMerged(NotFound):
    """The contact was absorbed by a merge; the problem names the survivor."""

    title = "The contact was merged into another"

    def __init__(self, survivor_id: uuid.UUID) -> None:
        super().__init__(
            f"The contact was merged into {survivor_id}",
            extra={"merged_into": str(survivor_id)},
        )


class DuplicateContact(Duplicate):
    title = "Another contact already has this e-mail or external id"

    def __init__(self, detail: str, *, field: str, existing_id: uuid.UUID) -> None:
        super().__init__(
            detail,
            errors=[FieldError(field=field, message="already used by another contact")],
            extra={"existing_id": str(existing_id)},
        )
