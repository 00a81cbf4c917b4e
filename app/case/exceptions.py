from __future__ import annotations

import uuid
from collections.abc import Sequence

from app.kit.errors import Conflict, Duplicate, FieldError, NotFound


class CaseNotFound(NotFound):
    title = "No such case"


class QueueNotFound(NotFound):
    title = "No such case queue"


class RoutingRuleNotFound(NotFound):
    title = "No such routing rule"


class CalendarNotFound(NotFound):
    title = "No such business calendar"


class SlaPolicyNotFound(NotFound):
    title = "No such SLA policy"


class IllegalTransition(Conflict):
    """The case's status cannot move there from where it is; the problem lists where it can."""

    code = "illegal_transition"
    title = "This status change is not allowed"

    def __init__(self, current: str, wanted: str, allowed: Sequence[str]) -> None:
        listed = ", ".join(allowed) or "none (the case is closed)"
        super().__init__(
            f"A {current} case cannot become {wanted}; allowed: {listed}",
            errors=[FieldError(field="to", message=f"allowed from {current}: {listed}")],
            extra={"current_status": current, "allowed": list(allowed)},
        )


class ReopenWindowClosed(Conflict):
    code = "reopen_window_closed"
    title = "The case was resolved too long ago to be reopened"


class CaseClosed(Conflict):
    code = "case_closed"
    title = "The case is closed"


class InUse(Conflict):
    code = "in_use"
    title = "Still in use"


class DuplicateName(Duplicate):
    title = "Another record already has this name"

    def __init__(self, what: str, name: str, existing_id: uuid.UUID) -> None:
        super().__init__(
            f"A {what} named {name!r} already exists",
            errors=[FieldError(field="name", message="already used")],
            extra={"existing_id": str(existing_id)},
        )


class DuplicateCase(Duplicate):
    title = "Another case already has this external id"

    def __init__(self, detail: str, *, field: str, existing_id: uuid.UUID) -> None:
        super().__init__(
            detail,
            errors=[FieldError(field=field, message="already used by another case")],
            extra={"existing_id": str(existing_id)},
        )
