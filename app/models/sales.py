"""Sales: pipelines and their stages, opportunities with their stage history and competitors,
leads, targets and commission rules."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKeyConstraint,
    Index,
    Integer,
    SmallInteger,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db.base import Base, TimestampedMixin, VersionedMixin, WorkspaceScopedMixin

STAGE_TYPES = ("open", "won", "lost")
OPPORTUNITY_STATUSES = STAGE_TYPES
COMPETITOR_STATUSES = ("active", "eliminated", "selected")
LEAD_STATUSES = ("new", "working", "qualified", "disqualified", "converted")


class Pipeline(WorkspaceScopedMixin, TimestampedMixin, VersionedMixin, Base):
    """A sales process: ordered stages an opportunity moves through. Its version also moves
    when a stage changes, so the pipeline's ETag covers its stages."""

    __tablename__ = "pipelines"

    name: Mapped[str] = mapped_column(String(200))
    is_default: Mapped[bool] = mapped_column(Boolean, server_default="false")

    stages: Mapped[list[PipelineStage]] = relationship(
        lazy="raise",
        order_by="PipelineStage.position",
        cascade="all, delete-orphan",
        passive_deletes=True,
    )

    __table_args__ = (
        Index("uq_pipelines_name", "workspace_id", "name", unique=True),
        # One default pipeline per workspace.
        Index(
            "uq_pipelines_default",
            "workspace_id",
            unique=True,
            postgresql_where=text("is_default"),
        ),
    )
    __mapper_args__ = {"version_id_col": VersionedMixin.version}  # noqa: RUF012


class PipelineStage(WorkspaceScopedMixin, Base):
    """A step of a pipeline; its type decides the status of the opportunities in it."""

    __tablename__ = "pipeline_stages"

    pipeline_id: Mapped[uuid.UUID]
    name: Mapped[str] = mapped_column(String(100))
    position: Mapped[int] = mapped_column(SmallInteger)
    probability: Mapped[int] = mapped_column(SmallInteger)
    type: Mapped[str] = mapped_column(String(10), server_default="open")

    __table_args__ = (
        CheckConstraint(f"type IN {STAGE_TYPES}", name="type"),
        CheckConstraint("probability BETWEEN 0 AND 100", name="probability"),
        # A won deal is certain and a lost one is gone: forecasts rely on it.
        CheckConstraint("type <> 'won' OR probability = 100", name="won_probability"),
        CheckConstraint("type <> 'lost' OR probability = 0", name="lost_probability"),
        CheckConstraint("position >= 0", name="position"),
        ForeignKeyConstraint(
            ["workspace_id", "pipeline_id"],
            ["pipelines.workspace_id", "pipelines.id"],
            ondelete="CASCADE",
            name="fk_pipeline_stages_pipeline",
        ),
        # What opportunities reference, so a stage of another pipeline cannot be used.
        UniqueConstraint(
            "workspace_id", "pipeline_id", "id", name="uq_pipeline_stages_pipeline_id"
        ),
        # Deferred: a reorder rewrites several positions in one transaction.
        UniqueConstraint(
            "workspace_id",
            "pipeline_id",
            "position",
            name="uq_pipeline_stages_position",
            deferrable=True,
            initially="DEFERRED",
        ),
    )


class Opportunity(WorkspaceScopedMixin, TimestampedMixin, VersionedMixin, Base):
    """A deal: who it is with, how much, where it stands in its pipeline."""

    __tablename__ = "opportunities"

    name: Mapped[str] = mapped_column(String(300))
    contact_id: Mapped[uuid.UUID | None]
    account_id: Mapped[uuid.UUID | None]
    pipeline_id: Mapped[uuid.UUID]
    stage_id: Mapped[uuid.UUID]
    # Follows the stage's type; copied here so lists and forecasts filter without a join.
    status: Mapped[str] = mapped_column(String(10), server_default="open")
    currency: Mapped[str] = mapped_column(String(3))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    expected_close_date: Mapped[date] = mapped_column(Date)
    owner: Mapped[str | None] = mapped_column(String(200))
    source: Mapped[str | None] = mapped_column(String(100))
    next_step: Mapped[str | None] = mapped_column(String(500))
    loss_reason: Mapped[str | None] = mapped_column(String(500))
    closed_at: Mapped[datetime | None]
    stage_entered_at: Mapped[datetime]
    attributes: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")

    # Read-only: the service moves ``stage_id`` and sets this alongside (set_committed_value).
    stage: Mapped[PipelineStage] = relationship(
        lazy="raise",
        viewonly=True,
        innerjoin=True,
        primaryjoin="and_(foreign(Opportunity.workspace_id) == PipelineStage.workspace_id, "
        "foreign(Opportunity.stage_id) == PipelineStage.id)",
        uselist=False,
    )
    competitors: Mapped[list[OpportunityCompetitor]] = relationship(
        lazy="raise",
        order_by="OpportunityCompetitor.position",
        cascade="all, delete-orphan",
        passive_deletes=True,
    )
    external_ids: Mapped[list[OpportunityExternalId]] = relationship(
        lazy="raise", cascade="all, delete-orphan", passive_deletes=True
    )

    __table_args__ = (
        CheckConstraint(f"status IN {OPPORTUNITY_STATUSES}", name="status"),
        CheckConstraint("num_nonnulls(contact_id, account_id) >= 1", name="has_party"),
        CheckConstraint("amount_minor >= 0", name="amount"),
        CheckConstraint("status <> 'lost' OR loss_reason IS NOT NULL", name="loss_reason"),
        CheckConstraint("(status = 'open') = (closed_at IS NULL)", name="closed_at"),
        ForeignKeyConstraint(
            ["workspace_id", "pipeline_id", "stage_id"],
            [
                "pipeline_stages.workspace_id",
                "pipeline_stages.pipeline_id",
                "pipeline_stages.id",
            ],
            name="fk_opportunities_stage",
        ),
        ForeignKeyConstraint(
            ["workspace_id", "contact_id"],
            ["contacts.workspace_id", "contacts.id"],
            ondelete="CASCADE",
            name="fk_opportunities_contact",
        ),
        ForeignKeyConstraint(
            ["workspace_id", "account_id"],
            ["accounts.workspace_id", "accounts.id"],
            ondelete="CASCADE",
            name="fk_opportunities_account",
        ),
        Index("ix_opportunities_contact", "workspace_id", "contact_id", "updated_at", "id"),
        Index("ix_opportunities_account", "workspace_id", "account_id"),
        Index("ix_opportunities_stage", "workspace_id", "pipeline_id", "stage_id"),
        Index("ix_opportunities_updated", "workspace_id", "updated_at", "id"),
        Index("ix_opportunities_close", "workspace_id", "expected_close_date", "id"),
        Index("ix_opportunities_amount", "workspace_id", "amount_minor", "id"),
        Index("ix_opportunities_owner", "workspace_id", "owner", "status"),
    )
    __mapper_args__ = {"version_id_col": VersionedMixin.version}  # noqa: RUF012


class OpportunityStageChange(WorkspaceScopedMixin, Base):
    """One move of an opportunity between stages (the first row is where it was created).

    Stage names are copied so the history still reads after a stage is renamed or deleted.
    """

    __tablename__ = "opportunity_stage_changes"

    opportunity_id: Mapped[uuid.UUID]
    pipeline_id: Mapped[uuid.UUID]
    from_stage_id: Mapped[uuid.UUID | None]
    from_stage_name: Mapped[str | None] = mapped_column(String(100))
    from_status: Mapped[str | None] = mapped_column(String(10))
    to_stage_id: Mapped[uuid.UUID | None]
    to_stage_name: Mapped[str] = mapped_column(String(100))
    to_status: Mapped[str] = mapped_column(String(10))
    changed_at: Mapped[datetime]
    # The API key that made the change (users are not modelled).
    changed_by: Mapped[uuid.UUID | None]
    seconds_in_previous_stage: Mapped[int | None] = mapped_column(BigInteger)
    loss_reason: Mapped[str | None] = mapped_column(String(500))

    __table_args__ = (
        CheckConstraint(f"to_status IN {OPPORTUNITY_STATUSES}", name="to_status"),
        CheckConstraint(f"from_status IN {OPPORTUNITY_STATUSES}", name="from_status"),
        CheckConstraint(
            "(from_status IS NULL) = (seconds_in_previous_stage IS NULL)", name="first_entry"
        ),
        CheckConstraint("seconds_in_previous_stage >= 0", name="seconds"),
        ForeignKeyConstraint(
            ["workspace_id", "opportunity_id"],
            ["opportunities.workspace_id", "opportunities.id"],
            ondelete="CASCADE",
            name="fk_opportunity_stage_changes_opportunity",
        ),
        ForeignKeyConstraint(
            ["workspace_id", "from_stage_id"],
            ["pipeline_stages.workspace_id", "pipeline_stages.id"],
            ondelete="SET NULL (from_stage_id)",
            name="fk_opportunity_stage_changes_from",
        ),
        ForeignKeyConstraint(
            ["workspace_id", "to_stage_id"],
            ["pipeline_stages.workspace_id", "pipeline_stages.id"],
            ondelete="SET NULL (to_stage_id)",
            name="fk_opportunity_stage_changes_to",
        ),
        Index(
            "ix_opportunity_stage_changes_opportunity",
            "workspace_id",
            "opportunity_id",
            "changed_at",
            "id",
        ),
        Index("ix_opportunity_stage_changes_pipeline", "workspace_id", "pipeline_id", "changed_at"),
    )


class OpportunityCompetitor(Base):
    """A rival for the deal; its name groups wins and losses across opportunities."""

    __tablename__ = "opportunity_competitors"

    workspace_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    opportunity_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    position: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    notes: Mapped[str | None] = mapped_column(String(2000))
    status: Mapped[str] = mapped_column(String(10), server_default="active")

    __table_args__ = (
        CheckConstraint(f"status IN {COMPETITOR_STATUSES}", name="status"),
        ForeignKeyConstraint(
            ["workspace_id", "opportunity_id"],
            ["opportunities.workspace_id", "opportunities.id"],
            ondelete="CASCADE",
            name="fk_opportunity_competitors_opportunity",
        ),
        Index("ix_opportunity_competitors_name", "workspace_id", "name"),
    )


class OpportunityExternalId(Base):
    """A partner system's key for an opportunity: unique per workspace and system."""

    __tablename__ = "opportunity_external_ids"

    workspace_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    system: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(255), primary_key=True)
    opportunity_id: Mapped[uuid.UUID]

    __table_args__ = (
        ForeignKeyConstraint(
            ["workspace_id", "opportunity_id"],
            ["opportunities.workspace_id", "opportunities.id"],
            ondelete="CASCADE",
            name="fk_opportunity_external_ids_opportunity",
        ),
        Index("ix_opportunity_external_ids_opportunity", "workspace_id", "opportunity_id"),
    )


class Lead(WorkspaceScopedMixin, TimestampedMixin, VersionedMixin, Base):
    """Someone who may buy, not yet qualified into a contact and an opportunity."""

    __tablename__ = "leads"

    name: Mapped[str] = mapped_column(String(200))
    company: Mapped[str | None] = mapped_column(String(300))
    email: Mapped[str | None] = mapped_column(String(320))
    phone: Mapped[str | None] = mapped_column(String(32))
    source: Mapped[str | None] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(15), server_default="new")
    disqualified_reason: Mapped[str | None] = mapped_column(String(500))
    score: Mapped[int | None] = mapped_column(SmallInteger)
    owner: Mapped[str | None] = mapped_column(String(200))
    attributes: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    converted_at: Mapped[datetime | None]
    converted_contact_id: Mapped[uuid.UUID | None]
    converted_account_id: Mapped[uuid.UUID | None]
    converted_opportunity_id: Mapped[uuid.UUID | None]

    __table_args__ = (
        CheckConstraint(f"status IN {LEAD_STATUSES}", name="status"),
        CheckConstraint(
            "(status = 'disqualified') = (disqualified_reason IS NOT NULL)", name="disqualified"
        ),
        CheckConstraint("(status = 'converted') = (converted_at IS NOT NULL)", name="converted"),
        CheckConstraint("score BETWEEN 0 AND 100", name="score"),
        ForeignKeyConstraint(
            ["workspace_id", "converted_contact_id"],
            ["contacts.workspace_id", "contacts.id"],
            ondelete="SET NULL (converted_contact_id)",
            name="fk_leads_contact",
        ),
        ForeignKeyConstraint(
            ["workspace_id", "converted_account_id"],
            ["accounts.workspace_id", "accounts.id"],
            ondelete="SET NULL (converted_account_id)",
            name="fk_leads_account",
        ),
        ForeignKeyConstraint(
            ["workspace_id", "converted_opportunity_id"],
            ["opportunities.workspace_id", "opportunities.id"],
            ondelete="SET NULL (converted_opportunity_id)",
            name="fk_leads_opportunity",
        ),
        Index("ix_leads_created", "workspace_id", "created_at", "id"),
        Index("ix_leads_updated", "workspace_id", "updated_at", "id"),
        Index("ix_leads_email", "workspace_id", "email"),
        Index("ix_leads_contact", "workspace_id", "converted_contact_id"),
    )
    __mapper_args__ = {"version_id_col": VersionedMixin.version}  # noqa: RUF012


class SalesTarget(WorkspaceScopedMixin, TimestampedMixin, VersionedMixin, Base):
    """A quota: what an owner should win in one currency over a period (dates inclusive)."""

    __tablename__ = "sales_targets"

    owner: Mapped[str] = mapped_column(String(200))
    period_start: Mapped[date] = mapped_column(Date)
    period_end: Mapped[date] = mapped_column(Date)
    currency: Mapped[str] = mapped_column(String(3))
    amount_minor: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (
        CheckConstraint("period_end >= period_start", name="period"),
        CheckConstraint("amount_minor > 0", name="amount"),
        Index(
            "uq_sales_targets_period",
            "workspace_id",
            "owner",
            "currency",
            "period_start",
            "period_end",
            unique=True,
        ),
    )
    __mapper_args__ = {"version_id_col": VersionedMixin.version}  # noqa: RUF012


class CommissionRule(WorkspaceScopedMixin, TimestampedMixin, VersionedMixin, Base):
    """A commission rate for one pipeline, one owner, both, or (neither) the whole workspace.

    ``tiers`` raise the rate on the part of an owner's won amount above a share of target:
    ``[{"above_percent": 100, "rate_bp": 800}]`` pays 8% on what is won beyond the target.
    """

    __tablename__ = "commission_rules"

    name: Mapped[str] = mapped_column(String(200))
    pipeline_id: Mapped[uuid.UUID | None]
    owner: Mapped[str | None] = mapped_column(String(200))
    rate_bp: Mapped[int] = mapped_column(Integer)
    tiers: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, server_default="[]")

    __table_args__ = (
        CheckConstraint("rate_bp BETWEEN 0 AND 10000", name="rate"),
        ForeignKeyConstraint(
            ["workspace_id", "pipeline_id"],
            ["pipelines.workspace_id", "pipelines.id"],
            ondelete="CASCADE",
            name="fk_commission_rules_pipeline",
        ),
        # One rule per (pipeline, owner) combination, "any" included.
        Index(
            "uq_commission_rules_scope",
            "workspace_id",
            "pipeline_id",
            "owner",
            unique=True,
            postgresql_nulls_not_distinct=True,
        ),
    )
    __mapper_args__ = {"version_id_col": VersionedMixin.version}  # noqa: RUF012
