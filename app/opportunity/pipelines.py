"""Pipelines and their ordered stages.

A stage change of any kind (added, renamed, re-weighed, moved, deleted) writes the pipeline's
row too, so its version, and so its ETag, covers the stages.
"""

from __future__ import annotations

import builtins
import uuid

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from app.auth.dependencies import AuthContext
from app.events import outbox
from app.kit.errors import Conflict, FieldError, ValidationFailed
from app.kit.etag import check_if_match
from app.kit.ids import uuid7
from app.kit.pagination import Keyset, Sort, SortField, parse_datetime
from app.models import Pipeline, PipelineStage
from app.opportunity import schemas
from app.opportunity.defaults import ensure_default, new_pipeline
from app.opportunity.exceptions import (
    DuplicatePipeline,
    PipelineInUse,
    PipelineNotFound,
    StageInUse,
    StageNotFound,
)
from app.opportunity.moves import check_loss_reason
from app.opportunity.repository import PipelineRepository
from app.opportunity.service import opportunity as opportunity_service

SORTS = {"created_at": SortField(Pipeline.created_at, parse_datetime)}
OLDEST_FIRST = Sort(name="created_at", descending=False)


def _ordered(pipeline: Pipeline) -> list[PipelineStage]:
    return sorted(pipeline.stages, key=lambda stage: stage.position)


class PipelineService:
    # -- reading -----------------------------------------------------------------------------
    async def list(self, session: AsyncSession, auth: AuthContext) -> list[Pipeline]:
        """Every pipeline of the workspace, the default first (created if missing)."""
        await ensure_default(session, auth.workspace_id)
        return await PipelineRepository(session).all(auth.workspace_id)

    async def page(
        self, session: AsyncSession, auth: AuthContext, *, limit: int, cursor: str | None
    ) -> tuple[builtins.list[Pipeline], str | None]:
        """A page of pipelines, oldest first (the default pipeline is created with the
        workspace, or on first use when the workspace has none)."""
        await ensure_default(session, auth.workspace_id)
        keyset = Keyset.build(
            sort=OLDEST_FIRST, allowed=SORTS, id_column=Pipeline.id, limit=limit, cursor=cursor
        )
        statement = keyset.apply(
            select(Pipeline)
            .where(Pipeline.workspace_id == auth.workspace_id)
            .options(selectinload(Pipeline.stages))
        )
        rows = builtins.list((await session.execute(statement)).scalars().all())
        return keyset.page(rows, lambda row: (row.created_at, row.id))

    async def get(
        self, session: AsyncSession, auth: AuthContext, pipeline_id: uuid.UUID
    ) -> Pipeline:
        """Raises: PipelineNotFound: no such pipeline in the caller's workspace."""
        found = await PipelineRepository(session).get(auth.workspace_id, pipeline_id)
        if found is None:
            raise PipelineNotFound()
        return found

    async def stage_counts(
        self, session: AsyncSession, auth: AuthContext, pipeline_id: uuid.UUID
    ) -> dict[uuid.UUID, int]:
        return await PipelineRepository(session).stage_counts(auth.workspace_id, pipeline_id)

    # -- pipelines ---------------------------------------------------------------------------
    async def create(
        self, session: AsyncSession, auth: AuthContext, data: schemas.PipelineCreate
    ) -> Pipeline:
        """Raises: DuplicatePipeline: another pipeline has this name."""
        repository = PipelineRepository(session)
        await ensure_default(session, auth.workspace_id)
        if await repository.name_taken(auth.workspace_id, data.name):
            raise DuplicatePipeline(data.name)
        pipeline = new_pipeline(
            auth.workspace_id,
            data.name,
            [(stage.name, stage.probability or 0, stage.type) for stage in data.stages],
            is_default=data.is_default,
        )
        if data.is_default:
            # The old default stops being one first: the unique index allows one at a time.
            await repository.clear_default(auth.workspace_id, pipeline.id)
        repository.add(pipeline)
        await session.flush()
        await session.refresh(pipeline, ["created_at", "updated_at"])
        await self._record(session, auth, "pipeline.created", pipeline)
        return pipeline

    async def update(
        self,
        session: AsyncSession,
        auth: AuthContext,
        pipeline_id: uuid.UUID,
        patch: schemas.PipelineUpdate,
        *,
        if_match: str | None = None,
    ) -> Pipeline:
        """Rename the pipeline or make it the default.

        Raises:
            PipelineNotFound, PreconditionFailed, DuplicatePipeline.
        """
        pipeline = await self._locked(session, auth, pipeline_id, if_match)
        changes = patch.changes()
        changed = False
        if "name" in changes and patch.name is not None and patch.name != pipeline.name:
            if await PipelineRepository(session).name_taken(
                auth.workspace_id, patch.name, except_id=pipeline.id
            ):
                raise DuplicatePipeline(patch.name)
            pipeline.name = patch.name
            changed = True
        if patch.is_default and not pipeline.is_default:
            await self._make_default(session, auth, pipeline)
            changed = True
        if changed:
            await self._touch(session, pipeline)
            await self._record(session, auth, "pipeline.updated", pipeline)
        return pipeline

    async def delete(
        self,
        session: AsyncSession,
        auth: AuthContext,
        pipeline_id: uuid.UUID,
        *,
        if_match: str | None = None,
    ) -> None:
        """Delete a pipeline that holds no opportunities and is not the default.

        Raises:
            PipelineNotFound, PreconditionFailed, PipelineInUse, Conflict (the default).
        """
        repository = PipelineRepository(session)
        pipeline = await self._locked(session, auth, pipeline_id, if_match)
        if pipeline.is_default:
            raise Conflict("The default pipeline cannot be deleted; make another the default")
        held = sum((await repository.stage_counts(auth.workspace_id, pipeline.id)).values())
        if held:
            raise PipelineInUse(f"The pipeline holds {held} opportunities; move them first")
        await repository.delete(pipeline)
        session.expunge(pipeline)
        await outbox.record(
            session,
            workspace_id=auth.workspace_id,
            type="pipeline.deleted",
            aggregate_type="pipeline",
            aggregate_id=pipeline_id,
            data={"id": str(pipeline_id)},
        )

    # -- stages ------------------------------------------------------------------------------
    async def add_stage(
        self,
        session: AsyncSession,
        auth: AuthContext,
        pipeline_id: uuid.UUID,
        data: schemas.StageCreate,
        *,
        if_match: str | None = None,
    ) -> tuple[Pipeline, PipelineStage]:
        """Add a stage at ``position`` (default: last); later stages move one down.

        Raises:
            PipelineNotFound, PreconditionFailed, ValidationFailed (a name in use, too many).
        """
        pipeline = await self._locked(session, auth, pipeline_id, if_match)
        stages = _ordered(pipeline)
        self._check_name_free(stages, data.name, None)
        if len(stages) >= schemas.MAX_STAGES:
            raise ValidationFailed(
                f"A pipeline has at most {schemas.MAX_STAGES} stages",
                errors=[FieldError(field="name", message="too many stages")],
            )
        position = len(stages) if data.position is None else min(data.position, len(stages))
        stage = PipelineStage(
            workspace_id=auth.workspace_id,
            id=uuid7(),
            pipeline_id=pipeline.id,
            name=data.name,
            position=position,
            probability=data.probability or 0,
            type=data.type,
        )
        stages.insert(position, stage)
        pipeline.stages.append(stage)
        self._renumber(stages)
        await self._touch(session, pipeline)
        await self._record(session, auth, "pipeline.updated", pipeline)
        return pipeline, stage

    async def update_stage(
        self,
        session: AsyncSession,
        auth: AuthContext,
        pipeline_id: uuid.UUID,
        stage_id: uuid.UUID,
        patch: schemas.StageUpdate,
        *,
        if_match: str | None = None,
    ) -> tuple[Pipeline, PipelineStage]:
        """Rename, re-weigh, retype or move one stage.

        Raises:
            PipelineNotFound, StageNotFound, PreconditionFailed,
            ValidationFailed: a probability that does not fit the type, a name in use, no
                open stage left.
            StageInUse: a type change of a stage that holds opportunities.
        """
        pipeline = await self._locked(session, auth, pipeline_id, if_match)
        stages = _ordered(pipeline)
        stage = self._find(stages, stage_id)
        changes = patch.changes()
        if "name" in changes and patch.name is not None:
            self._check_name_free(stages, patch.name, stage.id)
            stage.name = patch.name
        new_type = patch.type if patch.type is not None else stage.type
        if new_type != stage.type:
            counts = await PipelineRepository(session).stage_counts(auth.workspace_id, pipeline.id)
            if counts.get(stage.id):
                raise StageInUse(
                    "The stage holds opportunities; its type decides their status, so it "
                    "cannot change while they are in it",
                    errors=[FieldError(field="type", message="the stage holds opportunities")],
                )
            if stage.type == "open" and sum(s.type == "open" for s in stages) == 1:
                raise ValidationFailed(
                    "A pipeline needs at least one open stage",
                    errors=[FieldError(field="type", message="the last open stage")],
                )
        fixed = {"won": 100, "lost": 0}.get(new_type)
        probability = patch.probability if patch.probability is not None else stage.probability
        if fixed is not None:
            if patch.probability is not None and patch.probability != fixed:
                raise ValidationFailed(
                    f"A {new_type} stage has probability {fixed}",
                    errors=[FieldError(field="probability", message=f"must be {fixed}")],
                )
            probability = fixed
        stage.type = new_type
        stage.probability = probability
        if patch.position is not None:
            stages.remove(stage)
            stages.insert(min(patch.position, len(stages)), stage)
            self._renumber(stages)
        await self._touch(session, pipeline)
        await self._record(session, auth, "pipeline.updated", pipeline)
        return pipeline, stage

    async def reorder(
        self,
        session: AsyncSession,
        auth: AuthContext,
        pipeline_id: uuid.UUID,
        order: schemas.StageOrder,
        *,
        if_match: str | None = None,
    ) -> Pipeline:
        """Put the stages in the given order (every stage, each once).

        Raises:
            PipelineNotFound, PreconditionFailed, ValidationFailed.
        """
        pipeline = await self._locked(session, auth, pipeline_id, if_match)
        by_id = {stage.id: stage for stage in pipeline.stages}
        if sorted(map(str, order.stage_ids)) != sorted(map(str, by_id)):
            raise ValidationFailed(
                "List every stage of the pipeline exactly once",
                errors=[FieldError(field="stage_ids", message="not the pipeline's stages")],
            )
        self._renumber([by_id[stage_id] for stage_id in order.stage_ids])
        await self._touch(session, pipeline)
        await self._record(session, auth, "pipeline.updated", pipeline)
        return pipeline

    async def delete_stage(
        self,
        session: AsyncSession,
        auth: AuthContext,
        pipeline_id: uuid.UUID,
        stage_id: uuid.UUID,
        *,
        move_to: uuid.UUID | None = None,
        loss_reason: str | None = None,
        if_match: str | None = None,
    ) -> Pipeline:
        """Delete a stage; its opportunities, if any, move to ``move_to`` in the same
        transaction (each move recorded).

        Raises:
            PipelineNotFound, StageNotFound, PreconditionFailed,
            StageInUse: the stage holds opportunities and ``move_to`` is missing.
            ValidationFailed: ``move_to`` is not another stage of the pipeline, a lost
                target without ``loss_reason``, or the last open stage.
        """
        pipeline = await self._locked(session, auth, pipeline_id, if_match)
        stages = _ordered(pipeline)
        stage = self._find(stages, stage_id)
        if stage.type == "open" and sum(s.type == "open" for s in stages) == 1:
            raise ValidationFailed(
                "A pipeline needs at least one open stage",
                errors=[FieldError(field="path.stage_id", message="the last open stage")],
            )
        held = (await PipelineRepository(session).stage_counts(auth.workspace_id, pipeline.id)).get(
            stage.id, 0
        )
        if move_to is not None:
            target = next((s for s in stages if s.id == move_to and s.id != stage.id), None)
            if target is None:
                raise ValidationFailed(
                    "Opportunities can only move to another stage of the same pipeline",
                    errors=[FieldError(field="query.move_to", message="not another stage here")],
                )
            if held:
                check_loss_reason(target, loss_reason, field="query.loss_reason")
                await opportunity_service.move_out_of_stage(
                    session, auth, stage, target, loss_reason
                )
        elif held:
            raise StageInUse(
                f"The stage holds {held} opportunities; name a stage to move them to",
                errors=[FieldError(field="query.move_to", message="required")],
            )
        stages.remove(stage)
        pipeline.stages.remove(stage)
        await session.flush()
        self._renumber(stages)
        await self._touch(session, pipeline)
        await self._record(session, auth, "pipeline.updated", pipeline)
        return pipeline

    # -- output ------------------------------------------------------------------------------
    def to_schema(self, pipeline: Pipeline) -> schemas.Pipeline:
        return schemas.Pipeline(
            id=pipeline.id,
            name=pipeline.name,
            is_default=pipeline.is_default,
            stages=[self.stage_to_schema(stage) for stage in _ordered(pipeline)],
            created_at=pipeline.created_at,
            updated_at=pipeline.updated_at,
            version=pipeline.version,
        )

    @staticmethod
    def stage_to_schema(stage: PipelineStage) -> schemas.Stage:
        return schemas.Stage(
            id=stage.id,
            name=stage.name,
            position=stage.position,
            probability=stage.probability,
            type=stage.type,  # type: ignore[arg-type]
        )

    # -- helpers -----------------------------------------------------------------------------
    async def _locked(
        self,
        session: AsyncSession,
        auth: AuthContext,
        pipeline_id: uuid.UUID,
        if_match: str | None,
    ) -> Pipeline:
        found = await PipelineRepository(session).get(
            auth.workspace_id, pipeline_id, for_update=True
        )
        if found is None:
            raise PipelineNotFound()
        check_if_match(if_match, found.version)
        return found

    async def _make_default(
        self, session: AsyncSession, auth: AuthContext, pipeline: Pipeline
    ) -> None:
        repository = PipelineRepository(session)
        await repository.clear_default(auth.workspace_id, pipeline.id)
        pipeline.is_default = True
        await session.flush()

    @staticmethod
    async def _touch(session: AsyncSession, pipeline: Pipeline) -> None:
        pipeline.updated_at = func.now()
        await session.flush()
        await session.refresh(pipeline, ["updated_at"])

    @staticmethod
    def _renumber(stages: builtins.list[PipelineStage]) -> None:
        for position, stage in enumerate(stages):
            if stage.position != position:
                stage.position = position

    @staticmethod
    def _find(stages: builtins.list[PipelineStage], stage_id: uuid.UUID) -> PipelineStage:
        for stage in stages:
            if stage.id == stage_id:
                return stage
        raise StageNotFound()

    @staticmethod
    def _check_name_free(
        stages: builtins.list[PipelineStage], name: str, except_id: uuid.UUID | None
    ) -> None:
        for stage in stages:
            if stage.id != except_id and stage.name.casefold() == name.casefold():
                raise ValidationFailed(
                    f"The pipeline already has a stage named {name!r}",
                    errors=[FieldError(field="name", message="already a stage of the pipeline")],
                )

    async def _record(
        self, session: AsyncSession, auth: AuthContext, type: str, pipeline: Pipeline
    ) -> None:
        await outbox.record(
            session,
            workspace_id=auth.workspace_id,
            type=type,
            aggregate_type="pipeline",
            aggregate_id=pipeline.id,
            data=self.to_schema(pipeline),
        )


pipeline = PipelineService()
