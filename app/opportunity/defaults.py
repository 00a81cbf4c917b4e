"""Every workspace has a default pipeline: created with the workspace, or on first use for
workspaces that existed before pipelines did."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from app.db.locking import lock_keys
from app.kit.ids import uuid7
from app.models import Pipeline, PipelineStage
from app.opportunity.repository import PipelineRepository

DEFAULT_PIPELINE_NAME = "Sales"
# (name, probability, type): a B2B sales process as the common CRMs ship it.
DEFAULT_STAGES = (
    ("Qualification", 10, "open"),
    ("Needs analysis", 25, "open"),
    ("Proposal", 50, "open"),
    ("Negotiation", 75, "open"),
    ("Closed won", 100, "won"),
    ("Closed lost", 0, "lost"),
)


def new_pipeline(
    workspace_id: uuid.UUID,
    name: str,
    stages: list[tuple[str, int, str]],
    *,
    is_default: bool,
) -> Pipeline:
    pipeline_id = uuid7()
    return Pipeline(
        workspace_id=workspace_id,
        id=pipeline_id,
        name=name,
        is_default=is_default,
        version=1,
        stages=[
            PipelineStage(
                workspace_id=workspace_id,
                id=uuid7(),
                pipeline_id=pipeline_id,
                name=stage_name,
                position=position,
                probability=probability,
                type=stage_type,
            )
            for position, (stage_name, probability, stage_type) in enumerate(stages)
        ],
    )


async def ensure_default(session: AsyncSession, workspace_id: uuid.UUID) -> Pipeline:
    """The workspace's default pipeline, created if it has none.

    Concurrent first uses queue on an advisory lock, so exactly one default is created.
    """
    repository = PipelineRepository(session)
    found = await repository.default(workspace_id)
    if found is not None:
        return found
    await lock_keys(session, workspace_id, ["default_pipeline"])
    found = await repository.default(workspace_id)
    if found is not None:
        return found
    name = DEFAULT_PIPELINE_NAME
    if await repository.name_taken(workspace_id, name):
        name = f"{name} (default)"
    pipeline = new_pipeline(workspace_id, name, list(DEFAULT_STAGES), is_default=True)
    repository.add(pipeline)
    await session.flush()
    await session.refresh(pipeline, ["created_at", "updated_at"])
    return pipeline
