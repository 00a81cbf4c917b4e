from __future__ import annotations

import uuid
from typing import Any

from app.kit.errors import Duplicate, FieldError, NotFound, ValidationFailed


class InteractionNotFound(NotFound):
    title = "No such interaction"


class InteractionContactNotFound(NotFound):
    title = "No such contact"

    def __init__(self, contact_id: uuid.UUID, *, field: str = "contact_id") -> None:
        super().__init__(
            f"No contact {contact_id} in this workspace",
            errors=[FieldError(field=field, message="no contact with this id in the workspace")],
        )


class InteractionContactMerged(NotFound):
    """The contact was absorbed by a merge: the problem names the survivor to use instead."""

    title = "The contact was merged into another"

    def __init__(self, contact_id: uuid.UUID, survivor_id: uuid.UUID) -> None:
        super().__init__(
            f"Contact {contact_id} was merged into {survivor_id}; record the interaction "
            "on the surviving contact",
            errors=[FieldError(field="contact_id", message=f"merged into {survivor_id}")],
            extra={"merged_into": str(survivor_id)},
        )


class DuplicateInteraction(Duplicate):
    title = "Another interaction already has this external id"

    def __init__(self, detail: str, *, field: str, existing_id: uuid.UUID) -> None:
        super().__init__(
            detail,
            errors=[FieldError(field=field, message="already used by another interaction")],
            extra={"existing_id": str(existing_id)},
        )


class BatchFailed(ValidationFailed):
    """An ``all_or_none`` batch with a failed item: nothing was written."""

    title = "The batch was rolled back: an item failed"

    def __init__(self, detail: str, *, errors: list[FieldError], results: list[Any]) -> None:
        super().__init__(detail, errors=errors, extra={"results": results})
