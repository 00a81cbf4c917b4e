from __future__ import annotations

import uuid
from typing import Any

from app.kit.errors import Duplicate, FieldError, NotFound, ValidationFailed


class AccountNotFound(NotFound):
    title = "No such account"


class DuplicateAccount(Duplicate):
    title = "Another account already has this domain or external id"

    def __init__(self, detail: str, *, field: str, existing_id: uuid.UUID) -> None:
        super().__init__(
            detail,
            errors=[FieldError(field=field, message="already used by another account")],
            extra={"existing_id": str(existing_id)},
        )


class BatchFailed(ValidationFailed):
    """An ``all_or_none`` batch with a failed item: nothing was written."""

    title = "The batch was rolled back: an item failed"

    def __init__(self, detail: str, *, errors: list[FieldError], results: list[Any]) -> None:
        super().__init__(detail, errors=errors, extra={"results": results})
