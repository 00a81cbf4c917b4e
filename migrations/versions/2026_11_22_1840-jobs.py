"""Workspace ids for periodic jobs, which run without a workspace bound.

Revision ID: 0006_jobs
Revises: 0005_interactions_purchases
Create Date: 2026-11-22 18:40:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

from app.db.rls import grant_app_role, migration_app_role

revision: str = "0006_jobs"
down_revision: str | None = "0005_interactions_purchases"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Row-level security hides the workspaces table from the service role; a job needs the ids
# (and nothing else) to visit each workspace in turn.
WORKSPACE_IDS_FUNCTION = """
CREATE OR REPLACE FUNCTION crm_workspace_ids() RETURNS SETOF uuid
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, public
AS $$ SELECT id FROM public.workspaces ORDER BY id $$
"""


def upgrade() -> None:
    op.execute(WORKSPACE_IDS_FUNCTION)
    op.execute("REVOKE ALL ON FUNCTION crm_workspace_ids() FROM PUBLIC")
    for statement in grant_app_role(migration_app_role()):
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS crm_workspace_ids()")
