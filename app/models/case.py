from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ARRAY,
    BigInteger,
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db.base import Base, TimestampedMixin, VersionedMixin, WorkspaceScopedMixin
from app.models.interaction import CHANNELS

CASE_STATUSES = ("new", "open", "pending", "resolved", "closed")
CASE_PRIORITIES = ("low", "normal", "high", "urgent")
PENDING_REASONS = ("waiting_on_customer", "waiting_on_third_party")
HISTORY_FIELDS = ("status", "queue", "assignee", "priority")
ASSIGN_MODES = ("none", "fixed", "round_robin")


class BusinessCalendar(WorkspaceScopedMixin, TimestampedMixin, VersionedMixin, Base):
    """Working hours per weekday in a time zone, and holidays: what SLA clocks count."""

    __tablename__ = "business_calendars"

    name: Mapped[str] = mapped_column(String(200))
    time_zone: Mapped[str] = mapped_column(String(64))
    # {"mon": [["08:30", "12:00"], ["13:00", "17:30"]], ...}; weekdays absent are days off.
    hours: Mapped[dict[str, list[list[str]]]] = mapped_column(JSONB)
    # ["2026-12-07", ...], local dates.
    holidays: Mapped[list[str]] = mapped_column(JSONB, server_default="[]")

    __table_args__ = (Index("ix_business_calendars_name", "workspace_id", "name", unique=True),)
    __mapper_args__ = {"version_id_col": VersionedMixin.version}  # noqa: RUF012


class SlaPolicy(WorkspaceScopedMixin, TimestampedMixin, VersionedMixin, Base):
    """Targets in business minutes for cases of one priority (optionally narrowed)."""

    __tablename__ = "sla_policies"

    name: Mapped[str] = mapped_column(String(200))
    priority: Mapped[str] = mapped_column(String(10))
    category: Mapped[str | None] = mapped_column(String(100))
    account_type: Mapped[str | None] = mapped_column(String(20))
    calendar_id: Mapped[uuid.UUID]
    first_response_minutes: Mapped[int] = mapped_column(Integer)
    next_response_minutes: Mapped[int | None] = mapped_column(Integer)
    resolution_minutes: Mapped[int] = mapped_column(Integer)
    warning_percent: Mapped[int] = mapped_column(Integer, server_default="80")
    # How long after resolution the customer (or an agent) may still reopen the case.
    reopen_window_hours: Mapped[int] = mapped_column(Integer, server_default="168")
    active: Mapped[bool] = mapped_column(Boolean, server_default="true")

    __table_args__ = (
        CheckConstraint(f"priority IN {CASE_PRIORITIES}", name="priority"),
        CheckConstraint("first_response_minutes > 0", name="first_response"),
        CheckConstraint("next_response_minutes > 0", name="next_response"),
        CheckConstraint("resolution_minutes > 0", name="resolution"),
        CheckConstraint("warning_percent BETWEEN 1 AND 99", name="warning_percent"),
        CheckConstraint("reopen_window_hours >= 0", name="reopen_window"),
        ForeignKeyConstraint(
            ["workspace_id", "calendar_id"],
            ["business_calendars.workspace_id", "business_calendars.id"],
            name="fk_sla_policies_calendar",
        ),
        Index("ix_sla_policies_name", "workspace_id", "name", unique=True),
        Index("ix_sla_policies_calendar", "workspace_id", "calendar_id"),
    )
    __mapper_args__ = {"version_id_col": VersionedMixin.version}  # noqa: RUF012


class CaseQueue(WorkspaceScopedMixin, TimestampedMixin, VersionedMixin, Base):
    """A team cases are routed to; ``members`` take round-robin turns."""

    __tablename__ = "case_queues"

    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(String(1000))
    members: Mapped[list[str]] = mapped_column(ARRAY(String(200)), server_default="{}")
    # Round-robin position: the next assignment goes to members[next_member % len(members)].
    next_member: Mapped[int] = mapped_column(BigInteger, server_default="0")

    __table_args__ = (
        CheckConstraint("next_member >= 0", name="next_member"),
        Index("ix_case_queues_name", "workspace_id", "name", unique=True),
    )
    __mapper_args__ = {"version_id_col": VersionedMixin.version}  # noqa: RUF012


class CaseRoutingRule(WorkspaceScopedMixin, TimestampedMixin, VersionedMixin, Base):
    """Conditions (all must hold; any value of a list matches; empty = any) -> a queue."""

    __tablename__ = "case_routing_rules"

    name: Mapped[str] = mapped_column(String(200))
    position: Mapped[int] = mapped_column(Integer)
    active: Mapped[bool] = mapped_column(Boolean, server_default="true")
    categories: Mapped[list[str]] = mapped_column(ARRAY(String(100)), server_default="{}")
    priorities: Mapped[list[str]] = mapped_column(ARRAY(String(10)), server_default="{}")
    channels: Mapped[list[str]] = mapped_column(ARRAY(String(20)), server_default="{}")
    account_types: Mapped[list[str]] = mapped_column(ARRAY(String(20)), server_default="{}")
    lifecycle_stages: Mapped[list[str]] = mapped_column(ARRAY(String(20)), server_default="{}")
    subject_keywords: Mapped[list[str]] = mapped_column(ARRAY(String(100)), server_default="{}")
    queue_id: Mapped[uuid.UUID]
    assign_mode: Mapped[str] = mapped_column(String(20), server_default="none")
    assignee: Mapped[str | None] = mapped_column(String(200))

    __table_args__ = (
        CheckConstraint(f"assign_mode IN {ASSIGN_MODES}", name="assign_mode"),
        CheckConstraint("(assign_mode = 'fixed') = (assignee IS NOT NULL)", name="assignee"),
        CheckConstraint("position >= 0", name="position"),
        ForeignKeyConstraint(
            ["workspace_id", "queue_id"],
            ["case_queues.workspace_id", "case_queues.id"],
            ondelete="CASCADE",
            name="fk_case_routing_rules_queue",
        ),
        Index("ix_case_routing_rules_position", "workspace_id", "position", "id"),
        Index("ix_case_routing_rules_queue", "workspace_id", "queue_id"),
    )
    __mapper_args__ = {"version_id_col": VersionedMixin.version}  # noqa: RUF012


class CaseCounter(Base):
    """The last case number handed out in a workspace (numbers are unique, not gap-free)."""

    __tablename__ = "case_counters"

    workspace_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True
    )
    last_number: Mapped[int] = mapped_column(BigInteger)


class Case(WorkspaceScopedMixin, TimestampedMixin, VersionedMixin, Base):
    """A service request: routed to a queue, answered and resolved against its SLA."""

    __tablename__ = "cases"

    number: Mapped[int] = mapped_column(BigInteger)
    subject: Mapped[str] = mapped_column(String(500))
    description: Mapped[str | None] = mapped_column(Text)
    contact_id: Mapped[uuid.UUID]
    account_id: Mapped[uuid.UUID | None]
    channel: Mapped[str] = mapped_column(String(20))
    category: Mapped[str | None] = mapped_column(String(100))
    priority: Mapped[str] = mapped_column(String(10), server_default="normal")
    status: Mapped[str] = mapped_column(String(10), server_default="new")
    pending_reason: Mapped[str | None] = mapped_column(String(30))
    queue_id: Mapped[uuid.UUID | None]
    assignee: Mapped[str | None] = mapped_column(String(200))
    source_interaction_id: Mapped[uuid.UUID | None]
    routing_rule_id: Mapped[uuid.UUID | None]
    attributes: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")

    first_response_at: Mapped[datetime | None]
    resolved_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    reopen_count: Mapped[int] = mapped_column(Integer, server_default="0")

    # The SLA clock: due times are business time from creation plus the business time the
    # clock spent paused (pending or resolved), so a policy change recomputes them exactly.
    sla_policy_id: Mapped[uuid.UUID | None]
    paused_minutes: Mapped[float] = mapped_column(Float, server_default="0")
    paused_since: Mapped[datetime | None]
    first_response_due_at: Mapped[datetime | None]
    first_response_warn_at: Mapped[datetime | None]
    next_response_due_at: Mapped[datetime | None]
    resolution_due_at: Mapped[datetime | None]
    resolution_warn_at: Mapped[datetime | None]
    # When each SLA event was emitted: set once, guarded by the UPDATE's WHERE clause.
    first_response_warned_at: Mapped[datetime | None]
    first_response_breached_at: Mapped[datetime | None]
    resolution_warned_at: Mapped[datetime | None]
    resolution_breached_at: Mapped[datetime | None]

    external_ids: Mapped[list[CaseExternalId]] = relationship(
        lazy="raise", cascade="all, delete-orphan", passive_deletes=True
    )

    __table_args__ = (
        CheckConstraint(f"status IN {CASE_STATUSES}", name="status"),
        CheckConstraint(f"channel IN {CHANNELS}", name="channel"),
        CheckConstraint(f"priority IN {CASE_PRIORITIES}", name="priority"),
        CheckConstraint(f"pending_reason IN {PENDING_REASONS}", name="pending_reason_value"),
        CheckConstraint(
            "(status = 'pending') = (pending_reason IS NOT NULL)", name="pending_reason"
        ),
        CheckConstraint(
            "(status IN ('resolved', 'closed')) = (resolved_at IS NOT NULL)", name="resolved_at"
        ),
        CheckConstraint("(status = 'closed') = (closed_at IS NOT NULL)", name="closed_at"),
        CheckConstraint("number > 0", name="number"),
        CheckConstraint("paused_minutes >= 0", name="paused_minutes"),
        CheckConstraint("reopen_count >= 0", name="reopen_count"),
        ForeignKeyConstraint(
            ["workspace_id", "contact_id"],
            ["contacts.workspace_id", "contacts.id"],
            ondelete="CASCADE",
            name="fk_cases_contact",
        ),
        ForeignKeyConstraint(
            ["workspace_id", "account_id"],
            ["accounts.workspace_id", "accounts.id"],
            ondelete="SET NULL (account_id)",
            name="fk_cases_account",
        ),
        ForeignKeyConstraint(
            ["workspace_id", "queue_id"],
            ["case_queues.workspace_id", "case_queues.id"],
            ondelete="SET NULL (queue_id)",
            name="fk_cases_queue",
        ),
        ForeignKeyConstraint(
            ["workspace_id", "sla_policy_id"],
            ["sla_policies.workspace_id", "sla_policies.id"],
            name="fk_cases_sla_policy",
        ),
        ForeignKeyConstraint(
            ["workspace_id", "routing_rule_id"],
            ["case_routing_rules.workspace_id", "case_routing_rules.id"],
            ondelete="SET NULL (routing_rule_id)",
            name="fk_cases_routing_rule",
        ),
        ForeignKeyConstraint(
            ["workspace_id", "source_interaction_id"],
            ["interactions.workspace_id", "interactions.id"],
            ondelete="SET NULL (source_interaction_id)",
            name="fk_cases_source_interaction",
        ),
        Index("ix_cases_number", "workspace_id", "number", unique=True),
        Index("ix_cases_contact", "workspace_id", "contact_id", "created_at", "id"),
        Index("ix_cases_created", "workspace_id", "created_at", "id"),
        Index("ix_cases_queue", "workspace_id", "queue_id", "status"),
        Index("ix_cases_sla_policy", "workspace_id", "sla_policy_id"),
        Index("ix_cases_routing_rule", "workspace_id", "routing_rule_id"),
        Index("ix_cases_account", "workspace_id", "account_id"),
        Index("ix_cases_source_interaction", "workspace_id", "source_interaction_id"),
        # What the SLA sweep reads: running clocks only.
        Index(
            "ix_cases_sla_running",
            "workspace_id",
            "id",
            postgresql_where=text("sla_policy_id IS NOT NULL AND status IN ('new', 'open')"),
        ),
    )
    __mapper_args__ = {"version_id_col": VersionedMixin.version}  # noqa: RUF012


class CaseExternalId(Base):
    """A partner system's key for a case (a ticket id in another help desk)."""

    __tablename__ = "case_external_ids"

    workspace_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    system: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(255), primary_key=True)
    case_id: Mapped[uuid.UUID]

    __table_args__ = (
        ForeignKeyConstraint(
            ["workspace_id", "case_id"],
            ["cases.workspace_id", "cases.id"],
            ondelete="CASCADE",
            name="fk_case_external_ids_case",
        ),
        Index("ix_case_external_ids_case", "workspace_id", "case_id"),
    )


class CaseComment(WorkspaceScopedMixin, Base):
    """An agent's note on a case: ``public`` ones reach the customer."""

    __tablename__ = "case_comments"

    case_id: Mapped[uuid.UUID]
    body: Mapped[str] = mapped_column(Text)
    public: Mapped[bool] = mapped_column(Boolean)
    author: Mapped[str | None] = mapped_column(String(200))
    api_key_id: Mapped[uuid.UUID | None]
    # The outbound interaction a public comment became on the contact's timeline.
    interaction_id: Mapped[uuid.UUID | None]
    created_at: Mapped[datetime] = mapped_column(server_default=func.clock_timestamp())

    __table_args__ = (
        ForeignKeyConstraint(
            ["workspace_id", "case_id"],
            ["cases.workspace_id", "cases.id"],
            ondelete="CASCADE",
            name="fk_case_comments_case",
        ),
        Index("ix_case_comments_case", "workspace_id", "case_id", "created_at", "id"),
    )


class CaseHistory(WorkspaceScopedMixin, Base):
    """One change of a case's status, queue, assignee or priority: append-only."""

    __tablename__ = "case_history"

    case_id: Mapped[uuid.UUID]
    field: Mapped[str] = mapped_column(String(20))
    from_value: Mapped[str | None] = mapped_column(String(200))
    to_value: Mapped[str | None] = mapped_column(String(200))
    reason: Mapped[str | None] = mapped_column(String(500))
    api_key_id: Mapped[uuid.UUID | None]
    # The database clock at the change (clock_timestamp: distinct within one transaction).
    at: Mapped[datetime] = mapped_column(server_default=func.clock_timestamp())

    __table_args__ = (
        CheckConstraint(f"field IN {HISTORY_FIELDS}", name="field"),
        ForeignKeyConstraint(
            ["workspace_id", "case_id"],
            ["cases.workspace_id", "cases.id"],
            ondelete="CASCADE",
            name="fk_case_history_case",
        ),
        Index("ix_case_history_case", "workspace_id", "case_id", "at", "id"),
    )
