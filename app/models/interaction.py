from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    ForeignKeyConstraint,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, query_expression, relationship

from app.db.base import Base, TimestampedMixin, VersionedMixin, WorkspaceScopedMixin

CHANNELS = (
    "phone",
    "email",
    "sms",
    "web",
    "mobile_app",
    "push",
    "store",
    "social",
    "chat",
    "ivr",
    "meeting",
    "other",
)
DIRECTIONS = ("inbound", "outbound")
INTERACTION_TYPES = (
    "call",
    "email",
    "message",
    "visit",
    "meeting",
    "note",
    "survey_response",
    "feedback",
    "complaint",
    "compliment",
    "inquiry",
    "web_event",
    "app_event",
    "notification",
    "other",
)
FEEDBACK_KINDS = ("direct", "indirect", "inferred")
SENTIMENTS = ("positive", "neutral", "negative", "mixed")
SCORE_SCALES = ("nps", "csat", "ces")
URGENCIES = ("low", "normal", "high", "critical")


class Interaction(WorkspaceScopedMixin, TimestampedMixin, VersionedMixin, Base):
    """One touch with a contact on any channel: a call, a chat, a visit, a survey answer."""

    __tablename__ = "interactions"

    contact_id: Mapped[uuid.UUID]
    channel: Mapped[str] = mapped_column(String(20))
    direction: Mapped[str | None] = mapped_column(String(10))
    type: Mapped[str] = mapped_column(String(30))
    occurred_at: Mapped[datetime]
    subject: Mapped[str | None] = mapped_column(String(500))
    body: Mapped[str | None] = mapped_column(Text)
    agent_id: Mapped[str | None] = mapped_column(String(200))
    duration_seconds: Mapped[int | None] = mapped_column(Integer)
    attributes: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")

    # Feedback carried by the interaction (all null when it carries none).
    feedback_kind: Mapped[str | None] = mapped_column(String(10))
    sentiment: Mapped[str | None] = mapped_column(String(10))
    score: Mapped[int | None] = mapped_column(SmallInteger)
    score_scale: Mapped[str | None] = mapped_column(String(10))
    topic: Mapped[str | None] = mapped_column(String(100))
    urgency: Mapped[str | None] = mapped_column(String(10))
    # Negative or urgent feedback, derived by the service: what routing and cases pick up.
    needs_attention: Mapped[bool] = mapped_column(Boolean, server_default="false")
    attention_resolved_at: Mapped[datetime | None]

    case_id: Mapped[uuid.UUID | None]
    opportunity_id: Mapped[uuid.UUID | None]
    campaign_id: Mapped[uuid.UUID | None]

    external_ids: Mapped[list[InteractionExternalId]] = relationship(
        lazy="raise", cascade="all, delete-orphan", passive_deletes=True
    )
    # ``{system: value}`` of the external ids, filled by the query that loads the row (one
    # statement instead of a second one for the relationship); None when not asked for.
    external_id_map: Mapped[dict[str, str] | None] = query_expression()

    __table_args__ = (
        CheckConstraint(f"channel IN {CHANNELS}", name="channel"),
        CheckConstraint(f"direction IN {DIRECTIONS}", name="direction"),
        CheckConstraint(f"type IN {INTERACTION_TYPES}", name="type"),
        CheckConstraint(f"feedback_kind IN {FEEDBACK_KINDS}", name="feedback_kind"),
        CheckConstraint(f"sentiment IN {SENTIMENTS}", name="sentiment"),
        CheckConstraint(f"score_scale IN {SCORE_SCALES}", name="score_scale"),
        CheckConstraint(f"urgency IN {URGENCIES}", name="urgency"),
        CheckConstraint("(score IS NULL) = (score_scale IS NULL)", name="score_has_scale"),
        CheckConstraint("duration_seconds >= 0", name="duration"),
        ForeignKeyConstraint(
            ["workspace_id", "contact_id"],
            ["contacts.workspace_id", "contacts.id"],
            ondelete="CASCADE",
            name="fk_interactions_contact",
        ),
        # A contact's history, newest first: lists, the timeline and the 360 view.
        Index("ix_interactions_contact", "workspace_id", "contact_id", "occurred_at", "id"),
        Index("ix_interactions_occurred", "workspace_id", "occurred_at", "id"),
        Index(
            "ix_interactions_attention",
            "workspace_id",
            "contact_id",
            postgresql_where=text("needs_attention AND attention_resolved_at IS NULL"),
        ),
        Index(
            "ix_interactions_case",
            "workspace_id",
            "case_id",
            postgresql_where=text("case_id IS NOT NULL"),
        ),
        Index(
            "ix_interactions_opportunity",
            "workspace_id",
            "opportunity_id",
            postgresql_where=text("opportunity_id IS NOT NULL"),
        ),
        Index(
            "ix_interactions_campaign",
            "workspace_id",
            "campaign_id",
            postgresql_where=text("campaign_id IS NOT NULL"),
        ),
    )
    __mapper_args__ = {"version_id_col": VersionedMixin.version}  # noqa: RUF012


class InteractionExternalId(Base):
    """A partner system's key for an interaction: what makes ingest idempotent."""

    __tablename__ = "interaction_external_ids"

    workspace_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    system: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(255), primary_key=True)
    interaction_id: Mapped[uuid.UUID]

    __table_args__ = (
        ForeignKeyConstraint(
            ["workspace_id", "interaction_id"],
            ["interactions.workspace_id", "interactions.id"],
            ondelete="CASCADE",
            name="fk_interaction_external_ids_interaction",
        ),
        Index("ix_interaction_external_ids_interaction", "workspace_id", "interaction_id"),
    )
