"""The SLA clock of a case, computed from its policy, its calendar and its status history.

The clock runs from creation in business time and stops while the case is ``pending`` or
``resolved``. Due times are therefore ``add_business_minutes(created_at, target + paused)``,
where ``paused`` is the business time spent stopped so far. The paused time is kept on the case
(a cache) and can always be recomputed from the status history on any calendar, which is what
a policy change does: nothing paused is lost, even when the new policy has another calendar.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from app.case import schemas
from app.case.business_time import (
    Calendar,
    NoBusinessTime,
    add_business_minutes,
    business_minutes_between,
    calendar_from,
)
from app.models import BusinessCalendar, Case, CaseHistory, SlaPolicy

PAUSED_STATUSES = frozenset({"pending", "resolved", "closed"})


@dataclass(frozen=True)
class PolicyClock:
    policy: SlaPolicy
    calendar_row: BusinessCalendar
    calendar: Calendar


def clock_of(policy: SlaPolicy, calendar_row: BusinessCalendar) -> PolicyClock:
    return PolicyClock(
        policy=policy,
        calendar_row=calendar_row,
        calendar=to_calendar(calendar_row),
    )


def to_calendar(row: BusinessCalendar) -> Calendar:
    return calendar_from(row.time_zone, row.hours, row.holidays)


def _add(calendar: Calendar, start: datetime, minutes: float) -> datetime | None:
    try:
        return add_business_minutes(calendar, start, minutes)
    except NoBusinessTime:
        return None


def paused_minutes_from_history(
    calendar: Calendar, status_rows: Sequence[CaseHistory]
) -> tuple[float, datetime | None]:
    """Business minutes spent in paused statuses, and since when the case is paused now."""
    total = 0.0
    since: datetime | None = None
    for row in status_rows:
        paused = row.to_value in PAUSED_STATUSES
        if paused and since is None:
            since = row.at
        elif not paused and since is not None:
            total += business_minutes_between(calendar, since, row.at)
            since = None
    return total, since


def recompute(case: Case, clock: PolicyClock | None) -> None:
    """Due and warning times from the case's paused minutes; a target already reached keeps
    the due time it was reached against (so a later pause cannot turn a miss into a hit)."""
    if clock is None:
        case.first_response_due_at = case.first_response_warn_at = None
        case.resolution_due_at = case.resolution_warn_at = None
        case.next_response_due_at = None
        return
    policy, calendar = clock.policy, clock.calendar
    share = policy.warning_percent / 100
    start, paused = case.created_at, case.paused_minutes
    if case.first_response_at is None:
        case.first_response_due_at = _add(calendar, start, policy.first_response_minutes + paused)
        case.first_response_warn_at = _add(
            calendar, start, policy.first_response_minutes * share + paused
        )
    if case.resolved_at is None:
        case.resolution_due_at = _add(calendar, start, policy.resolution_minutes + paused)
        case.resolution_warn_at = _add(calendar, start, policy.resolution_minutes * share + paused)


def _target(
    clock: PolicyClock | None,
    due: datetime | None,
    completed: datetime | None,
    flagged: datetime | None,
    now: datetime,
    paused_since: datetime | None,
) -> schemas.SlaTarget:
    if clock is None or due is None:
        return schemas.SlaTarget(
            due_at=due, completed_at=completed, met=None, breached=False,
            remaining_business_minutes=None,
        )  # fmt: skip
    if completed is not None:
        met = completed <= due
        return schemas.SlaTarget(
            due_at=due, completed_at=completed, met=met, breached=not met,
            remaining_business_minutes=None,
        )  # fmt: skip
    at = paused_since if paused_since is not None else now
    remaining = business_minutes_between(clock.calendar, at, due)
    breached = flagged is not None or due <= at
    return schemas.SlaTarget(
        due_at=due,
        completed_at=None,
        met=False if breached else None,
        breached=breached,
        remaining_business_minutes=round(remaining, 2),
    )


def status_of(case: Case, clock: PolicyClock | None, now: datetime) -> schemas.SlaStatus:
    paused = case.status in PAUSED_STATUSES
    paused_since = case.paused_since if paused else None
    closed_at = case.resolved_at
    return schemas.SlaStatus(
        policy_id=case.sla_policy_id,
        calendar_id=clock.calendar_row.id if clock is not None else None,
        paused=paused,
        paused_business_minutes=round(case.paused_minutes, 2),
        first_response=_target(
            clock,
            case.first_response_due_at,
            case.first_response_at,
            case.first_response_breached_at,
            now,
            paused_since,
        ),
        next_response=_target(clock, case.next_response_due_at, None, None, now, paused_since),
        resolution=_target(
            clock,
            case.resolution_due_at,
            closed_at,
            case.resolution_breached_at,
            now,
            paused_since,
        ),
    )


def choose_policy(
    policies: Sequence[SlaPolicy], category: str | None, account_type: str | None
) -> SlaPolicy | None:
    """The most specific active policy whose narrowing fits the case (oldest on a tie)."""
    fitting = [
        policy
        for policy in policies
        if (policy.category is None or policy.category == category)
        and (policy.account_type is None or policy.account_type == account_type)
    ]
    if not fitting:
        return None
    return max(
        fitting,
        key=lambda policy: (
            (policy.category is not None) + (policy.account_type is not None),
            -fitting.index(policy),
        ),
    )
