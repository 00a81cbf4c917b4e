"""Loyalty accounts keep their qualifying total: a plain write adds its share instead of
summing the whole tier window of the account's ledger.

Revision ID: 0014_loyalty_qualifying
Revises: 0013_contact_reads
Create Date: 2026-11-23 00:40:00+00:00

A member's tier follows the sum of its qualifying entries over the programme's rolling window.
Summed at every write, that read every entry of the window while the account's row was locked:
a busy member's writes grew slower with each entry, and on one hot account every writer
queued behind that sum. Each account now keeps the total with the time it stays exact until,
``qualifying_until``: the moment its oldest qualifying entry leaves the window (infinity with
none in it). Until then nothing can leave the window, so a write adds its own share; at or
after it, or when the programme has changed since (``qualifying_program_version``), the write
sums the window as before and keeps the new total. NULL is unknown: the ledger's general path
(Python, ``app.loyalty.ledger``) leaves it so, and the next plain write sums.

The window is ``qualifies_at > now - N months``; an entry leaves it at ``qualifies_at + N
months`` or later (month arithmetic clamps to the month's last day), never earlier, so the
kept total is never used past the time it was exact.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import sqlalchemy as sa
from alembic import op

from app.db.rls import grant_app_role, migration_app_role

revision: str = "0014_loyalty_qualifying"
down_revision: str | None = "0013_contact_reads"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _loyalty_writes() -> ModuleType:
    """Migration 0011, whose crm_loyalty_write this one changes (and restores on downgrade)."""
    path = Path(__file__).with_name("2026_11_22_2130-loyalty_writes.py")
    spec = importlib.util.spec_from_file_location("loyalty_writes_0011", path)
    if spec is None or spec.loader is None:
        raise RuntimeError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


PREVIOUS_WRITE_FUNCTION: str = _loyalty_writes().WRITE_FUNCTION

# What changes in crm_loyalty_write, as (before, after) pairs of its text.
CHANGES = [
    (
        """  v_qualifying bigint := 0;
BEGIN""",
        """  v_qualifying bigint := 0;
  v_oldest timestamptz;
  v_share bigint;
BEGIN""",
    ),
    (
        """    SELECT COALESCE(sum(CASE WHEN p.tier_basis = 'spend' THEN e.qualifying_spend_minor
                             ELSE e.qualifying_points END), 0)::bigint
    INTO v_qualifying
    FROM loyalty_entries e
    WHERE e.workspace_id = p_workspace_id AND e.account_id = a.id
      AND e.qualifies_at > v_now - make_interval(months => p.tier_window_months);
""",
        """    -- This entry's share: a plain earn qualifies its points (nothing else here does).
    v_share := CASE WHEN p_kind = 'earn' AND p.tier_basis = 'points' THEN p_points ELSE 0 END;
    IF a.qualifying_until > v_now AND a.qualifying_program_version = p.version THEN
      -- Nothing has left the window since the total was summed (migration 0014).
      v_qualifying := a.qualifying + v_share;
      IF v_share <> 0 AND a.qualifying_until = 'infinity' THEN
        a.qualifying_until := v_now + make_interval(months => p.tier_window_months);
      END IF;
    ELSE
      -- The window holds the entry just written.
      SELECT COALESCE(sum(q.share), 0)::bigint, min(q.qualifies_at) FILTER (WHERE q.share <> 0)
      INTO v_qualifying, v_oldest
      FROM (SELECT CASE WHEN p.tier_basis = 'spend' THEN e.qualifying_spend_minor
                        ELSE e.qualifying_points END AS share, e.qualifies_at
            FROM loyalty_entries e
            WHERE e.workspace_id = p_workspace_id AND e.account_id = a.id
              AND e.qualifies_at > v_now - make_interval(months => p.tier_window_months)) q;
      a.qualifying_until := COALESCE(
        v_oldest + make_interval(months => p.tier_window_months), 'infinity');
    END IF;
    a.qualifying := v_qualifying;
    a.qualifying_program_version := p.version;
""",
    ),
    (
        """    next_due_at = a.next_due_at, tier_id = a.tier_id
  WHERE""",
        """    next_due_at = a.next_due_at, tier_id = a.tier_id, qualifying = a.qualifying,
    qualifying_until = a.qualifying_until,
    qualifying_program_version = a.qualifying_program_version
  WHERE""",
    ),
]


def _changed(function: str) -> str:
    for before, after in CHANGES:
        if function.count(before) != 1:
            raise RuntimeError(f"crm_loyalty_write no longer reads {before!r}")
        function = function.replace(before, after)
    return function


WRITE_FUNCTION = _changed(PREVIOUS_WRITE_FUNCTION)


def upgrade() -> None:
    op.add_column("loyalty_accounts", sa.Column("qualifying", sa.BigInteger(), nullable=True))
    op.add_column(
        "loyalty_accounts",
        sa.Column("qualifying_until", sa.DateTime(timezone=True), nullable=True),
    )
    op.add_column(
        "loyalty_accounts",
        sa.Column("qualifying_program_version", sa.BigInteger(), nullable=True),
    )
    op.execute(WRITE_FUNCTION)
    for statement in grant_app_role(migration_app_role()):
        op.execute(statement)


def downgrade() -> None:
    op.execute(PREVIOUS_WRITE_FUNCTION)
    op.drop_column("loyalty_accounts", "qualifying_program_version")
    op.drop_column("loyalty_accounts", "qualifying_until")
    op.drop_column("loyalty_accounts", "qualifying")
