"""Contacts' trigram index on ``search_text`` alone, without ``workspace_id``.

The index of 0002 was a GIN over ``(workspace_id, search_text)``: every search intersected the
trigrams' posting lists with the workspace's, and a workspace holding most of the table has
one entry listing all its contacts, decoded in large part on every search. On a million
contacts that made the index scan of a common name three to four times slower than the
trigram lists alone (``nguyen`` AND ``van``: 50 ms against 13 ms; a phone number: 7 ms
against 3 ms). Searches still restrict rows to the workspace (the view and the repository
say so), now on the rows the trigrams select; a small workspace in a large table is found
through the primary key (``workspace_id`` leads it), which the planner picks from the
column's statistics.

Searches stop at a cap of candidates, and the planner chooses between the index and reading
the table until the cap from how common a pattern is: ``search_text`` gets a statistics
target of 1000, as 100 sampled texts misjudged a name in 0.15 % of the contacts as 1 % (one of
the hundred happened to hold it) and the table was read, 130,000 rows, instead of 1,500 index
entries. ``ANALYZE`` of the column brings the new statistics in at once.

Revision ID: 0012_search_trigrams
Revises: 0011_loyalty_writes
Create Date: 2026-11-22 21:40:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0012_search_trigrams"
down_revision: str | None = "0011_loyalty_writes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _build_search_index(columns: list[str]) -> None:
    # Building a trigram index over a large table is much faster with room to sort in.
    op.execute("SET LOCAL maintenance_work_mem = '256MB'")
    op.create_index(
        "ix_contacts_search",
        "contacts",
        columns,
        unique=False,
        postgresql_using="gin",
        postgresql_ops={"search_text": "gin_trgm_ops"},
    )


def upgrade() -> None:
    op.drop_index("ix_contacts_search", table_name="contacts", postgresql_using="gin")
    _build_search_index(["search_text"])
    op.execute("ALTER TABLE contacts ALTER COLUMN search_text SET STATISTICS 1000")
    op.execute("ANALYZE contacts (search_text)")


def downgrade() -> None:
    op.execute("ALTER TABLE contacts ALTER COLUMN search_text SET STATISTICS -1")
    op.drop_index("ix_contacts_search", table_name="contacts", postgresql_using="gin")
    _build_search_index(["workspace_id", "search_text"])
