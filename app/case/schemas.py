from __future__ import annotations

import itertools
import re
import uuid
from datetime import date
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, StringConstraints, field_validator, model_validator

from app.interaction.schemas import Channel
from app.kit.schemas import InputSchema, PatchSchema, Schema, UTCDateTime
from app.kit.validators import Attributes, ExternalIds, ExternalIdValue, SystemName, TimeZone

CaseStatus = Literal["new", "open", "pending", "resolved", "closed"]
Priority = Literal["low", "normal", "high", "urgent"]
PendingReason = Literal["waiting_on_customer", "waiting_on_third_party"]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
AccountType = Literal["customer", "prospect", "partner", "distributor", "retailer", "supplier"]
LifecycleStage = Literal["lead", "prospect", "customer", "advocate", "ambassador", "churned"]
AssignMode = Literal["none", "fixed", "round_robin"]
ReportGroup = Literal["queue", "priority", "category", "assignee"]

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Subject = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
Description = Annotated[str, StringConstraints(min_length=1, max_length=65_536)]
CommentBody = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=16_000)
]
Category = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Agent = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Keyword = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Note = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
# A year of business minutes is far beyond any help desk's target; larger is a unit mistake.
Minutes = Annotated[int, Field(gt=0, le=525_600, strict=True)]

_CLOCK = re.compile(r"^(?:[01]\d|2[0-3]):[0-5]\d$|^24:00$")


def _clock(value: str) -> str:
    if not _CLOCK.match(value):
        raise ValueError("expected a local time HH:MM, 00:00 to 24:00")
    return value


Clock = Annotated[str, AfterValidator(_clock)]


def _minutes_of(value: str) -> int:
    hours, minutes = value.split(":")
    return int(hours) * 60 + int(minutes)


def _intervals(value: list[tuple[Clock, Clock]]) -> list[tuple[Clock, Clock]]:
    ordered = sorted(value, key=lambda pair: _minutes_of(pair[0]))
    for start, end in ordered:
        if _minutes_of(end) <= _minutes_of(start):
            raise ValueError(f"interval {start}-{end} must end after it starts")
    for (_, first_end), (second_start, _second_end) in itertools.pairwise(ordered):
        if _minutes_of(second_start) < _minutes_of(first_end):
            raise ValueError(
                f"intervals overlap: one ends {first_end}, the next starts {second_start}"
            )
    return ordered


DayIntervals = Annotated[
    list[tuple[Clock, Clock]], Field(max_length=12), AfterValidator(_intervals)
]
Hours = dict[Weekday, DayIntervals]
Holidays = Annotated[list[date], Field(max_length=1000)]


def _unique(values: list[Any]) -> list[Any]:
    return list(dict.fromkeys(values))


# -- calendars -------------------------------------------------------------------------------


class CalendarCreate(InputSchema):
    """Working hours per weekday, in the calendar's time zone; weekdays left out are days off."""

    name: Name
    time_zone: TimeZone = Field(description="IANA zone, e.g. `Asia/Bangkok`.")
    hours: Hours = Field(
        description='Per weekday, disjoint intervals of local time, e.g. `{"mon": [["08:30", '
        '"12:00"], ["13:00", "17:30"]]}`; `24:00` ends a day at midnight.'
    )
    holidays: Annotated[Holidays, AfterValidator(_unique)] = Field(
        default_factory=list, description="Local dates without working time."
    )

    @field_validator("hours")
    @classmethod
    def _some_hours(cls, hours: dict[str, Any]) -> dict[str, Any]:
        if not any(hours.values()):
            raise ValueError("at least one weekday needs working hours")
        return hours


class CalendarUpdate(PatchSchema):
    not_nullable = frozenset({"name", "time_zone", "hours", "holidays"})

    name: Name | None = None
    time_zone: TimeZone | None = None
    hours: Hours | None = None
    holidays: Annotated[Holidays, AfterValidator(_unique)] | None = None

    @field_validator("hours")
    @classmethod
    def _some_hours(cls, hours: dict[str, Any] | None) -> dict[str, Any] | None:
        if hours is not None and not any(hours.values()):
            raise ValueError("at least one weekday needs working hours")
        return hours


class Calendar(Schema):
    id: uuid.UUID
    name: str
    time_zone: str
    hours: dict[str, list[tuple[str, str]]]
    holidays: list[date]
    created_at: UTCDateTime
    updated_at: UTCDateTime
    version: int


# -- SLA policies ----------------------------------------------------------------------------


class SlaPolicyCreate(InputSchema):
    """Targets in business minutes on a calendar for cases of one priority.

    The most specific active policy applies: one naming the case's category and account type
    wins over one naming only one of them, which wins over one naming neither.
    """

    name: Name
    priority: Priority
    category: Category | None = None
    account_type: AccountType | None = None
    calendar_id: uuid.UUID
    first_response_minutes: Minutes
    next_response_minutes: Minutes | None = None
    resolution_minutes: Minutes
    warning_percent: int = Field(
        default=80, ge=1, le=99, strict=True,
        description="`case.sla_warning` is emitted when this share of a target has elapsed.",
    )  # fmt: skip
    reopen_window_hours: int = Field(
        default=168, ge=0, le=8760, strict=True,
        description="How long a resolved case may be reopened (wall-clock hours).",
    )  # fmt: skip
    active: bool = True


class SlaPolicyUpdate(PatchSchema):
    not_nullable = frozenset({
        "name", "priority", "calendar_id", "first_response_minutes", "resolution_minutes",
        "warning_percent", "reopen_window_hours", "active",
    })  # fmt: skip

    name: Name | None = None
    priority: Priority | None = None
    category: Category | None = None
    account_type: AccountType | None = None
    calendar_id: uuid.UUID | None = None
    first_response_minutes: Minutes | None = None
    next_response_minutes: Minutes | None = None
    resolution_minutes: Minutes | None = None
    warning_percent: int | None = Field(default=None, ge=1, le=99, strict=True)
    reopen_window_hours: int | None = Field(default=None, ge=0, le=8760, strict=True)
    active: bool | None = None


class SlaPolicy(Schema):
    id: uuid.UUID
    name: str
    priority: Priority
    category: str | None
    account_type: str | None
    calendar_id: uuid.UUID
    first_response_minutes: int
    next_response_minutes: int | None
    resolution_minutes: int
    warning_percent: int
    reopen_window_hours: int
    active: bool
    created_at: UTCDateTime
    updated_at: UTCDateTime
    version: int


# -- queues and routing ----------------------------------------------------------------------


Members = Annotated[list[Agent], Field(max_length=200), AfterValidator(_unique)]


class QueueCreate(InputSchema):
    name: Name
    description: Annotated[str, StringConstraints(max_length=1000)] | None = None
    members: Members = Field(
        default_factory=list, description="Agents who take round-robin turns, in order."
    )


class QueueUpdate(PatchSchema):
    not_nullable = frozenset({"name", "members"})

    name: Name | None = None
    description: Annotated[str, StringConstraints(max_length=1000)] | None = None
    members: Members | None = None


class Queue(Schema):
    id: uuid.UUID
    name: str
    description: str | None
    members: list[str]
    created_at: UTCDateTime
    updated_at: UTCDateTime
    version: int


def _fixed_needs_assignee(mode: str | None, assignee: str | None) -> None:
    if mode == "fixed" and assignee is None:
        raise ValueError("assign_mode `fixed` needs an assignee")
    if mode in ("none", "round_robin") and assignee is not None:
        raise ValueError("an assignee is only given with assign_mode `fixed`")


class RoutingRuleCreate(InputSchema):
    """Every condition given must hold (a case matches a list when its value is one of it;
    ``subject_keywords`` when its subject contains one of them, ignoring case)."""

    name: Name
    position: int = Field(ge=0, le=1_000_000, strict=True, description="Lower runs first.")
    active: bool = True
    categories: Annotated[list[Category], Field(max_length=50)] = Field(default_factory=list)
    priorities: Annotated[list[Priority], Field(max_length=4)] = Field(default_factory=list)
    channels: Annotated[list[Channel], Field(max_length=12)] = Field(default_factory=list)
    account_types: Annotated[list[AccountType], Field(max_length=6)] = Field(default_factory=list)
    lifecycle_stages: Annotated[list[LifecycleStage], Field(max_length=6)] = Field(
        default_factory=list
    )
    subject_keywords: Annotated[list[Keyword], Field(max_length=50)] = Field(default_factory=list)
    queue_id: uuid.UUID
    assign_mode: AssignMode = "none"
    assignee: Agent | None = None

    @model_validator(mode="after")
    def _assignee(self) -> RoutingRuleCreate:
        _fixed_needs_assignee(self.assign_mode, self.assignee)
        return self


class RoutingRuleUpdate(PatchSchema):
    not_nullable = frozenset({
        "name", "position", "active", "categories", "priorities", "channels", "account_types",
        "lifecycle_stages", "subject_keywords", "queue_id", "assign_mode",
    })  # fmt: skip

    name: Name | None = None
    position: int | None = Field(default=None, ge=0, le=1_000_000, strict=True)
    active: bool | None = None
    categories: Annotated[list[Category], Field(max_length=50)] | None = None
    priorities: Annotated[list[Priority], Field(max_length=4)] | None = None
    channels: Annotated[list[Channel], Field(max_length=12)] | None = None
    account_types: Annotated[list[AccountType], Field(max_length=6)] | None = None
    lifecycle_stages: Annotated[list[LifecycleStage], Field(max_length=6)] | None = None
    subject_keywords: Annotated[list[Keyword], Field(max_length=50)] | None = None
    queue_id: uuid.UUID | None = None
    assign_mode: AssignMode | None = None
    assignee: Agent | None = None


class RoutingRule(Schema):
    id: uuid.UUID
    name: str
    position: int
    active: bool
    categories: list[str]
    priorities: list[str]
    channels: list[str]
    account_types: list[str]
    lifecycle_stages: list[str]
    subject_keywords: list[str]
    queue_id: uuid.UUID
    assign_mode: AssignMode
    assignee: str | None
    created_at: UTCDateTime
    updated_at: UTCDateTime
    version: int


# -- cases -----------------------------------------------------------------------------------


class CaseCreate(InputSchema):
    """A new case. Opened from an interaction (``source_interaction_id``, e.g. a complaint),
    the contact, channel and subject default to the interaction's."""

    subject: Subject | None = Field(default=None, description="Required without a source.")
    description: Description | None = None
    contact_id: uuid.UUID | None = Field(
        default=None, description="The customer; required without a source interaction."
    )
    account_id: uuid.UUID | None = None
    channel: Channel | None = Field(
        default=None, description="Channel of origin (default: the source's, else `other`)."
    )
    category: Category | None = None
    priority: Priority = "normal"
    queue_id: uuid.UUID | None = Field(
        default=None, description="Given: no routing. Absent: the routing rules choose."
    )
    assignee: Agent | None = None
    source_interaction_id: uuid.UUID | None = None
    attributes: Attributes = Field(default_factory=dict)
    external_ids: ExternalIds = Field(default_factory=dict)


class CaseUpdate(PatchSchema):
    """Merge patch. Status changes go through ``POST /v1/cases/{id}/transitions``."""

    not_nullable = frozenset({"subject", "channel", "priority", "attributes", "external_ids"})

    subject: Subject | None = None
    description: Description | None = None
    account_id: uuid.UUID | None = None
    channel: Channel | None = None
    category: Category | None = None
    priority: Priority | None = None
    queue_id: uuid.UUID | None = None
    assignee: Agent | None = None
    sla_policy_id: uuid.UUID | None = Field(
        default=None,
        description="Pin a policy (null: choose by priority, category and account type "
        "again). Due times are recomputed, keeping the time the clock was paused.",
    )
    attributes: dict[str, Any] | None = None
    external_ids: dict[SystemName, ExternalIdValue | None] | None = None


class TransitionCreate(InputSchema):
    to: CaseStatus = Field(description="The new status.")
    reason: PendingReason | None = Field(
        default=None, description="Why the case waits; required (and only) with `pending`."
    )
    note: Note | None = Field(default=None, description="Kept in the case history.")

    @model_validator(mode="after")
    def _reason(self) -> TransitionCreate:
        if self.to == "pending" and self.reason is None:
            raise ValueError("reason: required when the case becomes pending")
        if self.to != "pending" and self.reason is not None:
            raise ValueError("reason: only a pending case has one")
        return self


class CommentCreate(InputSchema):
    body: CommentBody
    public: bool = Field(
        default=False,
        description="Public comments reach the customer (an outbound interaction on the "
        "case's channel); the first one is the first response.",
    )
    author: Agent | None = None


class SlaTarget(Schema):
    due_at: UTCDateTime | None = Field(description="Null while no policy applies.")
    completed_at: UTCDateTime | None
    met: bool | None = Field(description="Null until the target is reached or missed.")
    breached: bool
    remaining_business_minutes: float | None = Field(
        description="Until due (negative when overdue), frozen while the clock is paused; "
        "null once completed."
    )


class SlaStatus(Schema):
    policy_id: uuid.UUID | None
    calendar_id: uuid.UUID | None
    paused: bool = Field(description="The clock stops while the case is pending or resolved.")
    paused_business_minutes: float
    first_response: SlaTarget
    next_response: SlaTarget
    resolution: SlaTarget


class Case(Schema):
    id: uuid.UUID
    number: str = Field(description="`CASE-000123`, unique per workspace.")
    subject: str
    description: str | None
    contact_id: uuid.UUID
    account_id: uuid.UUID | None
    channel: str
    category: str | None
    priority: Priority
    status: CaseStatus
    pending_reason: PendingReason | None
    allowed_transitions: list[CaseStatus]
    queue_id: uuid.UUID | None
    assignee: str | None
    routing_rule_id: uuid.UUID | None = Field(description="The rule that last routed the case.")
    source_interaction_id: uuid.UUID | None
    attributes: dict[str, Any]
    external_ids: dict[str, str]
    first_response_at: UTCDateTime | None
    resolved_at: UTCDateTime | None
    closed_at: UTCDateTime | None
    reopen_count: int
    first_response_due_at: UTCDateTime | None = Field(description="`sla.first_response.due_at`.")
    resolution_due_at: UTCDateTime | None = Field(description="`sla.resolution.due_at`.")
    sla: SlaStatus
    created_at: UTCDateTime
    updated_at: UTCDateTime
    version: int


class Comment(Schema):
    id: uuid.UUID
    case_id: uuid.UUID
    body: str
    public: bool
    author: str | None
    api_key_id: uuid.UUID | None
    interaction_id: uuid.UUID | None = Field(description="The outbound interaction, if public.")
    created_at: UTCDateTime


class HistoryEntry(Schema):
    id: uuid.UUID
    case_id: uuid.UUID
    field: Literal["status", "queue", "assignee", "priority"]
    from_value: str | None
    to_value: str | None
    reason: str | None
    api_key_id: uuid.UUID | None
    at: UTCDateTime


class StatusTime(Schema):
    status: CaseStatus
    seconds: float = Field(description="Wall-clock time spent in the status.")
    business_minutes: float | None = Field(description="Null without a calendar.")


class Metrics(Schema):
    """Where the case's time went; a status still current counts up to now."""

    case_id: uuid.UUID
    calendar_id: uuid.UUID | None = Field(description="The SLA policy's calendar, if any.")
    time_in_status: list[StatusTime]
    first_response_seconds: float | None
    first_response_business_minutes: float | None
    resolution_seconds: float | None = Field(description="Creation to the latest resolution.")
    resolution_business_minutes: float | None
    reopen_count: int
    status_changes: int
    queue_changes: int
    assignee_changes: int


class ReportRow(Schema):
    key: str | None = Field(description="The group's value (queue id, priority, ...).")
    label: str | None = Field(description="A queue's name; the key otherwise.")
    created: int
    resolved: int = Field(description="Resolved or closed.")
    backlog: int = Field(description="Still new, open or pending.")
    median_first_response_seconds: float | None
    p90_first_response_seconds: float | None
    median_resolution_seconds: float | None
    p90_resolution_seconds: float | None
    sla_evaluated: int = Field(description="Resolved cases with an SLA policy.")
    sla_met: int = Field(description="Of those, first response and resolution both on time.")
    sla_met_rate: float | None
    median_backlog_age_seconds: float | None
    max_backlog_age_seconds: float | None


class Report(Schema):
    """Cases created in ``[from, to)``, grouped; backlog ages are measured at ``to`` (or now,
    if earlier)."""

    period_start: UTCDateTime = Field(description="`from`.")
    period_end: UTCDateTime = Field(description="`to`.")
    group_by: ReportGroup
    rows: list[ReportRow]
    total: ReportRow
