"""What cases are handled with: business calendars, SLA policies, queues and routing rules."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.dependencies import AuthContext
from app.case import schemas
from app.case.exceptions import (
    CalendarNotFound,
    DuplicateName,
    InUse,
    QueueNotFound,
    RoutingRuleNotFound,
    SlaPolicyNotFound,
)
from app.case.repository import CaseRepository, SetupModel
from app.case.service import case as case_service
from app.events import outbox
from app.kit.errors import FieldError, NotFound, ValidationFailed
from app.kit.etag import check_if_match
from app.kit.ids import uuid7
from app.kit.pagination import Keyset, Sort, SortField, parse_datetime, parse_sort
from app.models import BusinessCalendar, Case, CaseQueue, CaseRoutingRule, SlaPolicy

_MISSING: dict[type[Any], type[NotFound]] = {
    BusinessCalendar: CalendarNotFound,
    SlaPolicy: SlaPolicyNotFound,
    CaseQueue: QueueNotFound,
    CaseRoutingRule: RoutingRuleNotFound,
}
_WHAT = {
    BusinessCalendar: "business calendar",
    SlaPolicy: "SLA policy",
    CaseQueue: "queue",
    CaseRoutingRule: "routing rule",
}
_EVENT = {
    BusinessCalendar: "business_calendar",
    SlaPolicy: "sla_policy",
    CaseQueue: "case_queue",
    CaseRoutingRule: "case_routing_rule",
}


def _sorts(model: type[Any]) -> dict[str, SortField]:
    sorts = {"created_at": SortField(model.created_at, parse_datetime)}
    if model is CaseRoutingRule:
        sorts["position"] = SortField(CaseRoutingRule.position, int)
    return sorts


def calendar_schema(row: BusinessCalendar) -> schemas.Calendar:
    return schemas.Calendar(
        id=row.id,
        name=row.name,
        time_zone=row.time_zone,
        hours={day: [(start, end) for start, end in spans] for day, spans in row.hours.items()},
        holidays=sorted(row.holidays),  # type: ignore[arg-type]
        created_at=row.created_at,
        updated_at=row.updated_at,
        version=row.version,
    )


def policy_schema(row: SlaPolicy) -> schemas.SlaPolicy:
    return schemas.SlaPolicy.model_validate(row)


def queue_schema(row: CaseQueue) -> schemas.Queue:
    return schemas.Queue(
        id=row.id,
        name=row.name,
        description=row.description,
        members=list(row.members),
        created_at=row.created_at,
        updated_at=row.updated_at,
        version=row.version,
    )


def rule_schema(row: CaseRoutingRule) -> schemas.RoutingRule:
    return schemas.RoutingRule.model_validate(row)


def to_schema(row: Any) -> Any:
    if isinstance(row, BusinessCalendar):
        return calendar_schema(row)
    if isinstance(row, SlaPolicy):
        return policy_schema(row)
    if isinstance(row, CaseQueue):
        return queue_schema(row)
    return rule_schema(row)


def _columns(model: type[Any], values: dict[str, Any]) -> dict[str, Any]:
    if model is BusinessCalendar:
        if "hours" in values:
            values["hours"] = {
                day: [list(span) for span in spans] for day, spans in values["hours"].items()
            }
        if "holidays" in values:
            values["holidays"] = sorted(day.isoformat() for day in values["holidays"])
    return values


class SetupService:
    """Create, read, change and delete the four kinds of records, with one set of rules."""

    async def get(
        self,
        session: AsyncSession,
        auth: AuthContext,
        model: type[SetupModel],
        record_id: uuid.UUID,
    ) -> SetupModel:
        found = await CaseRepository(session).get_setup(model, auth.workspace_id, record_id)
        if found is None:
            raise _MISSING[model]()
        return found

    async def find(
        self,
        session: AsyncSession,
        auth: AuthContext,
        model: type[SetupModel],
        *,
        limit: int,
        cursor: str | None,
        sort: str | None,
    ) -> tuple[list[SetupModel], str | None]:
        sorts = _sorts(model)
        default = "position" if model is CaseRoutingRule else "created_at"
        keyset = Keyset.build(
            sort=parse_sort(sort, sorts, default) if sort else Sort(default, False),
            allowed=sorts,
            id_column=model.id,
            limit=limit,
            cursor=cursor,
        )
        rows = await CaseRepository(session).list_setup(model, auth.workspace_id, keyset)
        column = keyset.field.column.key
        return keyset.page(rows, lambda row: (getattr(row, column), row.id))

    async def create(
        self, session: AsyncSession, auth: AuthContext, model: type[SetupModel], data: Any
    ) -> SetupModel:
        """Raises: DuplicateName; ValidationFailed for a reference that does not exist."""
        values = _columns(model, data.model_dump())
        await self._check(session, auth, model, values, None)
        record = model(workspace_id=auth.workspace_id, id=uuid7(), **values)
        session.add(record)
        await session.flush()
        await session.refresh(record)
        await self._event(session, auth, record, "created")
        return record

    async def update(
        self,
        session: AsyncSession,
        auth: AuthContext,
        model: type[SetupModel],
        record_id: uuid.UUID,
        patch: Any,
        *,
        if_match: str | None,
    ) -> SetupModel:
        """Apply a merge patch. A changed calendar or policy recomputes the due times of the
        unfinished cases on it (keeping their paused time).

        Raises: not found, PreconditionFailed, DuplicateName, ValidationFailed.
        """
        repository = CaseRepository(session)
        record = await repository.get_setup(model, auth.workspace_id, record_id, for_update=True)
        if record is None:
            raise _MISSING[model]()
        check_if_match(if_match, record.version)
        changes = _columns(model, patch.changes())
        merged = {**{key: getattr(record, key) for key in changes}, **changes}
        if model is CaseRoutingRule and {"assign_mode", "assignee"} & changes.keys():
            mode = changes.get("assign_mode", record.assign_mode)  # type: ignore[attr-defined]
            assignee = changes.get("assignee", record.assignee)  # type: ignore[attr-defined]
            if mode != "fixed" and "assignee" not in changes:
                assignee = merged["assignee"] = None
            try:
                schemas._fixed_needs_assignee(mode, assignee)
            except ValueError as error:
                raise ValidationFailed(
                    str(error), errors=[FieldError(field="assignee", message=str(error))]
                ) from None
        await self._check(session, auth, model, merged, record.id)
        changed = [key for key, value in merged.items() if getattr(record, key) != value]
        if not changed:
            return record
        for key in changed:
            setattr(record, key, merged[key])
        record.updated_at = func.now()
        await session.flush()
        await session.refresh(record)
        await self._event(session, auth, record, "updated", changed)
        if isinstance(record, (BusinessCalendar, SlaPolicy)):
            await case_service.recompute_for(session, auth, record)
        return record

    async def delete(
        self,
        session: AsyncSession,
        auth: AuthContext,
        model: type[SetupModel],
        record_id: uuid.UUID,
        *,
        if_match: str | None,
    ) -> None:
        """Raises: not found, PreconditionFailed, InUse (a calendar with policies, a policy
        with cases: deactivate a policy instead)."""
        repository = CaseRepository(session)
        record = await repository.get_setup(model, auth.workspace_id, record_id, for_update=True)
        if record is None:
            raise _MISSING[model]()
        check_if_match(if_match, record.version)
        if model is BusinessCalendar and await repository.is_referenced(
            SlaPolicy.calendar_id, auth.workspace_id, record_id
        ):
            raise InUse("SLA policies use this calendar; move them to another one first")
        if model is SlaPolicy and await repository.is_referenced(
            Case.sla_policy_id, auth.workspace_id, record_id
        ):
            raise InUse("Cases use this policy; set `active: false` to stop applying it")
        await session.delete(record)
        await session.flush()
        await outbox.record(
            session,
            workspace_id=auth.workspace_id,
            type=f"{_EVENT[model]}.deleted",
            aggregate_type=_EVENT[model],
            aggregate_id=record_id,
            data={"id": str(record_id)},
        )

    async def _check(
        self,
        session: AsyncSession,
        auth: AuthContext,
        model: type[Any],
        values: dict[str, Any],
        record_id: uuid.UUID | None,
    ) -> None:
        repository = CaseRepository(session)
        if "name" in values:
            owner = await repository.by_name(model, auth.workspace_id, values["name"])
            if owner is not None and owner != record_id:
                raise DuplicateName(_WHAT[model], values["name"], owner)
        for name, target in (("calendar_id", BusinessCalendar), ("queue_id", CaseQueue)):
            if model in (SlaPolicy, CaseRoutingRule) and values.get(name) is not None:
                found: Any = await repository.get_setup(
                    target,
                    auth.workspace_id,
                    values[name],
                )
                if found is None:
                    raise ValidationFailed(
                        f"No {_WHAT[target]} {values[name]} in this workspace",
                        errors=[FieldError(field=name, message=f"no such {_WHAT[target]}")],
                    )

    async def _event(
        self,
        session: AsyncSession,
        auth: AuthContext,
        record: Any,
        what: str,
        changed: list[str] | None = None,
    ) -> None:
        kind = _EVENT[type(record)]
        await outbox.record(
            session,
            workspace_id=auth.workspace_id,
            type=f"{kind}.{what}",
            aggregate_type=kind,
            aggregate_id=record.id,
            data=to_schema(record),
            changed_fields=changed or (),
        )


setup = SetupService()
