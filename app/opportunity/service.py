"""Opportunities: deals in a pipeline, their stage moves (each recorded), competitors and
outcome.

Amounts are integers in the currency's minor unit, never converted between currencies.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Date, cast, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload
from sqlalchemy.orm.attributes import set_committed_value

from app.account.service import account as account_service
from app.auth.dependencies import AuthContext
from app.contact.exceptions import ContactMerged, ContactNotFound
from app.contact.references import register_contact_reference
from app.db.locking import lock_keys
from app.events import outbox
from app.interaction.links import register_link_target
from app.kit.errors import FieldError, NotFound, ValidationFailed
from app.kit.etag import check_if_match
from app.kit.ids import uuid7
from app.kit.merge_patch import merge_patch
from app.kit.money import Money, currency_exponent
from app.kit.pagination import Keyset, Sort, SortField, parse_datetime, parse_sort
from app.kit.schemas import validate_value
from app.kit.validators import Attributes, ExternalIds
from app.models import (
    Opportunity,
    OpportunityCompetitor,
    OpportunityExternalId,
    OpportunityStageChange,
    Pipeline,
    PipelineStage,
)
from app.opportunity import schemas
from app.opportunity.defaults import ensure_default
from app.opportunity.exceptions import (
    DuplicateOpportunity,
    OpportunityNotFound,
    PipelineNotFound,
)
from app.opportunity.moves import check_loss_reason, enter_first_stage, move
from app.opportunity.repository import OpportunityFilters, OpportunityRepository, PipelineRepository

MAX_MINOR = 2**63 - 1
MAX_RECENT = 100


def _parse_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError("expected an integer")
    return value


def _parse_date(value: Any) -> date:
    if not isinstance(value, str):
        raise ValueError("expected a date")
    return date.fromisoformat(value)


SORTS = {
    "amount": SortField(Opportunity.amount_minor, _parse_int),
    "expected_close_date": SortField(Opportunity.expected_close_date, _parse_date),
    "updated_at": SortField(Opportunity.updated_at, parse_datetime),
    "created_at": SortField(Opportunity.created_at, parse_datetime),
}
DEFAULT_SORT = "-updated_at"
HISTORY_SORTS = {"changed_at": SortField(OpportunityStageChange.changed_at, parse_datetime)}
OLDEST_FIRST = Sort(name="changed_at", descending=False)


async def _move_opportunities(
    session: AsyncSession,
    workspace_id: uuid.UUID,
    survivor_id: uuid.UUID,
    absorbed_ids: Sequence[uuid.UUID],
) -> None:
    # A new version, so cached copies (ETags) of a re-pointed opportunity go stale.
    await session.execute(
        text(
            "UPDATE opportunities SET contact_id = :survivor, version = version + 1, "
            "updated_at = now() WHERE workspace_id = :workspace_id "
            "AND contact_id = ANY(:absorbed)"
        ),
        {"survivor": survivor_id, "workspace_id": workspace_id, "absorbed": list(absorbed_ids)},
    )


async def _opportunities_that_exist(
    session: AsyncSession, workspace_id: uuid.UUID, ids: Any
) -> set[uuid.UUID]:
    return await OpportunityRepository(session).existing_ids(workspace_id, ids)


register_contact_reference("opportunities", _move_opportunities)
register_link_target("opportunity", _opportunities_that_exist)


@dataclass(frozen=True)
class OpportunityQuery:
    """What a caller asks of the opportunity list."""

    pipeline_id: uuid.UUID | None = None
    stage_ids: Sequence[uuid.UUID] = ()
    statuses: Sequence[str] = ()
    owner: str | None = None
    contact_id: uuid.UUID | None = None
    account_id: uuid.UUID | None = None
    currency: str | None = None
    amount_min: Decimal | None = None
    amount_max: Decimal | None = None
    close_from: date | None = None
    close_to: date | None = None


def weighted_minor(amount_minor: int, probability: int) -> int:
    """amount x probability%, rounded half up to the minor unit."""
    return (2 * amount_minor * probability + 100) // 200


def _minor_of(money: Money, field: str) -> int:
    minor = money.to_minor_units()
    if minor < 0:
        raise ValidationFailed(
            "An amount cannot be negative",
            errors=[FieldError(field=f"{field}.amount", message="must not be negative")],
        )
    if minor > MAX_MINOR:
        raise ValidationFailed(
            "The amount is out of range",
            errors=[FieldError(field=f"{field}.amount", message="is out of range")],
        )
    return minor


def _query_minor(value: Decimal | None, currency: str | None, field: str) -> int | None:
    if value is None:
        return None
    if currency is None:
        raise ValidationFailed(
            "An amount range needs a currency: amounts are never compared across currencies",
            errors=[FieldError(field="query.currency", message=f"required with {field}")],
        )
    exponent = currency_exponent(currency)
    if -int(value.as_tuple().exponent) > exponent:
        raise ValidationFailed(
            f"{currency} allows at most {exponent} decimal places",
            errors=[FieldError(field=f"query.{field}", message="too many decimal places")],
        )
    return int(value.scaleb(exponent))


class OpportunityService:
    # -- reading -----------------------------------------------------------------------------
    async def get(
        self, session: AsyncSession, auth: AuthContext, opportunity_id: uuid.UUID
    ) -> Opportunity:
        """Raises: OpportunityNotFound: no such opportunity in the caller's workspace."""
        found = await OpportunityRepository(session).get(auth.workspace_id, opportunity_id)
        if found is None:
            raise OpportunityNotFound()
        return found

    async def get_many(
        self, session: AsyncSession, auth: AuthContext, ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, Opportunity]:
        if not ids:
            return {}
        rows = await OpportunityRepository(session).get_many(auth.workspace_id, ids)
        return {row.id: row for row in rows}

    async def get_by_external_id(
        self, session: AsyncSession, auth: AuthContext, system: str, value: str
    ) -> Opportunity:
        """Raises: OpportunityNotFound: no opportunity has this key in the workspace."""
        found = await OpportunityRepository(session).by_external_id(
            auth.workspace_id, system, value
        )
        if found is None:
            raise OpportunityNotFound(f"No opportunity has {system} id {value!r}")
        return await self.get(session, auth, found)

    async def find(
        self,
        session: AsyncSession,
        auth: AuthContext,
        query: OpportunityQuery,
        *,
        limit: int,
        cursor: str | None,
        sort: str | None,
    ) -> tuple[list[Opportunity], str | None]:
        """A page of opportunities, most recently updated first unless ``sort`` says otherwise.

        Raises:
            ValidationFailed: unknown sort field, or an amount range without a currency.
            InvalidCursor: the cursor is malformed or from another listing.
        """
        keyset = Keyset.build(
            sort=parse_sort(sort, SORTS, DEFAULT_SORT),
            allowed=SORTS,
            id_column=Opportunity.id,
            limit=limit,
            cursor=cursor,
        )
        filters = OpportunityFilters(
            pipeline_id=query.pipeline_id,
            stage_ids=query.stage_ids,
            statuses=query.statuses,
            owner=query.owner,
            contact_id=query.contact_id,
            account_id=query.account_id,
            currency=query.currency,
            amount_min_minor=_query_minor(query.amount_min, query.currency, "amount_min"),
            amount_max_minor=_query_minor(query.amount_max, query.currency, "amount_max"),
            close_from=query.close_from,
            close_to=query.close_to,
        )
        rows = await OpportunityRepository(session).find(auth.workspace_id, filters, keyset)
        return keyset.page(rows, lambda row: self.sort_key(row, keyset.sort.name))

    @staticmethod
    def sort_key(row: Opportunity, sort_name: str) -> tuple[Any, uuid.UUID]:
        return getattr(row, SORTS[sort_name].column.key), row.id

    def cursor_of(self, row: Opportunity, sort: str | None) -> str:
        order = parse_sort(sort, SORTS, DEFAULT_SORT)
        keyset = Keyset(
            sort=order, field=SORTS[order.name], id_column=Opportunity.id, limit=1, after=None
        )
        return keyset.cursor(*self.sort_key(row, order.name))

    async def recent_for_contacts(
        self,
        session: AsyncSession,
        auth: AuthContext,
        contact_ids: Sequence[uuid.UUID],
        limit: int,
        statuses: Sequence[str] = (),
    ) -> dict[uuid.UUID, list[Opportunity]]:
        """Each contact's most recently updated ``limit`` opportunities, in one statement.

        Raises:
            ValidationFailed: ``limit`` is not between 1 and 100.
        """
        if not 1 <= limit <= MAX_RECENT:
            raise ValidationFailed(
                f"limit must be between 1 and {MAX_RECENT}",
                errors=[FieldError(field="limit", message=f"1 to {MAX_RECENT}")],
            )
        grouped: dict[uuid.UUID, list[Opportunity]] = {cid: [] for cid in contact_ids}
        if not contact_ids:
            return grouped
        rows = await OpportunityRepository(session).recent_for_contacts(
            auth.workspace_id, list(dict.fromkeys(contact_ids)), limit, statuses
        )
        for row in rows:
            if row.contact_id is not None:
                grouped.setdefault(row.contact_id, []).append(row)
        return grouped

    async def history(
        self,
        session: AsyncSession,
        auth: AuthContext,
        opportunity_id: uuid.UUID,
        *,
        limit: int,
        cursor: str | None,
    ) -> tuple[list[OpportunityStageChange], str | None]:
        """The opportunity's stage changes, oldest first (the first is its creation).

        Raises:
            OpportunityNotFound: no such opportunity in the caller's workspace.
        """
        repository = OpportunityRepository(session)
        if not await repository.existing_ids(auth.workspace_id, [opportunity_id]):
            raise OpportunityNotFound()
        keyset = Keyset.build(
            sort=OLDEST_FIRST,
            allowed=HISTORY_SORTS,
            id_column=OpportunityStageChange.id,
            limit=limit,
            cursor=cursor,
        )
        statement = keyset.apply(
            select(OpportunityStageChange).where(
                OpportunityStageChange.workspace_id == auth.workspace_id,
                OpportunityStageChange.opportunity_id == opportunity_id,
            )
        )
        rows = list((await session.execute(statement)).scalars().all())
        return keyset.page(rows, lambda row: (row.changed_at, row.id))

    async def histories(
        self, session: AsyncSession, auth: AuthContext, opportunity_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, list[OpportunityStageChange]]:
        """Each opportunity's whole history, oldest first, in one statement."""
        grouped: dict[uuid.UUID, list[OpportunityStageChange]] = {
            oid: [] for oid in opportunity_ids
        }
        if opportunity_ids:
            rows = await OpportunityRepository(session).history(
                auth.workspace_id, list(dict.fromkeys(opportunity_ids))
            )
            for row in rows:
                grouped.setdefault(row.opportunity_id, []).append(row)
        return grouped

    async def changes_with_opportunity(
        self,
        session: AsyncSession,
        auth: AuthContext,
        change_ids: Sequence[uuid.UUID],
        *,
        with_children: bool = True,
    ) -> list[tuple[OpportunityStageChange, Opportunity]]:
        """Stage changes with their opportunity; ``with_children``: the opportunity's stage,
        competitors and partner ids too (what its REST shape shows)."""
        if not change_ids:
            return []
        return await OpportunityRepository(session).changes_by_id(
            auth.workspace_id, change_ids, with_children=with_children
        )

    # -- writing -----------------------------------------------------------------------------
    async def create(
        self, session: AsyncSession, auth: AuthContext, data: schemas.OpportunityCreate
    ) -> Opportunity:
        """Open an opportunity (or record a closed one) in a stage of a pipeline.

        Raises:
            ValidationFailed: a negative amount, a stage of another pipeline, a lost stage
                without a loss reason, an open deal expected to close before today.
            ContactNotFound / ContactMerged / NotFound: an unknown contact or account.
            PipelineNotFound: an unknown pipeline.
            DuplicateOpportunity: an external id of another opportunity.
        """
        repository = OpportunityRepository(session)
        amount = _minor_of(data.amount, "amount")
        pipeline, stage = await self._resolve_stage(session, auth, data.pipeline_id, data.stage_id)
        check_loss_reason(stage, data.loss_reason, field="loss_reason")
        if stage.type == "open":
            today = await self._today(session, auth)
            if data.expected_close_date < today:
                raise ValidationFailed(
                    "An open opportunity cannot be expected to close before it was created",
                    errors=[FieldError(field="expected_close_date", message=f"before {today}")],
                )
        await self._check_parties(session, auth, data.contact_id, data.account_id)
        opportunity = Opportunity(
            workspace_id=auth.workspace_id,
            id=uuid7(),
            name=data.name,
            contact_id=data.contact_id,
            account_id=data.account_id,
            pipeline_id=pipeline.id,
            stage_id=stage.id,
            status=stage.type,
            currency=data.amount.currency,
            amount_minor=amount,
            expected_close_date=data.expected_close_date,
            owner=data.owner,
            source=data.source,
            next_step=data.next_step,
            loss_reason=data.loss_reason,
            attributes=data.attributes,
            version=1,
        )
        if data.external_ids:
            await self._check_external_ids_free(session, auth, opportunity, data.external_ids)
        self._set_external_ids(opportunity, data.external_ids)
        self._set_competitors(opportunity, data.competitors)
        first = enter_first_stage(auth, opportunity, stage)
        repository.add(opportunity)
        await session.flush()
        repository.add(first)
        await session.flush()
        await session.refresh(
            opportunity, ["created_at", "updated_at", "stage_entered_at", "closed_at"]
        )
        await session.refresh(first, ["changed_at"])
        set_committed_value(opportunity, "stage", stage)
        body = self.to_schema(opportunity)
        await self._record(session, auth, "opportunity.created", opportunity, body)
        if stage.type != "open":
            await self._record(session, auth, f"opportunity.{stage.type}", opportunity, body)
        return opportunity

    async def update(
        self,
        session: AsyncSession,
        auth: AuthContext,
        opportunity_id: uuid.UUID,
        patch: schemas.OpportunityUpdate,
        *,
        if_match: str | None = None,
    ) -> Opportunity:
        """Apply a merge patch; a new ``stage_id`` is a recorded stage move.

        Raises:
            OpportunityNotFound: no such opportunity in the caller's workspace.
            PreconditionFailed: ``if_match`` names an older version.
            ValidationFailed: see ``create``; also clearing both contact and account.
        """
        opportunity = await self._locked(session, auth, opportunity_id)
        check_if_match(if_match, opportunity.version)
        changes = patch.changes()
        touched: set[str] = set()

        def assign(name: str, value: Any) -> None:
            if getattr(opportunity, name) != value:
                setattr(opportunity, name, value)
                touched.add(name)

        # Child rows first: their flushes must not write the opportunity's row (and bump its
        # version) before the final write does.
        if "competitors" in changes and patch.competitors is not None:
            current = [
                (c.name, c.notes, c.status)
                for c in sorted(opportunity.competitors, key=lambda c: c.position)
            ]
            wanted = [(c.name, c.notes, c.status) for c in patch.competitors]
            if current != wanted:
                opportunity.competitors = []
                await session.flush()
                self._set_competitors(opportunity, patch.competitors)
                touched.add("competitors")
        if "external_ids" in changes:
            current_ids = {item.system: item.value for item in opportunity.external_ids}
            merged = validate_value(
                ExternalIds, merge_patch(current_ids, changes["external_ids"]) or {}, "external_ids"
            )
            if merged != current_ids:
                await self._check_external_ids_free(session, auth, opportunity, merged)
                opportunity.external_ids = []
                await session.flush()
                self._set_external_ids(opportunity, merged)
                touched.add("external_ids")
        for name in ("name", "owner", "source", "next_step"):
            if name in changes:
                assign(name, changes[name])
        if "contact_id" in changes or "account_id" in changes:
            contact_id = changes.get("contact_id", opportunity.contact_id)
            account_id = changes.get("account_id", opportunity.account_id)
            if contact_id is None and account_id is None:
                raise ValidationFailed(
                    "An opportunity needs a contact, an account or both",
                    errors=[
                        FieldError(field=name, message="cannot clear both contact and account")
                        for name in ("contact_id", "account_id")
                        if name in changes
                    ],
                )
            await self._check_parties(
                session,
                auth,
                contact_id if contact_id != opportunity.contact_id else None,
                account_id if account_id != opportunity.account_id else None,
            )
            assign("contact_id", contact_id)
            assign("account_id", account_id)
        if "amount" in changes and patch.amount is not None:
            assign("amount_minor", _minor_of(patch.amount, "amount"))
            assign("currency", patch.amount.currency)
        if "expected_close_date" in changes and patch.expected_close_date is not None:
            tz = await PipelineRepository(session).workspace_timezone(auth.workspace_id)
            created_on = opportunity.created_at.astimezone(ZoneInfo(tz)).date()
            if patch.expected_close_date < created_on:
                raise ValidationFailed(
                    "An opportunity cannot close before it was created",
                    errors=[
                        FieldError(field="expected_close_date", message=f"before {created_on}")
                    ],
                )
            assign("expected_close_date", patch.expected_close_date)

        moved: tuple[OpportunityStageChange, str] | None = None
        target = await self._patched_stage(session, auth, opportunity, changes)
        if target is not None and target.id != opportunity.stage_id:
            reason = changes.get("loss_reason")
            check_loss_reason(target, reason, field="loss_reason")
            from_status = opportunity.status
            change = await move(session, auth, opportunity, opportunity.stage, target, reason)
            touched.update({"stage_id", "status"})
            moved = (change, from_status)
        elif "loss_reason" in changes:
            reason = changes["loss_reason"]
            if opportunity.status == "lost" and reason is None:
                raise ValidationFailed(
                    "A lost opportunity keeps its loss reason",
                    errors=[FieldError(field="loss_reason", message="cannot be null when lost")],
                )
            if opportunity.status != "lost" and reason is not None:
                raise ValidationFailed(
                    "Only a lost opportunity has a loss reason",
                    errors=[FieldError(field="loss_reason", message="the opportunity is not lost")],
                )
            assign("loss_reason", reason)

        if "attributes" in changes:
            patched = merge_patch(opportunity.attributes, changes["attributes"]) or {}
            assign("attributes", validate_value(Attributes, patched, "attributes"))

        if not touched:
            return opportunity
        # Writes the row even when only competitors or external ids changed, so the version
        # and ETag move.
        opportunity.updated_at = func.now()
        await session.flush()
        await session.refresh(opportunity, ["updated_at", "stage_entered_at", "closed_at"])
        if target is not None and moved is not None:
            set_committed_value(opportunity, "stage", target)
        body = self.to_schema(opportunity)
        await self._record(
            session, auth, "opportunity.updated", opportunity, body, changed=sorted(touched)
        )
        if moved is not None:
            await session.refresh(moved[0], ["changed_at", "seconds_in_previous_stage"])
            await self._record_move(session, auth, opportunity, body, moved[0], moved[1])
        return opportunity

    async def move_stage(
        self,
        session: AsyncSession,
        auth: AuthContext,
        opportunity_id: uuid.UUID,
        data: schemas.StageMove,
        *,
        if_match: str | None = None,
    ) -> tuple[Opportunity, OpportunityStageChange | None]:
        """Move the opportunity to another stage of its pipeline and record the move.

        The row is locked for the check-and-write: of two concurrent moves made against the
        same version (``If-Match``), one wins and the other is a 412. Moving to the stage it
        is already in changes nothing (no change is returned).

        Raises:
            OpportunityNotFound: no such opportunity in the caller's workspace.
            PreconditionFailed: ``if_match`` names an older version.
            ValidationFailed: a stage of another pipeline, or a lost stage without a reason.
        """
        opportunity = await self._locked(session, auth, opportunity_id)
        check_if_match(if_match, opportunity.version)
        target = await self._stage_of(session, auth, opportunity.pipeline_id, data.stage_id)
        if target.id == opportunity.stage_id:
            return opportunity, None
        check_loss_reason(target, data.loss_reason, field="loss_reason")
        from_status = opportunity.status
        change = await move(session, auth, opportunity, opportunity.stage, target, data.loss_reason)
        opportunity.updated_at = func.now()
        await session.flush()
        await session.refresh(opportunity, ["updated_at", "stage_entered_at", "closed_at"])
        await session.refresh(change, ["changed_at", "seconds_in_previous_stage"])
        set_committed_value(opportunity, "stage", target)
        body = self.to_schema(opportunity)
        await self._record_move(session, auth, opportunity, body, change, from_status)
        return opportunity, change

    async def move_out_of_stage(
        self,
        session: AsyncSession,
        auth: AuthContext,
        stage: PipelineStage,
        target: PipelineStage,
        loss_reason: str | None,
    ) -> int:
        """Move every opportunity of ``stage`` to ``target`` (same pipeline), each move
        recorded as if made one by one. Returns how many moved."""
        rows = (
            (
                await session.execute(
                    select(Opportunity)
                    .where(
                        Opportunity.workspace_id == auth.workspace_id,
                        Opportunity.stage_id == stage.id,
                    )
                    .options(
                        selectinload(Opportunity.competitors),
                        selectinload(Opportunity.external_ids),
                    )
                    .order_by(Opportunity.id)
                    .with_for_update(of=Opportunity)
                    .execution_options(populate_existing=True)
                )
            )
            .scalars()
            .all()
        )
        for opportunity in rows:
            from_status = opportunity.status
            change = await move(session, auth, opportunity, stage, target, loss_reason)
            opportunity.updated_at = func.now()
            await session.flush()
            await session.refresh(opportunity, ["updated_at", "stage_entered_at", "closed_at"])
            await session.refresh(change, ["changed_at", "seconds_in_previous_stage"])
            set_committed_value(opportunity, "stage", target)
            body = self.to_schema(opportunity)
            await self._record_move(session, auth, opportunity, body, change, from_status)
        return len(rows)

    async def delete(
        self,
        session: AsyncSession,
        auth: AuthContext,
        opportunity_id: uuid.UUID,
        *,
        if_match: str | None = None,
    ) -> None:
        """Delete an opportunity with its history and competitors.

        Raises:
            OpportunityNotFound: no such opportunity in the caller's workspace.
            PreconditionFailed: ``if_match`` names an older version.
        """
        repository = OpportunityRepository(session)
        opportunity = await self._locked(session, auth, opportunity_id)
        check_if_match(if_match, opportunity.version)
        await repository.delete(opportunity)
        session.expunge(opportunity)
        await outbox.record(
            session,
            workspace_id=auth.workspace_id,
            type="opportunity.deleted",
            aggregate_type="opportunity",
            aggregate_id=opportunity_id,
            data={"id": str(opportunity_id), "contact_id": _str(opportunity.contact_id)},
        )

    # -- output ------------------------------------------------------------------------------
    def to_schema(self, opportunity: Opportunity) -> schemas.Opportunity:
        stage = opportunity.stage
        currency = opportunity.currency
        return schemas.Opportunity(
            id=opportunity.id,
            name=opportunity.name,
            contact_id=opportunity.contact_id,
            account_id=opportunity.account_id,
            pipeline_id=opportunity.pipeline_id,
            stage_id=opportunity.stage_id,
            stage_name=stage.name,
            probability=stage.probability,
            status=opportunity.status,  # type: ignore[arg-type]
            amount=Money.from_minor_units(opportunity.amount_minor, currency),
            weighted_amount=Money.from_minor_units(
                weighted_minor(opportunity.amount_minor, stage.probability), currency
            ),
            expected_close_date=opportunity.expected_close_date,
            owner=opportunity.owner,
            source=opportunity.source,
            next_step=opportunity.next_step,
            loss_reason=opportunity.loss_reason,
            competitors=[
                schemas.Competitor(name=c.name, notes=c.notes, status=c.status)  # type: ignore[arg-type]
                for c in sorted(opportunity.competitors, key=lambda c: c.position)
            ],
            closed_at=opportunity.closed_at,
            stage_entered_at=opportunity.stage_entered_at,
            attributes=dict(opportunity.attributes),
            external_ids={
                x.system: x.value for x in sorted(opportunity.external_ids, key=lambda x: x.system)
            },
            created_at=opportunity.created_at,
            updated_at=opportunity.updated_at,
            version=opportunity.version,
        )

    @staticmethod
    def change_to_schema(change: OpportunityStageChange) -> schemas.StageChange:
        return schemas.StageChange.model_validate(change)

    # -- helpers -----------------------------------------------------------------------------
    async def _locked(
        self, session: AsyncSession, auth: AuthContext, opportunity_id: uuid.UUID
    ) -> Opportunity:
        found = await OpportunityRepository(session).get(
            auth.workspace_id, opportunity_id, for_update=True
        )
        if found is None:
            raise OpportunityNotFound()
        return found

    async def _today(self, session: AsyncSession, auth: AuthContext) -> date:
        tz = await PipelineRepository(session).workspace_timezone(auth.workspace_id)
        result = await session.execute(select(cast(func.timezone(tz, func.now()), Date)))
        today: date = result.scalar_one()
        return today

    async def _resolve_stage(
        self,
        session: AsyncSession,
        auth: AuthContext,
        pipeline_id: uuid.UUID | None,
        stage_id: uuid.UUID | None,
    ) -> tuple[Pipeline, PipelineStage]:
        repository = PipelineRepository(session)
        if pipeline_id is None:
            pipeline = await ensure_default(session, auth.workspace_id)
        else:
            found = await repository.get(auth.workspace_id, pipeline_id)
            if found is None:
                raise PipelineNotFound(
                    f"No pipeline {pipeline_id} in this workspace",
                    errors=[FieldError(field="pipeline_id", message="no such pipeline")],
                )
            pipeline = found
        stages = sorted(pipeline.stages, key=lambda stage: stage.position)
        if stage_id is None:
            return pipeline, next(stage for stage in stages if stage.type == "open")
        for stage in stages:
            if stage.id == stage_id:
                return pipeline, stage
        raise ValidationFailed(
            f"The stage is not a stage of the pipeline {pipeline.name!r}",
            errors=[FieldError(field="stage_id", message="not a stage of the pipeline")],
        )

    async def _stage_of(
        self,
        session: AsyncSession,
        auth: AuthContext,
        pipeline_id: uuid.UUID,
        stage_id: uuid.UUID,
    ) -> PipelineStage:
        stage = (await OpportunityRepository(session).stages(auth.workspace_id, [stage_id])).get(
            stage_id
        )
        if stage is None or stage.pipeline_id != pipeline_id:
            raise ValidationFailed(
                "The stage is not a stage of the opportunity's pipeline",
                errors=[FieldError(field="stage_id", message="not a stage of the pipeline")],
            )
        return stage

    async def _patched_stage(
        self,
        session: AsyncSession,
        auth: AuthContext,
        opportunity: Opportunity,
        changes: dict[str, Any],
    ) -> PipelineStage | None:
        pipeline_id = changes.get("pipeline_id", opportunity.pipeline_id)
        if "stage_id" not in changes:
            if pipeline_id != opportunity.pipeline_id:
                raise ValidationFailed(
                    "Moving to another pipeline needs a stage of it",
                    errors=[FieldError(field="stage_id", message="required with pipeline_id")],
                )
            return None
        if pipeline_id != opportunity.pipeline_id:
            found = await PipelineRepository(session).get(auth.workspace_id, pipeline_id)
            if found is None:
                raise PipelineNotFound(
                    f"No pipeline {pipeline_id} in this workspace",
                    errors=[FieldError(field="pipeline_id", message="no such pipeline")],
                )
        return await self._stage_of(session, auth, pipeline_id, changes["stage_id"])

    async def _check_parties(
        self,
        session: AsyncSession,
        auth: AuthContext,
        contact_id: uuid.UUID | None,
        account_id: uuid.UUID | None,
    ) -> None:
        if contact_id is not None:
            exists, merged_into = await OpportunityRepository(session).hold_contact(
                auth.workspace_id, contact_id
            )
            if not exists:
                raise ContactNotFound(
                    f"No contact {contact_id} in this workspace",
                    errors=[FieldError(field="contact_id", message="no such contact")],
                )
            if merged_into is not None:
                raise ContactMerged(merged_into)
        if account_id is not None and not await account_service.exists(session, auth, account_id):
            raise NotFound(
                f"No account {account_id} in this workspace",
                errors=[FieldError(field="account_id", message="no such account")],
            )

    @staticmethod
    def _set_competitors(
        opportunity: Opportunity, competitors: Sequence[schemas.CompetitorInput]
    ) -> None:
        opportunity.competitors = [
            OpportunityCompetitor(
                workspace_id=opportunity.workspace_id,
                opportunity_id=opportunity.id,
                position=position,
                name=item.name,
                notes=item.notes,
                status=item.status,
            )
            for position, item in enumerate(competitors)
        ]

    @staticmethod
    def _set_external_ids(opportunity: Opportunity, external_ids: dict[str, str]) -> None:
        opportunity.external_ids = [
            OpportunityExternalId(
                workspace_id=opportunity.workspace_id,
                opportunity_id=opportunity.id,
                system=system,
                value=value,
            )
            for system, value in sorted(external_ids.items())
        ]

    @staticmethod
    async def _check_external_ids_free(
        session: AsyncSession,
        auth: AuthContext,
        opportunity: Opportunity,
        external_ids: dict[str, str],
    ) -> None:
        pairs = sorted(external_ids.items())
        await lock_keys(
            session,
            auth.workspace_id,
            [f"opportunity_external_id:{system}:{value}" for system, value in pairs],
        )
        owners = await OpportunityRepository(session).external_id_owners(auth.workspace_id, pairs)
        for (system, value), owner in sorted(owners.items()):
            if owner != opportunity.id:
                raise DuplicateOpportunity(
                    f"An opportunity with {system} id {value!r} already exists",
                    field=f"external_ids.{system}",
                    existing_id=owner,
                )

    @staticmethod
    async def _record(
        session: AsyncSession,
        auth: AuthContext,
        type: str,
        opportunity: Opportunity,
        body: schemas.Opportunity | dict[str, Any],
        changed: Sequence[str] = (),
    ) -> None:
        await outbox.record(
            session,
            workspace_id=auth.workspace_id,
            type=type,
            aggregate_type="opportunity",
            aggregate_id=opportunity.id,
            data=body,
            changed_fields=changed,
        )

    async def _record_move(
        self,
        session: AsyncSession,
        auth: AuthContext,
        opportunity: Opportunity,
        body: schemas.Opportunity,
        change: OpportunityStageChange,
        from_status: str,
    ) -> None:
        data = {
            "opportunity": body.model_dump(mode="json"),
            "change": self.change_to_schema(change).model_dump(mode="json"),
        }
        await self._record(session, auth, "opportunity.stage_changed", opportunity, data)
        if opportunity.status != from_status and opportunity.status in ("won", "lost"):
            kind = f"opportunity.{opportunity.status}"
            await self._record(session, auth, kind, opportunity, body)


def _str(value: uuid.UUID | None) -> str | None:
    return str(value) if value is not None else None


opportunity = OpportunityService()
