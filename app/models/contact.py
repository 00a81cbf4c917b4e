from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    ForeignKeyConstraint,
    Index,
    LargeBinary,
    SmallInteger,
    String,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column, query_expression, relationship

from app.db.base import Base, TimestampedMixin, VersionedMixin, WorkspaceScopedMixin

LIFECYCLE_STAGES = ("lead", "prospect", "customer", "advocate", "ambassador", "churned")
PHONE_TYPES = ("mobile", "home", "work", "other")


class Contact(WorkspaceScopedMixin, TimestampedMixin, VersionedMixin, Base):
    """A person the business deals with: the customer profile every module hangs off."""

    __tablename__ = "contacts"

    given_name: Mapped[str | None] = mapped_column(String(200))
    family_name: Mapped[str | None] = mapped_column(String(200))
    display_name: Mapped[str] = mapped_column(String(300))
    locale: Mapped[str | None] = mapped_column(String(35))
    time_zone: Mapped[str | None] = mapped_column(String(64))
    birthday: Mapped[date | None]
    addresses: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, server_default="[]")
    lifecycle_stage: Mapped[str] = mapped_column(String(20), server_default="lead")
    account_id: Mapped[uuid.UUID | None]
    owner_id: Mapped[str | None] = mapped_column(String(200))
    tags: Mapped[list[str]] = mapped_column(ARRAY(String(64)), server_default="{}")
    attributes: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    acquisition_source: Mapped[str | None] = mapped_column(String(100))
    acquisition_channel: Mapped[str | None] = mapped_column(String(50))
    # Set when this contact was absorbed by a merge: it then answers 404 naming the survivor.
    merged_into_id: Mapped[uuid.UUID | None]
    # crm_search_key() of names, e-mails and phone digits, kept by the service.
    search_text: Mapped[str] = mapped_column(server_default="")
    name_sort_key: Mapped[bytes] = mapped_column(LargeBinary)

    emails: Mapped[list[ContactEmail]] = relationship(
        lazy="raise",
        order_by="ContactEmail.position",
        cascade="all, delete-orphan",
        passive_deletes=True,
    )
    phones: Mapped[list[ContactPhone]] = relationship(
        lazy="raise",
        order_by="ContactPhone.position",
        cascade="all, delete-orphan",
        passive_deletes=True,
    )
    external_ids: Mapped[list[ContactExternalId]] = relationship(
        lazy="raise", cascade="all, delete-orphan", passive_deletes=True
    )
    # The same three as JSON, filled by read queries in the contact's own statement (None
    # when not asked for): a read then costs one statement, not one per collection.
    email_values: Mapped[list[dict[str, Any]] | None] = query_expression()
    phone_values: Mapped[list[dict[str, Any]] | None] = query_expression()
    external_id_values: Mapped[dict[str, str] | None] = query_expression()

    __table_args__ = (
        CheckConstraint(f"lifecycle_stage IN {LIFECYCLE_STAGES}", name="lifecycle_stage"),
        CheckConstraint(
            "merged_into_id IS NULL OR merged_into_id <> id", name="not_merged_into_self"
        ),
        ForeignKeyConstraint(
            ["workspace_id", "account_id"],
            ["accounts.workspace_id", "accounts.id"],
            ondelete="SET NULL (account_id)",
            name="fk_contacts_account",
        ),
        # On the text alone: see migration 0012 (the workspace's rows are filtered after).
        Index(
            "ix_contacts_search",
            "search_text",
            postgresql_using="gin",
            postgresql_ops={"search_text": "gin_trgm_ops"},
        ),
        Index("ix_contacts_tags", "workspace_id", "tags", postgresql_using="gin"),
        Index("ix_contacts_name_sort", "workspace_id", "name_sort_key", "id"),
        Index("ix_contacts_created", "workspace_id", "created_at", "id"),
        Index("ix_contacts_updated", "workspace_id", "updated_at", "id"),
        Index("ix_contacts_account", "workspace_id", "account_id"),
        Index(
            "ix_contacts_merged_into",
            "workspace_id",
            "merged_into_id",
            postgresql_where=text("merged_into_id IS NOT NULL"),
        ),
    )
    __mapper_args__ = {"version_id_col": VersionedMixin.version}  # noqa: RUF012


class ContactEmail(Base):
    """An e-mail address of a contact; unique among the workspace's contacts."""

    __tablename__ = "contact_emails"

    workspace_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    # Lower-cased whole (app.kit.contact_points.normalize_email) so matching is exact.
    email: Mapped[str] = mapped_column(String(320), primary_key=True)
    contact_id: Mapped[uuid.UUID]
    is_primary: Mapped[bool] = mapped_column(Boolean, server_default="false")
    position: Mapped[int] = mapped_column(SmallInteger, server_default="0")

    __table_args__ = (
        ForeignKeyConstraint(
            ["workspace_id", "contact_id"],
            ["contacts.workspace_id", "contacts.id"],
            ondelete="CASCADE",
            name="fk_contact_emails_contact",
        ),
        Index("ix_contact_emails_contact", "workspace_id", "contact_id"),
    )


class ContactPhone(Base):
    """A phone number of a contact, in E.164. Not unique: households share landlines."""

    __tablename__ = "contact_phones"

    workspace_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    contact_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(20), primary_key=True)
    type: Mapped[str] = mapped_column(String(10), server_default="mobile")
    is_primary: Mapped[bool] = mapped_column(Boolean, server_default="false")
    position: Mapped[int] = mapped_column(SmallInteger, server_default="0")

    __table_args__ = (
        CheckConstraint(f"type IN {PHONE_TYPES}", name="type"),
        ForeignKeyConstraint(
            ["workspace_id", "contact_id"],
            ["contacts.workspace_id", "contacts.id"],
            ondelete="CASCADE",
            name="fk_contact_phones_contact",
        ),
        Index("ix_contact_phones_number", "workspace_id", "number"),
    )


class ContactExternalId(Base):
    """A partner system's key for a contact: unique per workspace and system."""

    __tablename__ = "contact_external_ids"

    workspace_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    system: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(255), primary_key=True)
    contact_id: Mapped[uuid.UUID]

    __table_args__ = (
        ForeignKeyConstraint(
            ["workspace_id", "contact_id"],
            ["contacts.workspace_id", "contacts.id"],
            ondelete="CASCADE",
            name="fk_contact_external_ids_contact",
        ),
        Index("ix_contact_external_ids_contact", "workspace_id", "contact_id"),
    )
