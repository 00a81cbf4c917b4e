"""A loyalty write sums the points expiring soon from the lots that hold points only.

Revision ID: 0015_loyalty_expiring
Revises: 0014_loyalty_qualifying
Create Date: 2026-11-23 01:20:00+00:00

A lot a redemption empties stays ``available`` with nothing left, so an account that earns and
spends often gathers many of them. The sum of what expires within 90 days asked for pending or
available lots at once, which no partial index answers: it read every lot of the account, empty
or not, while holding the account's row. It now reads available lots holding points through
their own index (``ix_loyalty_lots_spendable``, in expiry order, only up to 90 days ahead) and
pending lots through the account's index; ``app.loyalty.repository`` sums them the same way.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path

from alembic import op

from app.db.rls import grant_app_role, migration_app_role

revision: str = "0015_loyalty_expiring"
down_revision: str | None = "0014_loyalty_qualifying"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _previous_write_function() -> str:
    """crm_loyalty_write as migration 0014 left it (changed here, restored on downgrade)."""
    path = Path(__file__).with_name("2026_11_23_0040-loyalty_qualifying.py")
    spec = importlib.util.spec_from_file_location("loyalty_qualifying_0014", path)
    if spec is None or spec.loader is None:
        raise RuntimeError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    function: str = module.WRITE_FUNCTION
    return function


PREVIOUS_WRITE_FUNCTION = _previous_write_function()

BEFORE = """    FROM loyalty_lots l
    WHERE l.workspace_id = p_workspace_id AND l.account_id = a.id
      AND l.state IN ('pending', 'available') AND l.remaining > 0
      AND l.expires_at <= v_now + interval '90 days';"""
AFTER = """    FROM (
      SELECT l.remaining, l.expires_at FROM loyalty_lots l
      WHERE l.workspace_id = p_workspace_id AND l.account_id = a.id
        AND l.state = 'available' AND l.remaining > 0
        AND l.expires_at <= v_now + interval '90 days'
      UNION ALL
      SELECT l.remaining, l.expires_at FROM loyalty_lots l
      WHERE l.workspace_id = p_workspace_id AND l.account_id = a.id
        AND l.state = 'pending' AND l.remaining > 0
        AND l.expires_at <= v_now + interval '90 days') l;"""

if PREVIOUS_WRITE_FUNCTION.count(BEFORE) != 1:
    raise RuntimeError("crm_loyalty_write no longer sums expiring points as migration 0011 did")
WRITE_FUNCTION = PREVIOUS_WRITE_FUNCTION.replace(BEFORE, AFTER)


def upgrade() -> None:
    op.execute(WRITE_FUNCTION)
    for statement in grant_app_role(migration_app_role()):
        op.execute(statement)


def downgrade() -> None:
    op.execute(PREVIOUS_WRITE_FUNCTION)
