"""Search through SECURITY DEFINER functions, so trigram indexes serve it under RLS.

Under row-level security PostgreSQL evaluates a query's own conditions after the policy unless
their operators are leakproof, and LIKE is not: every search became a sequential scan of the
workspace. These functions run as the schema owner (not subject to the policies) and restrict
rows to the transaction's workspace themselves, so they can never return another workspace's
rows. Patterns are spelled into the statement as literals (format %L) so the planner can use
the trigram index for them.

Revision ID: 0003_search_functions
Revises: 0002_contacts
Create Date: 2026-11-22 16:10:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

from app.db.rls import grant_app_role, migration_app_role

revision: str = "0003_search_functions"
down_revision: str | None = "0002_contacts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SEARCH_FUNCTION = """
CREATE OR REPLACE FUNCTION crm_search_{table}(p_key text, p_all text[], p_any text[])
RETURNS TABLE (id uuid, score numeric)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, public
AS $fn$
DECLARE
  v_workspace uuid := crm_current_workspace();
  v_sql text;
BEGIN
  IF v_workspace IS NULL THEN
    RETURN;
  END IF;
  v_sql := 'SELECT t.id, round(word_similarity($1, t.search_text)::numeric, 4) '
        || 'FROM {table} t WHERE t.workspace_id = $2{live}';
  SELECT v_sql || coalesce(string_agg(format(' AND t.search_text LIKE %L', p), ''), '')
    INTO v_sql FROM unnest(p_all) AS p;
  IF cardinality(p_any) > 0 THEN
    SELECT v_sql || ' AND (' || string_agg(format('t.search_text LIKE %L', p), ' OR ') || ')'
      INTO v_sql FROM unnest(p_any) AS p;
  END IF;
  RETURN QUERY EXECUTE v_sql USING p_key, v_workspace;
END
$fn$
"""

TABLES = {"contacts": " AND t.merged_into_id IS NULL", "accounts": ""}


def upgrade() -> None:
    for table, live in TABLES.items():
        op.execute(SEARCH_FUNCTION.replace("{table}", table).replace("{live}", live))
        op.execute(f"REVOKE ALL ON FUNCTION crm_search_{table}(text, text[], text[]) FROM PUBLIC")
    for statement in grant_app_role(migration_app_role()):
        op.execute(statement)


def downgrade() -> None:
    for table in TABLES:
        op.execute(f"DROP FUNCTION IF EXISTS crm_search_{table}(text, text[], text[])")
