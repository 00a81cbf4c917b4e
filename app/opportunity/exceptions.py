from __future__ import annotations

import uuid

from app.kit.errors import Conflict, Duplicate, FieldError, NotFound


class PipelineNotFound(NotFound):
    title = "No such pipeline"


class StageNotFound(NotFound):
    title = "No such stage"


class OpportunityNotFound(NotFound):
    title = "No such opportunity"


class SalesTargetNotFound(NotFound):
    title = "No such sales target"


class CommissionRuleNotFound(NotFound):
    title = "No such commission rule"


class StageInUse(Conflict):
    """The stage holds opportunities: they must move elsewhere in the same call."""

    title = "The stage holds opportunities"


class PipelineInUse(Conflict):
    title = "The pipeline holds opportunities"


class DuplicatePipeline(Duplicate):
    title = "Another pipeline has this name"

    def __init__(self, name: str) -> None:
        super().__init__(
            f"A pipeline named {name!r} already exists",
            errors=[FieldError(field="name", message="already used by another pipeline")],
        )


class DuplicateOpportunity(Duplicate):
    title = "Another opportunity already has this external id"

    def __init__(self, detail: str, *, field: str, existing_id: uuid.UUID) -> None:
        super().__init__(
            detail,
            errors=[FieldError(field=field, message="already used by another opportunity")],
            extra={"existing_id": str(existing_id)},
        )


class DuplicateSalesTarget(Duplicate):
    title = "The owner already has a target for this period and currency"


class DuplicateCommissionRule(Duplicate):
    title = "A rule for this pipeline and owner already exists"
