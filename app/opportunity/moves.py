"""Moving an opportunity between stages: the one place that changes its stage, status,
close time and loss reason, and records the move in its history."""

from __future__ import annotations

from sqlalchemy import BigInteger, bindparam, cast, func
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import DateTime

from app.auth.dependencies import AuthContext
from app.kit.errors import FieldError, ValidationFailed
from app.kit.ids import uuid7
from app.models import Opportunity, OpportunityStageChange, PipelineStage


def check_loss_reason(stage: PipelineStage, loss_reason: str | None, *, field: str) -> None:
    """A lost stage needs a reason; the others take none.

    Raises:
        ValidationFailed: naming ``field``.
    """
    if stage.type == "lost" and loss_reason is None:
        raise ValidationFailed(
            f"Moving to the lost stage {stage.name!r} needs a loss reason",
            errors=[FieldError(field=field, message="required for a lost stage")],
        )
    if stage.type != "lost" and loss_reason is not None:
        raise ValidationFailed(
            "Only a lost opportunity has a loss reason",
            errors=[FieldError(field=field, message=f"{stage.name!r} is not a lost stage")],
        )


def enter_first_stage(
    auth: AuthContext, opportunity: Opportunity, stage: PipelineStage
) -> OpportunityStageChange:
    """The history row of the stage an opportunity is created in (no previous stage)."""
    opportunity.stage_entered_at = func.now()
    opportunity.closed_at = None if stage.type == "open" else func.now()
    return OpportunityStageChange(
        workspace_id=auth.workspace_id,
        id=uuid7(),
        opportunity_id=opportunity.id,
        pipeline_id=stage.pipeline_id,
        from_stage_id=None,
        from_stage_name=None,
        from_status=None,
        to_stage_id=stage.id,
        to_stage_name=stage.name,
        to_status=stage.type,
        changed_at=func.now(),
        changed_by=auth.api_key_id,
        seconds_in_previous_stage=None,
        loss_reason=opportunity.loss_reason,
    )


async def move(
    session: AsyncSession,
    auth: AuthContext,
    opportunity: Opportunity,
    current: PipelineStage,
    target: PipelineStage,
    loss_reason: str | None,
) -> OpportunityStageChange:
    """Put ``opportunity`` (locked by the caller) in ``target`` and record the move.

    The status follows the target's type; closing (won or lost, or from one to the other)
    stamps ``closed_at`` and reopening clears it with the loss reason. Times come from the
    database clock, so the time spent in the previous stage is measured by one clock however
    many service processes there are.
    """
    entered_at = opportunity.stage_entered_at
    from_status = opportunity.status
    opportunity.pipeline_id = target.pipeline_id
    opportunity.stage_id = target.id
    opportunity.status = target.type
    opportunity.loss_reason = loss_reason if target.type == "lost" else None
    if target.type == "open":
        opportunity.closed_at = None
    elif from_status != target.type:
        opportunity.closed_at = func.now()
    opportunity.stage_entered_at = func.now()
    elapsed = func.extract("epoch", func.now() - bindparam("entered", entered_at, DateTime(True)))
    change = OpportunityStageChange(
        workspace_id=auth.workspace_id,
        id=uuid7(),
        opportunity_id=opportunity.id,
        pipeline_id=target.pipeline_id,
        from_stage_id=current.id,
        from_stage_name=current.name,
        from_status=from_status,
        to_stage_id=target.id,
        to_stage_name=target.name,
        to_status=target.type,
        changed_at=func.now(),
        changed_by=auth.api_key_id,
        seconds_in_previous_stage=func.greatest(0, cast(func.floor(elapsed), BigInteger)),
        loss_reason=opportunity.loss_reason,
    )
    session.add(change)
    return change
