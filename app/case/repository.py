from __future__ import annotations

import functools
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Select, delete, func, literal_column, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from app.db.pairs import pair_owners
from app.db.params import in_texts, newest_per_contact
from app.kit.pagination import Keyset
from app.models import (
    BusinessCalendar,
    Case,
    CaseComment,
    CaseCounter,
    CaseExternalId,
    CaseHistory,
    CaseQueue,
    CaseRoutingRule,
    Contact,
    SlaPolicy,
)

SetupModel = TypeVar("SetupModel", BusinessCalendar, SlaPolicy, CaseQueue, CaseRoutingRule)


@dataclass(frozen=True)
class CaseFilters:
    contact_id: uuid.UUID | None = None
    statuses: Sequence[str] = ()
    priorities: Sequence[str] = ()
    queue_id: uuid.UUID | None = None
    assignee: str | None = None
    category: str | None = None
    channel: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    # True: cases whose first response or resolution target is missed (by the sweep's flags
    # or by a due time already past).
    breached: bool | None = None


OPEN_STATUSES = ("new", "open", "pending")
_REPORT_KEYS = {
    "queue": ("c.queue_id::text", "q.name"),
    "priority": ("c.priority", "NULL::text"),
    "category": ("c.category", "NULL::text"),
    "assignee": ("c.assignee", "NULL::text"),
}


def _with_ids(statement: Select[Any]) -> Select[Any]:
    return statement.options(selectinload(Case.external_ids))


class CaseRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # -- setup records (calendars, policies, queues, rules) ----------------------------------
    async def get_setup(
        self,
        model: type[SetupModel],
        workspace_id: uuid.UUID,
        record_id: uuid.UUID,
        *,
        for_update: bool = False,
    ) -> SetupModel | None:
        statement = select(model).where(model.workspace_id == workspace_id, model.id == record_id)
        if for_update:
            statement = statement.with_for_update().execution_options(populate_existing=True)
        found: SetupModel | None = (await self.session.execute(statement)).scalars().one_or_none()
        return found

    async def get_setups(
        self, model: type[SetupModel], workspace_id: uuid.UUID, ids: Iterable[uuid.UUID]
    ) -> list[SetupModel]:
        wanted = list(set(ids))
        if not wanted:
            return []
        statement = select(model).where(model.workspace_id == workspace_id, model.id.in_(wanted))
        return list((await self.session.execute(statement)).scalars().all())

    async def list_setup(
        self, model: type[SetupModel], workspace_id: uuid.UUID, keyset: Keyset
    ) -> list[SetupModel]:
        statement = keyset.apply(select(model).where(model.workspace_id == workspace_id))
        return list((await self.session.execute(statement)).scalars().all())

    async def by_name(
        self, model: type[SetupModel], workspace_id: uuid.UUID, name: str
    ) -> uuid.UUID | None:
        result = await self.session.execute(
            select(model.id).where(model.workspace_id == workspace_id, model.name == name)
        )
        return result.scalar_one_or_none()

    async def active_rules(self, workspace_id: uuid.UUID) -> list[CaseRoutingRule]:
        statement = (
            select(CaseRoutingRule)
            .where(CaseRoutingRule.workspace_id == workspace_id, CaseRoutingRule.active)
            .order_by(CaseRoutingRule.position, CaseRoutingRule.id)
        )
        return list((await self.session.execute(statement)).scalars().all())

    async def policies_for(self, workspace_id: uuid.UUID, priority: str) -> list[SlaPolicy]:
        statement = (
            select(SlaPolicy)
            .where(
                SlaPolicy.workspace_id == workspace_id,
                SlaPolicy.priority == priority,
                SlaPolicy.active,
            )
            .order_by(SlaPolicy.created_at, SlaPolicy.id)
        )
        return list((await self.session.execute(statement)).scalars().all())

    async def policies_with_calendars(
        self, workspace_id: uuid.UUID, policy_ids: Iterable[uuid.UUID]
    ) -> list[tuple[SlaPolicy, BusinessCalendar]]:
        wanted = list(set(policy_ids))
        if not wanted:
            return []
        statement = (
            select(SlaPolicy, BusinessCalendar)
            .join(
                BusinessCalendar,
                (BusinessCalendar.workspace_id == SlaPolicy.workspace_id)
                & (BusinessCalendar.id == SlaPolicy.calendar_id),
            )
            .where(SlaPolicy.workspace_id == workspace_id, SlaPolicy.id.in_(wanted))
        )
        return [(row[0], row[1]) for row in await self.session.execute(statement)]

    async def policy_ids_on_calendar(
        self, workspace_id: uuid.UUID, calendar_id: uuid.UUID
    ) -> list[uuid.UUID]:
        result = await self.session.execute(
            select(SlaPolicy.id).where(
                SlaPolicy.workspace_id == workspace_id, SlaPolicy.calendar_id == calendar_id
            )
        )
        return list(result.scalars())

    async def is_referenced(self, column: Any, workspace_id: uuid.UUID, value: uuid.UUID) -> bool:
        table = column.class_
        statement: Select[Any] = select(literal_column("1")).where(
            table.workspace_id == workspace_id, column == value
        )
        return (await self.session.execute(statement.limit(1))).first() is not None

    async def cases_of_policy(
        self, workspace_id: uuid.UUID, policy_ids: Sequence[uuid.UUID]
    ) -> list[Case]:
        """Unfinished cases on these policies, locked: their due times are recomputed."""
        statement = (
            _with_ids(
                select(Case).where(
                    Case.workspace_id == workspace_id,
                    Case.sla_policy_id.in_(list(policy_ids)),
                    Case.status.in_(OPEN_STATUSES),
                )
            )
            .order_by(Case.id)
            .with_for_update(of=Case)
            .execution_options(populate_existing=True)
        )
        return list((await self.session.execute(statement)).scalars().all())

    async def take_round_robin(self, workspace_id: uuid.UUID, queue_id: uuid.UUID) -> str | None:
        """The queue's next member, advancing the pointer under the queue row's lock."""
        result = await self.session.execute(
            text(
                "UPDATE case_queues SET next_member = next_member + 1 "
                "WHERE workspace_id = :workspace_id AND id = :queue_id "
                "AND cardinality(members) > 0 "
                "RETURNING members[1 + (next_member - 1) % cardinality(members)]"
            ),
            {"workspace_id": workspace_id, "queue_id": queue_id},
        )
        member: str | None = result.scalar_one_or_none()
        return member

    # -- contacts ----------------------------------------------------------------------------
    async def hold_contact(
        self, workspace_id: uuid.UUID, contact_id: uuid.UUID
    ) -> tuple[bool, uuid.UUID | None]:
        """Whether the contact exists and whom it was merged into; held FOR KEY SHARE, so a
        concurrent merge waits and then re-points the new case with the others."""
        result = await self.session.execute(
            select(Contact.merged_into_id)
            .where(Contact.workspace_id == workspace_id, Contact.id == contact_id)
            .with_for_update(read=True, key_share=True)
        )
        row = result.one_or_none()
        if row is None:
            return False, None
        return True, row.merged_into_id

    # -- cases -------------------------------------------------------------------------------
    async def next_number(self, workspace_id: uuid.UUID) -> int:
        statement = (
            insert(CaseCounter)
            .values(workspace_id=workspace_id, last_number=1)
            .on_conflict_do_update(
                index_elements=[CaseCounter.workspace_id],
                set_={"last_number": CaseCounter.last_number + 1},
            )
            .returning(CaseCounter.last_number)
        )
        return int((await self.session.execute(statement)).scalar_one())

    async def get(
        self, workspace_id: uuid.UUID, case_id: uuid.UUID, *, for_update: bool = False
    ) -> Case | None:
        statement = _with_ids(
            select(Case).where(Case.workspace_id == workspace_id, Case.id == case_id)
        )
        if for_update:
            statement = statement.with_for_update(of=Case).execution_options(populate_existing=True)
        found: Case | None = (await self.session.execute(statement)).scalars().one_or_none()
        return found

    async def get_many(self, workspace_id: uuid.UUID, ids: Iterable[uuid.UUID]) -> list[Case]:
        statement = _with_ids(
            select(Case).where(Case.workspace_id == workspace_id, Case.id.in_(list(ids)))
        )
        return list((await self.session.execute(statement)).scalars().all())

    async def by_number(self, workspace_id: uuid.UUID, number: int) -> uuid.UUID | None:
        result = await self.session.execute(
            select(Case.id).where(Case.workspace_id == workspace_id, Case.number == number)
        )
        return result.scalar_one_or_none()

    async def existing_ids(
        self, workspace_id: uuid.UUID, ids: Iterable[uuid.UUID]
    ) -> set[uuid.UUID]:
        result = await self.session.execute(
            select(Case.id).where(Case.workspace_id == workspace_id, Case.id.in_(list(ids)))
        )
        return set(result.scalars())

    def _filtered(self, workspace_id: uuid.UUID, filters: CaseFilters) -> Select[Any]:
        statement = select(Case).where(Case.workspace_id == workspace_id)
        if filters.contact_id is not None:
            statement = statement.where(Case.contact_id == filters.contact_id)
        if filters.statuses:
            statement = statement.where(Case.status.in_(list(filters.statuses)))
        if filters.priorities:
            statement = statement.where(Case.priority.in_(list(filters.priorities)))
        if filters.queue_id is not None:
            statement = statement.where(Case.queue_id == filters.queue_id)
        if filters.assignee is not None:
            statement = statement.where(Case.assignee == filters.assignee)
        if filters.category is not None:
            statement = statement.where(Case.category == filters.category)
        if filters.channel is not None:
            statement = statement.where(Case.channel == filters.channel)
        if filters.created_after is not None:
            statement = statement.where(Case.created_at >= filters.created_after)
        if filters.created_before is not None:
            statement = statement.where(Case.created_at < filters.created_before)
        if filters.breached is not None:
            missed = (
                Case.first_response_breached_at.is_not(None)
                | Case.resolution_breached_at.is_not(None)
                | (Case.first_response_at > Case.first_response_due_at)
                | (Case.resolved_at > Case.resolution_due_at)
            )
            statement = statement.where(
                missed if filters.breached else ~func.coalesce(missed, False)
            )
        return statement

    async def find(
        self, workspace_id: uuid.UUID, filters: CaseFilters, keyset: Keyset
    ) -> list[Case]:
        statement = _with_ids(keyset.apply(self._filtered(workspace_id, filters)))
        return list((await self.session.execute(statement)).scalars().all())

    async def recent_for_contacts(
        self,
        workspace_id: uuid.UUID,
        contact_ids: Sequence[uuid.UUID],
        per_contact: int,
        statuses: Sequence[str],
    ) -> list[Case]:
        """Each contact's newest ``per_contact`` cases in ``statuses``: one statement."""
        result = await self.session.execute(
            _recent_for_contacts(),
            {"workspace_id": workspace_id, "contact_ids": list(contact_ids),
             "per_contact": per_contact, "statuses": list(statuses)},
        )  # fmt: skip
        return list(result.scalars().all())

    async def count_open(self, workspace_id: uuid.UUID, contact_id: uuid.UUID) -> int:
        result = await self.session.execute(
            select(func.count()).where(
                Case.workspace_id == workspace_id,
                Case.contact_id == contact_id,
                Case.status.in_(OPEN_STATUSES),
            )
        )
        return int(result.scalar_one())

    async def delete(self, case: Case) -> None:
        await self.session.execute(
            delete(Case).where(Case.workspace_id == case.workspace_id, Case.id == case.id)
        )

    # -- external ids ------------------------------------------------------------------------
    async def by_external_id(
        self, workspace_id: uuid.UUID, system: str, value: str
    ) -> uuid.UUID | None:
        result = await self.session.execute(
            select(CaseExternalId.case_id).where(
                CaseExternalId.workspace_id == workspace_id,
                CaseExternalId.system == system,
                CaseExternalId.value == value,
            )
        )
        return result.scalar_one_or_none()

    async def external_id_owners(
        self, workspace_id: uuid.UUID, pairs: Iterable[tuple[str, str]]
    ) -> dict[tuple[str, str], uuid.UUID]:
        return await pair_owners(
            self.session, CaseExternalId.__table__, "case_id", workspace_id, pairs
        )

    # -- comments and history ----------------------------------------------------------------
    async def comments(
        self, workspace_id: uuid.UUID, case_id: uuid.UUID, keyset: Keyset, public: bool | None
    ) -> list[CaseComment]:
        statement = select(CaseComment).where(
            CaseComment.workspace_id == workspace_id, CaseComment.case_id == case_id
        )
        if public is not None:
            statement = statement.where(CaseComment.public == public)
        return list((await self.session.execute(keyset.apply(statement))).scalars().all())

    async def comments_of_many(
        self, workspace_id: uuid.UUID, case_ids: Sequence[uuid.UUID]
    ) -> list[CaseComment]:
        statement = (
            select(CaseComment)
            .where(CaseComment.workspace_id == workspace_id, CaseComment.case_id.in_(case_ids))
            .order_by(CaseComment.case_id, CaseComment.created_at, CaseComment.id)
        )
        return list((await self.session.execute(statement)).scalars().all())

    async def history(
        self, workspace_id: uuid.UUID, case_ids: Sequence[uuid.UUID], field: str | None = None
    ) -> list[CaseHistory]:
        statement = select(CaseHistory).where(
            CaseHistory.workspace_id == workspace_id, CaseHistory.case_id.in_(list(case_ids))
        )
        if field is not None:
            statement = statement.where(CaseHistory.field == field)
        statement = statement.order_by(CaseHistory.case_id, CaseHistory.at, CaseHistory.id)
        return list((await self.session.execute(statement)).scalars().all())

    async def history_with_cases(
        self, workspace_id: uuid.UUID, history_ids: Sequence[uuid.UUID]
    ) -> list[tuple[CaseHistory, Case]]:
        statement = (
            select(CaseHistory, Case)
            .join(
                Case,
                (Case.workspace_id == CaseHistory.workspace_id) & (Case.id == CaseHistory.case_id),
            )
            .where(CaseHistory.workspace_id == workspace_id, CaseHistory.id.in_(list(history_ids)))
        )
        return [(row[0], row[1]) for row in await self.session.execute(statement)]

    async def clock(self) -> datetime:
        """The database clock now (distinct for each call, unlike ``now()``)."""
        value: datetime = (await self.session.execute(select(func.clock_timestamp()))).scalar_one()
        return value

    # -- reporting ---------------------------------------------------------------------------
    async def report(
        self, workspace_id: uuid.UUID, start: datetime, end: datetime, group_by: str
    ) -> list[Any]:
        """One row per group and a total row (``is_total``), by GROUPING SETS."""
        key, label = _REPORT_KEYS[group_by]
        statement = text(
            f"""
            WITH base AS (
              SELECT c.*, {key} AS key, {label} AS label,
                extract(epoch FROM c.first_response_at - c.created_at) AS fr,
                extract(epoch FROM c.resolved_at - c.created_at) AS res,
                CASE WHEN c.status IN ('new', 'open', 'pending') THEN
                  greatest(0, extract(epoch FROM least(CAST(:end AS timestamptz), now())
                                                 - c.created_at)) END AS age
              FROM cases c
              LEFT JOIN case_queues q ON q.workspace_id = c.workspace_id AND q.id = c.queue_id
              WHERE c.workspace_id = :workspace_id
                AND c.created_at >= :start AND c.created_at < :end
            )
            SELECT key, label, grouping(key, label) = 3 AS is_total,
              count(*) AS created,
              count(*) FILTER (WHERE status IN ('resolved', 'closed')) AS resolved,
              count(*) FILTER (WHERE status IN ('new', 'open', 'pending')) AS backlog,
              percentile_cont(0.5) WITHIN GROUP (ORDER BY fr) AS fr_p50,
              percentile_cont(0.9) WITHIN GROUP (ORDER BY fr) AS fr_p90,
              percentile_cont(0.5) WITHIN GROUP (ORDER BY res) AS res_p50,
              percentile_cont(0.9) WITHIN GROUP (ORDER BY res) AS res_p90,
              count(*) FILTER (WHERE sla_policy_id IS NOT NULL
                               AND status IN ('resolved', 'closed')) AS sla_evaluated,
              count(*) FILTER (WHERE sla_policy_id IS NOT NULL
                               AND status IN ('resolved', 'closed')
                               AND first_response_at <= first_response_due_at
                               AND resolved_at <= resolution_due_at) AS sla_met,
              percentile_cont(0.5) WITHIN GROUP (ORDER BY age) AS age_p50,
              max(age) AS age_max
            FROM base
            GROUP BY GROUPING SETS ((key, label), ())
            ORDER BY is_total, key NULLS LAST
            """
        )
        result = await self.session.execute(
            statement, {"workspace_id": workspace_id, "start": start, "end": end}
        )
        return list(result)

    # -- SLA sweep ---------------------------------------------------------------------------
    async def mark_sla_events(
        self, workspace_id: uuid.UUID, stamp: str, due_column: str, limit: int
    ) -> list[tuple[uuid.UUID, datetime]]:
        """Set ``stamp`` on running cases whose ``due_column`` has passed, once: the WHERE
        clause only takes rows whose stamp is still null, so two sweeps never both take one."""
        done_column = "first_response_at" if due_column.startswith("first_response") else None
        pending = f"AND {done_column} IS NULL" if done_column else ""
        statement = text(
            f"UPDATE cases SET {stamp} = clock_timestamp() "
            f"WHERE (workspace_id, id) IN ("
            f"  SELECT workspace_id, id FROM cases WHERE workspace_id = :workspace_id "
            f"  AND sla_policy_id IS NOT NULL AND status IN ('new', 'open') "
            f"  AND {stamp} IS NULL AND {due_column} <= clock_timestamp() {pending} "
            f"  ORDER BY {due_column}, id LIMIT :limit FOR UPDATE SKIP LOCKED"
            f") AND {stamp} IS NULL "
            f"RETURNING id, {due_column}"
        )
        result = await self.session.execute(
            statement, {"workspace_id": workspace_id, "limit": limit}
        )
        return [(row[0], row[1]) for row in result]

    async def resolved_past_window(
        self, workspace_id: uuid.UUID, default_hours: float, limit: int
    ) -> list[Case]:
        """Resolved cases whose reopen window has passed, locked (others' locks skipped)."""
        window = func.coalesce(SlaPolicy.reopen_window_hours, default_hours)
        statement = (
            _with_ids(
                select(Case)
                .outerjoin(
                    SlaPolicy,
                    (SlaPolicy.workspace_id == Case.workspace_id)
                    & (SlaPolicy.id == Case.sla_policy_id),
                )
                .where(
                    Case.workspace_id == workspace_id,
                    Case.status == "resolved",
                    Case.resolved_at + window * text("interval '1 hour'") < func.clock_timestamp(),
                )
            )
            .order_by(Case.resolved_at, Case.id)
            .limit(limit)
            .with_for_update(of=Case, skip_locked=True)
            .execution_options(populate_existing=True)
        )
        return list((await self.session.execute(statement)).scalars().all())


@functools.cache
def _recent_for_contacts() -> Select[Any]:
    """Built once with bound parameters (app.db.params): the 360 view reads it."""
    return _with_ids(newest_per_contact(Case, Case.created_at, in_texts(Case.status, "statuses")))
