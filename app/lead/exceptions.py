from __future__ import annotations

from app.kit.errors import Conflict, FieldError, NotFound


class LeadNotFound(NotFound):
    title = "No such lead"


class LeadAlreadyConverted(Conflict):
    title = "The lead was already converted"

    def __init__(self) -> None:
        super().__init__(
            "The lead was already converted; see its converted_* ids",
            errors=[FieldError(field="status", message="converted")],
        )


class LeadDisqualified(Conflict):
    title = "A disqualified lead cannot be converted"

    def __init__(self) -> None:
        super().__init__(
            "The lead is disqualified; requalify it (status) before converting",
            errors=[FieldError(field="status", message="disqualified")],
        )
