"""Loyalty writes: each account keeps the time its next lot falls due (release or expiry), so
a write settles only when something is due.

Revision ID: 0011_loyalty_writes
Revises: 0009_cases
Create Date: 2026-11-22 21:30:00.000000+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_loyalty_writes"
down_revision: str | None = "0009_cases"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The earliest time any lot of the account needs settling: a pending lot's release, an
# available lot's expiry while it holds points. NULL: nothing will ever fall due.
DUE_OF_LOTS = """
SELECT min(CASE WHEN l.state = 'pending' THEN l.available_at ELSE l.expires_at END)
FROM loyalty_lots l
WHERE l.workspace_id = a.workspace_id AND l.account_id = a.id
  AND (l.state = 'pending' OR (l.state = 'available' AND l.remaining > 0))
"""

# The service never changes a lot's times; a manual correction of them (a data fix) must not
# leave the account's due time later than the lot's, or the account would skip settling it.
LOT_TIMES_FUNCTION = """
CREATE OR REPLACE FUNCTION crm_loyalty_lot_times_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  UPDATE loyalty_accounts
  SET next_due_at = LEAST(next_due_at,
                          CASE WHEN NEW.state = 'pending' THEN NEW.available_at
                               WHEN NEW.state = 'available' AND NEW.remaining > 0
                               THEN NEW.expires_at END)
  WHERE workspace_id = NEW.workspace_id AND id = NEW.account_id
    AND (NEW.state = 'pending' OR (NEW.state = 'available' AND NEW.remaining > 0));
  RETURN NULL;
END
$$
"""


def upgrade() -> None:
    op.add_column(
        "loyalty_accounts",
        sa.Column("next_due_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.execute(f"UPDATE loyalty_accounts a SET next_due_at = ({DUE_OF_LOTS})")
    op.execute(LOT_TIMES_FUNCTION)
    op.execute(
        "CREATE TRIGGER lot_times_changed AFTER UPDATE OF available_at, expires_at "
        "ON loyalty_lots FOR EACH ROW EXECUTE FUNCTION crm_loyalty_lot_times_changed()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS lot_times_changed ON loyalty_lots")
    op.execute("DROP FUNCTION IF EXISTS crm_loyalty_lot_times_changed()")
    op.drop_column("loyalty_accounts", "next_due_at")
