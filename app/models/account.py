from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    ForeignKeyConstraint,
    Index,
    LargeBinary,
    String,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db.base import Base, TimestampedMixin, VersionedMixin, WorkspaceScopedMixin

ACCOUNT_TYPES = ("customer", "prospect", "partner", "distributor", "retailer", "supplier")
ACCOUNT_SIZES = ("micro", "small", "medium", "large", "enterprise")


class Account(WorkspaceScopedMixin, TimestampedMixin, VersionedMixin, Base):
    """An organisation: a customer, or an intermediary such as a distributor or retailer."""

    __tablename__ = "accounts"

    name: Mapped[str] = mapped_column(String(300))
    type: Mapped[str] = mapped_column(String(20), server_default="customer")
    # Lower-cased, without scheme or "www.": unique within the workspace.
    domain: Mapped[str | None] = mapped_column(String(253))
    industry: Mapped[str | None] = mapped_column(String(100))
    size: Mapped[str | None] = mapped_column(String(20))
    parent_account_id: Mapped[uuid.UUID | None]
    owner_id: Mapped[str | None] = mapped_column(String(200))
    attributes: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    # crm_search_key() of name and domain, kept by the service; trigram-indexed.
    search_text: Mapped[str] = mapped_column(server_default="")
    # UCA sort key of the name (app.kit.collation).
    name_sort_key: Mapped[bytes] = mapped_column(LargeBinary)

    external_ids: Mapped[list[AccountExternalId]] = relationship(
        lazy="raise", cascade="all, delete-orphan", passive_deletes=True
    )

    __table_args__ = (
        CheckConstraint(f"type IN {ACCOUNT_TYPES}", name="type"),
        CheckConstraint(f"size IS NULL OR size IN {ACCOUNT_SIZES}", name="size"),
        CheckConstraint(
            "parent_account_id IS NULL OR parent_account_id <> id", name="not_own_parent"
        ),
        ForeignKeyConstraint(
            ["workspace_id", "parent_account_id"],
            ["accounts.workspace_id", "accounts.id"],
            ondelete="SET NULL (parent_account_id)",
            name="fk_accounts_parent",
        ),
        Index(
            "uq_accounts_domain",
            "workspace_id",
            "domain",
            unique=True,
            postgresql_where=text("domain IS NOT NULL"),
        ),
        # btree_gin lets one GIN index serve "this workspace AND this text".
        Index(
            "ix_accounts_search",
            "workspace_id",
            "search_text",
            postgresql_using="gin",
            postgresql_ops={"search_text": "gin_trgm_ops"},
        ),
        Index("ix_accounts_name_sort", "workspace_id", "name_sort_key", "id"),
        Index("ix_accounts_created", "workspace_id", "created_at", "id"),
        Index("ix_accounts_updated", "workspace_id", "updated_at", "id"),
        Index("ix_accounts_parent", "workspace_id", "parent_account_id"),
    )
    __mapper_args__ = {"version_id_col": VersionedMixin.version}  # noqa: RUF012


class AccountExternalId(Base):
    """A partner system's key for an account: unique per workspace and system."""

    __tablename__ = "account_external_ids"

    workspace_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    system: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(255), primary_key=True)
    account_id: Mapped[uuid.UUID]

    __table_args__ = (
        ForeignKeyConstraint(
            ["workspace_id", "account_id"],
            ["accounts.workspace_id", "accounts.id"],
            ondelete="CASCADE",
            name="fk_account_external_ids_account",
        ),
        Index("ix_account_external_ids_account", "workspace_id", "account_id"),
    )
