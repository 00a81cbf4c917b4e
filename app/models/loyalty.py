"""Loyalty: programmes, tiers, member accounts, the append-only points ledger, lots, rewards.

Points are integers (BIGINT). The ledger (``loyalty_entries`` and ``loyalty_allocations``) is
append-only, enforced by triggers in the database; account counters and lot remainders are
caches that only ever change together with an appended entry, under the account's row lock.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, TimestampedMixin, VersionedMixin, WorkspaceScopedMixin

CLAWBACK_POLICIES = ("allow_negative", "cap_at_zero")
TIER_BASES = ("points", "spend")
ENTRY_KINDS = ("earn", "redeem", "adjust", "expire", "reverse", "release")
LOT_STATES = ("pending", "available", "expired")
REDEMPTION_STATUSES = ("completed", "reversed")


class LoyaltyProgram(WorkspaceScopedMixin, TimestampedMixin, VersionedMixin, Base):
    """Earn rules, pending period, expiry and clawback policy of one points currency."""

    __tablename__ = "loyalty_programs"

    name: Mapped[str] = mapped_column(String(200))
    point_name: Mapped[str] = mapped_column(String(50), server_default="points")
    # [{"currency": "THB", "spend_minor": 2500, "points": 1, "min_spend_minor": 0}, ...]
    earn_rates: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, server_default="[]")
    # {"beverage": 200}: multipliers in hundredths (200 = x2), exact integer arithmetic.
    category_multipliers: Mapped[dict[str, int]] = mapped_column(JSONB, server_default="{}")
    first_purchase_bonus: Mapped[int] = mapped_column(BigInteger, server_default="0")
    birthday_multiplier: Mapped[int] = mapped_column(Integer, server_default="100")
    pending_days: Mapped[int] = mapped_column(Integer, server_default="0")
    expiry_months: Mapped[int | None] = mapped_column(Integer)
    clawback_policy: Mapped[str] = mapped_column(String(20), server_default="cap_at_zero")
    tier_basis: Mapped[str] = mapped_column(String(10), server_default="points")
    tier_currency: Mapped[str | None] = mapped_column(String(3))
    tier_window_months: Mapped[int] = mapped_column(Integer, server_default="12")
    active: Mapped[bool] = mapped_column(Boolean, server_default="true")

    __table_args__ = (
        CheckConstraint(f"clawback_policy IN {CLAWBACK_POLICIES}", name="clawback_policy"),
        CheckConstraint(f"tier_basis IN {TIER_BASES}", name="tier_basis"),
        CheckConstraint(
            "(tier_basis = 'spend') = (tier_currency IS NOT NULL)", name="tier_currency"
        ),
        CheckConstraint("pending_days BETWEEN 0 AND 3650", name="pending_days"),
        CheckConstraint("expiry_months IS NULL OR expiry_months BETWEEN 1 AND 1200", name="expiry"),
        CheckConstraint("tier_window_months BETWEEN 1 AND 120", name="tier_window"),
        CheckConstraint("first_purchase_bonus >= 0", name="first_purchase_bonus"),
        CheckConstraint("birthday_multiplier BETWEEN 100 AND 10000", name="birthday_multiplier"),
    )
    __mapper_args__ = {"version_id_col": VersionedMixin.version}  # noqa: RUF012


class LoyaltyTier(WorkspaceScopedMixin, TimestampedMixin, Base):
    """A level members reach when their qualifying points (or spend) in the window reach
    ``threshold``."""

    __tablename__ = "loyalty_tiers"

    program_id: Mapped[uuid.UUID]
    name: Mapped[str] = mapped_column(String(100))
    threshold: Mapped[int] = mapped_column(BigInteger)
    # Hundredths: 150 = x1.5.
    earn_multiplier: Mapped[int] = mapped_column(Integer, server_default="100")
    benefits: Mapped[str | None] = mapped_column(String(2000))

    __table_args__ = (
        CheckConstraint("threshold >= 0", name="threshold"),
        CheckConstraint("earn_multiplier BETWEEN 100 AND 10000", name="earn_multiplier"),
        ForeignKeyConstraint(
            ["workspace_id", "program_id"],
            ["loyalty_programs.workspace_id", "loyalty_programs.id"],
            ondelete="CASCADE",
            name="fk_loyalty_tiers_program",
        ),
        Index("ix_loyalty_tiers_threshold", "workspace_id", "program_id", "threshold", unique=True),
        Index("ix_loyalty_tiers_name", "workspace_id", "program_id", "name", unique=True),
    )


class LoyaltyAccount(WorkspaceScopedMixin, TimestampedMixin, Base):
    """A contact's membership of a programme, with counters cached from its ledger.

    ``available`` = sum of the remainders of available lots - ``debt``; ``pending`` = sum of
    the remainders of pending lots; ``balance`` = available + pending = sum of its entries.
    ``version`` counts entries: the n-th entry of the account has ``seq`` n + 1.
    """

    __tablename__ = "loyalty_accounts"

    program_id: Mapped[uuid.UUID]
    contact_id: Mapped[uuid.UUID]
    tier_id: Mapped[uuid.UUID | None]
    allow_negative: Mapped[bool] = mapped_column(Boolean, server_default="false")
    available: Mapped[int] = mapped_column(BigInteger, server_default="0")
    pending: Mapped[int] = mapped_column(BigInteger, server_default="0")
    debt: Mapped[int] = mapped_column(BigInteger, server_default="0")
    balance: Mapped[int] = mapped_column(BigInteger, server_default="0")
    lifetime_earned: Mapped[int] = mapped_column(BigInteger, server_default="0")
    redeemed: Mapped[int] = mapped_column(BigInteger, server_default="0")
    expired: Mapped[int] = mapped_column(BigInteger, server_default="0")
    version: Mapped[int] = mapped_column(BigInteger, server_default="1")
    # No lot of the account falls due (a pending lot's release, a holding lot's expiry)
    # before this time; NULL: none ever will. It may be earlier than the true time (settling
    # then finds nothing and moves it on), never later: a write settles only once it is past.
    next_due_at: Mapped[datetime | None]
    # The sum of the qualifying entries in the programme's tier window, exact until
    # ``qualifying_until`` (when the oldest of them leaves the window) for the programme at
    # ``qualifying_program_version``; NULL: unknown, summed by the next plain write (see
    # migration 0014_loyalty_qualifying).
    qualifying: Mapped[int | None] = mapped_column(BigInteger)
    qualifying_until: Mapped[datetime | None]
    qualifying_program_version: Mapped[int | None] = mapped_column(BigInteger)

    __table_args__ = (
        # The last line of defence against spending points that are not there.
        CheckConstraint("allow_negative OR available >= 0", name="available"),
        CheckConstraint("pending >= 0", name="pending"),
        CheckConstraint("debt >= 0 AND (allow_negative OR debt = 0)", name="debt"),
        CheckConstraint("available >= -debt", name="available_debt"),
        CheckConstraint("balance = available + pending", name="balance"),
        CheckConstraint("lifetime_earned >= 0 AND redeemed >= 0 AND expired >= 0", name="counters"),
        ForeignKeyConstraint(
            ["workspace_id", "program_id"],
            ["loyalty_programs.workspace_id", "loyalty_programs.id"],
            name="fk_loyalty_accounts_program",
        ),
        ForeignKeyConstraint(
            ["workspace_id", "contact_id"],
            ["contacts.workspace_id", "contacts.id"],
            ondelete="CASCADE",
            name="fk_loyalty_accounts_contact",
        ),
        ForeignKeyConstraint(
            ["workspace_id", "tier_id"],
            ["loyalty_tiers.workspace_id", "loyalty_tiers.id"],
            name="fk_loyalty_accounts_tier",
        ),
        Index(
            "ix_loyalty_accounts_member", "workspace_id", "program_id", "contact_id", unique=True
        ),
        Index("ix_loyalty_accounts_contact", "workspace_id", "contact_id"),
    )


class LoyaltyEntry(WorkspaceScopedMixin, Base):
    """One append-only ledger entry. ``amount`` = available_change + pending_change is its
    effect on the balance; ``balance_after`` chains the account's entries by ``seq``."""

    __tablename__ = "loyalty_entries"

    account_id: Mapped[uuid.UUID]
    program_id: Mapped[uuid.UUID]
    seq: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(10))
    amount: Mapped[int] = mapped_column(BigInteger)
    available_change: Mapped[int] = mapped_column(BigInteger)
    pending_change: Mapped[int] = mapped_column(BigInteger)
    balance_after: Mapped[int] = mapped_column(BigInteger)
    available_after: Mapped[int] = mapped_column(BigInteger)
    pending_after: Mapped[int] = mapped_column(BigInteger)
    # The business reference that makes the entry unique in its programme, forever
    # (``purchase:<id>``, ``refund:<id>``, or the caller's own).
    reference: Mapped[str | None] = mapped_column(String(255))
    reverses_entry_id: Mapped[uuid.UUID | None]
    # A refund's clawback points at the purchase's earn entry (several refunds, several rows).
    clawback_of_entry_id: Mapped[uuid.UUID | None]
    redemption_id: Mapped[uuid.UUID | None]
    reason: Mapped[str | None] = mapped_column(String(500))
    # What counts towards tiers, and from when (a clawback counts from its earn's time).
    qualifying_points: Mapped[int] = mapped_column(BigInteger, server_default="0")
    qualifying_spend_minor: Mapped[int] = mapped_column(BigInteger, server_default="0")
    qualifies_at: Mapped[datetime]
    # The business time (a purchase's occurred_at); recorded_at is the database clock.
    effective_at: Mapped[datetime]
    recorded_at: Mapped[datetime] = mapped_column(server_default=func.transaction_timestamp())
    api_key_id: Mapped[uuid.UUID | None]
    details: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")

    __table_args__ = (
        CheckConstraint(f"kind IN {ENTRY_KINDS}", name="kind"),
        CheckConstraint("amount = available_change + pending_change", name="amount"),
        CheckConstraint("balance_after = available_after + pending_after", name="after"),
        CheckConstraint("seq >= 2", name="seq"),
        ForeignKeyConstraint(
            ["workspace_id", "account_id"],
            ["loyalty_accounts.workspace_id", "loyalty_accounts.id"],
            ondelete="CASCADE",
            name="fk_loyalty_entries_account",
        ),
        ForeignKeyConstraint(
            ["workspace_id", "reverses_entry_id"],
            ["loyalty_entries.workspace_id", "loyalty_entries.id"],
            name="fk_loyalty_entries_reverses",
        ),
        Index("ix_loyalty_entries_seq", "workspace_id", "account_id", "seq", unique=True),
        Index(
            "ix_loyalty_entries_reference",
            "workspace_id",
            "reference",
            "program_id",
            unique=True,
            postgresql_where=text("reference IS NOT NULL"),
        ),
        Index(
            "ix_loyalty_entries_reverses",
            "workspace_id",
            "reverses_entry_id",
            unique=True,
            postgresql_where=text("reverses_entry_id IS NOT NULL"),
        ),
        Index(
            "ix_loyalty_entries_clawback",
            "workspace_id",
            "clawback_of_entry_id",
            postgresql_where=text("clawback_of_entry_id IS NOT NULL"),
        ),
        Index("ix_loyalty_entries_recorded", "workspace_id", "account_id", "recorded_at", "id"),
        Index("ix_loyalty_entries_qualifying", "workspace_id", "account_id", "qualifies_at"),
    )


class LoyaltyLot(WorkspaceScopedMixin, Base):
    """Points earned together: spendable once available, gone when expired."""

    __tablename__ = "loyalty_lots"

    account_id: Mapped[uuid.UUID]
    entry_id: Mapped[uuid.UUID]
    original: Mapped[int] = mapped_column(BigInteger)
    remaining: Mapped[int] = mapped_column(BigInteger)
    state: Mapped[str] = mapped_column(String(10))
    available_at: Mapped[datetime]
    expires_at: Mapped[datetime | None]
    release_entry_id: Mapped[uuid.UUID | None]
    created_at: Mapped[datetime] = mapped_column(server_default=func.transaction_timestamp())

    __table_args__ = (
        CheckConstraint(f"state IN {LOT_STATES}", name="state"),
        CheckConstraint("original > 0", name="original"),
        # No lot is ever consumed beyond what it held.
        CheckConstraint("remaining BETWEEN 0 AND original", name="remaining"),
        CheckConstraint("state <> 'expired' OR remaining = 0", name="expired_empty"),
        CheckConstraint("expires_at IS NULL OR expires_at > available_at", name="expiry"),
        ForeignKeyConstraint(
            ["workspace_id", "account_id"],
            ["loyalty_accounts.workspace_id", "loyalty_accounts.id"],
            ondelete="CASCADE",
            name="fk_loyalty_lots_account",
        ),
        ForeignKeyConstraint(
            ["workspace_id", "entry_id"],
            ["loyalty_entries.workspace_id", "loyalty_entries.id"],
            ondelete="CASCADE",
            name="fk_loyalty_lots_entry",
        ),
        Index("ix_loyalty_lots_account", "workspace_id", "account_id", "state"),
        Index(
            "ix_loyalty_lots_due_release",
            "workspace_id",
            "available_at",
            postgresql_where=text("state = 'pending'"),
        ),
        Index(
            "ix_loyalty_lots_spendable",
            "workspace_id",
            "account_id",
            "expires_at",
            "available_at",
            "id",
            postgresql_where=text("state = 'available' AND remaining > 0"),
        ),
        Index(
            "ix_loyalty_lots_due_expiry",
            "workspace_id",
            "expires_at",
            postgresql_where=text("state = 'available' AND remaining > 0"),
        ),
    )


class LoyaltyAllocation(WorkspaceScopedMixin, Base):
    """How an entry changed a lot: negative consumed, positive restored. A lot's remaining
    always equals its original plus the sum of its allocations."""

    __tablename__ = "loyalty_allocations"

    entry_id: Mapped[uuid.UUID]
    lot_id: Mapped[uuid.UUID]
    amount: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (
        CheckConstraint("amount <> 0", name="amount"),
        ForeignKeyConstraint(
            ["workspace_id", "entry_id"],
            ["loyalty_entries.workspace_id", "loyalty_entries.id"],
            ondelete="CASCADE",
            name="fk_loyalty_allocations_entry",
        ),
        ForeignKeyConstraint(
            ["workspace_id", "lot_id"],
            ["loyalty_lots.workspace_id", "loyalty_lots.id"],
            ondelete="CASCADE",
            name="fk_loyalty_allocations_lot",
        ),
        Index("ix_loyalty_allocations_entry", "workspace_id", "entry_id"),
        Index("ix_loyalty_allocations_lot", "workspace_id", "lot_id"),
    )


class LoyaltyReward(WorkspaceScopedMixin, TimestampedMixin, VersionedMixin, Base):
    """A catalogue item bought with points; ``stock`` null is unlimited."""

    __tablename__ = "loyalty_rewards"

    program_id: Mapped[uuid.UUID]
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(String(2000))
    cost_points: Mapped[int] = mapped_column(BigInteger)
    stock: Mapped[int | None] = mapped_column(BigInteger)
    valid_from: Mapped[datetime | None]
    valid_to: Mapped[datetime | None]
    min_tier_id: Mapped[uuid.UUID | None]
    active: Mapped[bool] = mapped_column(Boolean, server_default="true")

    __table_args__ = (
        CheckConstraint("cost_points > 0", name="cost_points"),
        # Stock never goes below zero, whatever the concurrency.
        CheckConstraint("stock IS NULL OR stock >= 0", name="stock"),
        CheckConstraint(
            "valid_from IS NULL OR valid_to IS NULL OR valid_from < valid_to", name="validity"
        ),
        ForeignKeyConstraint(
            ["workspace_id", "program_id"],
            ["loyalty_programs.workspace_id", "loyalty_programs.id"],
            ondelete="CASCADE",
            name="fk_loyalty_rewards_program",
        ),
        ForeignKeyConstraint(
            ["workspace_id", "min_tier_id"],
            ["loyalty_tiers.workspace_id", "loyalty_tiers.id"],
            name="fk_loyalty_rewards_min_tier",
        ),
        Index("ix_loyalty_rewards_program", "workspace_id", "program_id", "id"),
    )
    __mapper_args__ = {"version_id_col": VersionedMixin.version}  # noqa: RUF012


class LoyaltyRedemption(WorkspaceScopedMixin, Base):
    """Points spent, for a reward or as such; reversing it restores exactly what it consumed."""

    __tablename__ = "loyalty_redemptions"

    account_id: Mapped[uuid.UUID]
    reward_id: Mapped[uuid.UUID | None]
    points: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(10), server_default="completed")
    entry_id: Mapped[uuid.UUID]
    reversal_entry_id: Mapped[uuid.UUID | None]
    reference: Mapped[str | None] = mapped_column(String(255))
    reason: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(server_default=func.transaction_timestamp())
    reversed_at: Mapped[datetime | None]

    __table_args__ = (
        CheckConstraint("points > 0", name="points"),
        CheckConstraint(f"status IN {REDEMPTION_STATUSES}", name="status"),
        CheckConstraint("(status = 'reversed') = (reversal_entry_id IS NOT NULL)", name="reversal"),
        ForeignKeyConstraint(
            ["workspace_id", "account_id"],
            ["loyalty_accounts.workspace_id", "loyalty_accounts.id"],
            ondelete="CASCADE",
            name="fk_loyalty_redemptions_account",
        ),
        ForeignKeyConstraint(
            ["workspace_id", "reward_id"],
            ["loyalty_rewards.workspace_id", "loyalty_rewards.id"],
            name="fk_loyalty_redemptions_reward",
        ),
        ForeignKeyConstraint(
            ["workspace_id", "entry_id"],
            ["loyalty_entries.workspace_id", "loyalty_entries.id"],
            ondelete="CASCADE",
            name="fk_loyalty_redemptions_entry",
        ),
        Index("ix_loyalty_redemptions_account", "workspace_id", "account_id", "id"),
    )
