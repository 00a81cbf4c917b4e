"""Search through workspace views instead of SECURITY DEFINER functions.

Row-level security evaluates a query's own conditions after the policy unless their operators
are leakproof, and LIKE and regular-expression matching are not, so a search under the policy
was a sequential scan of the workspace. Migration 0003 moved the matching into functions
running as the owner; they could return matching ids only, so list filters, ranking and the
page limit ran outside, over every match (seconds for a common name on a million contacts).

These views, owned by the schema owner and so not subject to the policies, restrict rows to the
transaction's workspace themselves. Being plain views (no security barrier), the planner pushes
search conditions down to the trigram index, and the service can filter, rank and limit in one
statement. They select every column of their table: a migration that adds a column to
``contacts`` or ``accounts`` recreates the view (a test compares the columns).

Revision ID: 0004_search_views
Revises: 0003_search_functions
Create Date: 2026-11-22 17:00:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

from app.db.rls import grant_app_role, migration_app_role

revision: str = "0004_search_views"
down_revision: str | None = "0003_search_functions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("contacts", "accounts")


def upgrade() -> None:
    for table in TABLES:
        op.execute(f"DROP FUNCTION IF EXISTS crm_search_{table}(text, text[], text[])")
        op.execute(
            f"CREATE VIEW {table}_searchable AS "
            f"SELECT * FROM {table} WHERE workspace_id = crm_current_workspace()"
        )
        op.execute(f"REVOKE ALL ON {table}_searchable FROM PUBLIC")
    for statement in grant_app_role(migration_app_role()):
        op.execute(statement)


def downgrade() -> None:
    for table in TABLES:
        op.execute(f"DROP VIEW IF EXISTS {table}_searchable")
    # The functions of 0003 come back by running its upgrade again.
    import importlib.util
    from pathlib import Path

    path = Path(__file__).with_name("2026_11_22_1610-search_functions.py")
    spec = importlib.util.spec_from_file_location("search_functions_0003", path)
    if spec is None or spec.loader is None:
        raise RuntimeError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.upgrade()
