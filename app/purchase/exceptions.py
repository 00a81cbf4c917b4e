from __future__ import annotations

import uuid

from app.kit.errors import Conflict, Duplicate, FieldError, NotFound, ValidationFailed


class PurchaseNotFound(NotFound):
    title = "No such purchase"


class RefundNotFound(NotFound):
    title = "No such refund"


class DuplicatePurchase(Duplicate):
    title = "Another purchase already has this external id"

    def __init__(self, detail: str, *, field: str, existing_id: uuid.UUID) -> None:
        super().__init__(
            detail,
            errors=[FieldError(field=field, message="already used by another purchase")],
            extra={"existing_id": str(existing_id)},
        )


class RefundExceedsPaid(ValidationFailed):
    """More money, or more units of a line, than remain to be refunded."""

    code = "refund_exceeds_paid"
    title = "The refund exceeds what remains to be refunded"


class PurchaseCancelled(Conflict):
    title = "The purchase was cancelled"
