"""Planner statistics for interactions and contacts before their first ANALYZE.

A foreign-key check looks its row up by ``workspace_id = $1 AND id = $2``, and PostgreSQL keeps
that plan for the life of the connection. Planned while the table is new and unanalyzed, the
default estimate (``workspace_id = $1`` matches 0.5 % of the rows) makes every index that
starts with ``workspace_id`` and holds ``id`` further on look as cheap as the primary key; the
plan kept may then walk ``ix_interactions_occurred`` through all of the workspace's rows for
each check. Batch ingest checks one such key per external id: on a fresh database each batch
of 1,000 got slower as the table grew (about 20 ms at 1,000 rows, 150 ms at 19,000), until
autovacuum's first ANALYZE replaced the plan.

Until that first ANALYZE, the seeded statistic says a workspace holds the whole table: the
primary key is then the only cheap lookup, which it is. ANALYZE overwrites it with the real
figures; a table that has statistics already is left alone. PostgreSQL 18 is the first to let
a table's owner set them (``pg_restore_attribute_stats``); older servers are left as they were.

Revision ID: 0010_ingest_planner_stats
Revises: 0009_cases
Create Date: 2026-11-22 21:30:00.000000+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0010_ingest_planner_stats"
down_revision: str | None = "0009_cases"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The tables batch ingest's foreign-key checks look rows up in by (workspace_id, id).
TABLES = ("interactions", "contacts")

SEED_WORKSPACE_STATISTIC = """
DO $seed$
BEGIN
  IF current_setting('server_version_num')::int >= 180000 AND NOT EXISTS (
    SELECT FROM pg_stats
    WHERE schemaname = current_schema() AND tablename = '{table}' AND attname = 'workspace_id'
  ) THEN
    PERFORM pg_restore_attribute_stats(
      'schemaname', current_schema()::text,
      'relname', '{table}'::text,
      'attname', 'workspace_id'::text,
      'inherited', false,
      'null_frac', 0::real,
      'avg_width', 16,
      'n_distinct', 1::real
    );
  END IF;
END
$seed$
"""


def upgrade() -> None:
    for table in TABLES:
        op.execute(SEED_WORKSPACE_STATISTIC.format(table=table))


def downgrade() -> None:
    # Statistics are not schema: the next ANALYZE replaces them, and clearing them here could
    # also throw away real ones gathered since.
    pass
