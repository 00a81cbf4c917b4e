from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKeyConstraint,
    Index,
    Integer,
    SmallInteger,
    String,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db.base import Base, TimestampedMixin, VersionedMixin, WorkspaceScopedMixin

PURCHASE_CHANNELS = ("store", "web", "mobile_app", "phone", "marketplace", "social", "other")
PURCHASE_STATUSES = ("completed", "refunded", "partially_refunded", "cancelled")


class Purchase(WorkspaceScopedMixin, TimestampedMixin, VersionedMixin, Base):
    """An order a contact paid for, with its line items; amounts in the currency's minor unit."""

    __tablename__ = "purchases"

    contact_id: Mapped[uuid.UUID]
    occurred_at: Mapped[datetime]
    channel: Mapped[str] = mapped_column(String(20))
    store_id: Mapped[str | None] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(20), server_default="completed")
    currency: Mapped[str] = mapped_column(String(3))
    total_minor: Mapped[int] = mapped_column(BigInteger)
    refunded_minor: Mapped[int] = mapped_column(BigInteger, server_default="0")
    attributes: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")

    items: Mapped[list[PurchaseItem]] = relationship(
        lazy="raise",
        order_by="PurchaseItem.line",
        cascade="all, delete-orphan",
        passive_deletes=True,
    )
    external_ids: Mapped[list[PurchaseExternalId]] = relationship(
        lazy="raise", cascade="all, delete-orphan", passive_deletes=True
    )

    __table_args__ = (
        CheckConstraint(f"channel IN {PURCHASE_CHANNELS}", name="channel"),
        CheckConstraint(f"status IN {PURCHASE_STATUSES}", name="status"),
        CheckConstraint("total_minor >= 0", name="total"),
        # The last line of defence against refunding more than was paid.
        CheckConstraint("refunded_minor BETWEEN 0 AND total_minor", name="refunded"),
        ForeignKeyConstraint(
            ["workspace_id", "contact_id"],
            ["contacts.workspace_id", "contacts.id"],
            ondelete="CASCADE",
            name="fk_purchases_contact",
        ),
        Index("ix_purchases_contact", "workspace_id", "contact_id", "occurred_at", "id"),
        Index("ix_purchases_occurred", "workspace_id", "occurred_at", "id"),
    )
    __mapper_args__ = {"version_id_col": VersionedMixin.version}  # noqa: RUF012


class PurchaseItem(Base):
    """A line of a purchase: amount = quantity * unit price - discount."""

    __tablename__ = "purchase_items"

    workspace_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    purchase_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    line: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    sku: Mapped[str | None] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(300))
    category: Mapped[str | None] = mapped_column(String(100))
    quantity: Mapped[int] = mapped_column(Integer)
    unit_price_minor: Mapped[int] = mapped_column(BigInteger)
    discount_minor: Mapped[int] = mapped_column(BigInteger, server_default="0")
    refunded_quantity: Mapped[int] = mapped_column(Integer, server_default="0")

    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity"),
        CheckConstraint("unit_price_minor >= 0", name="unit_price"),
        CheckConstraint(
            "discount_minor BETWEEN 0 AND quantity * unit_price_minor", name="discount"
        ),
        CheckConstraint("refunded_quantity BETWEEN 0 AND quantity", name="refunded_quantity"),
        ForeignKeyConstraint(
            ["workspace_id", "purchase_id"],
            ["purchases.workspace_id", "purchases.id"],
            ondelete="CASCADE",
            name="fk_purchase_items_purchase",
        ),
    )


class PurchaseRefund(WorkspaceScopedMixin, Base):
    """Money given back on a purchase, by amount or by returned items."""

    __tablename__ = "purchase_refunds"

    purchase_id: Mapped[uuid.UUID]
    # Copied from the purchase so a contact's timeline reads refunds by index.
    contact_id: Mapped[uuid.UUID]
    occurred_at: Mapped[datetime]
    currency: Mapped[str] = mapped_column(String(3))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    # [{"line": 1, "quantity": 2}, ...] when items were returned.
    items: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, server_default="[]")
    reason: Mapped[str | None] = mapped_column(String(500))
    # The POS or shop's id of the return: a refund sent again with it is stored once.
    external_id: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())

    __table_args__ = (
        CheckConstraint("amount_minor > 0", name="amount"),
        ForeignKeyConstraint(
            ["workspace_id", "purchase_id"],
            ["purchases.workspace_id", "purchases.id"],
            ondelete="CASCADE",
            name="fk_purchase_refunds_purchase",
        ),
        ForeignKeyConstraint(
            ["workspace_id", "contact_id"],
            ["contacts.workspace_id", "contacts.id"],
            ondelete="CASCADE",
            name="fk_purchase_refunds_contact",
        ),
        Index("ix_purchase_refunds_purchase", "workspace_id", "purchase_id"),
        Index(
            "ix_purchase_refunds_external_id",
            "workspace_id",
            "purchase_id",
            "external_id",
            unique=True,
        ),
        Index("ix_purchase_refunds_contact", "workspace_id", "contact_id", "occurred_at", "id"),
    )


class PurchaseExternalId(Base):
    """The POS or shop order id: unique per workspace and system, what makes ingest idempotent."""

    __tablename__ = "purchase_external_ids"

    workspace_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    system: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(255), primary_key=True)
    purchase_id: Mapped[uuid.UUID]

    __table_args__ = (
        ForeignKeyConstraint(
            ["workspace_id", "purchase_id"],
            ["purchases.workspace_id", "purchases.id"],
            ondelete="CASCADE",
            name="fk_purchase_external_ids_purchase",
        ),
        Index("ix_purchase_external_ids_purchase", "workspace_id", "purchase_id"),
    )
