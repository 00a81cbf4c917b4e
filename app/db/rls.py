"""Row-level security DDL shared by migrations.

Every tenant table gets a policy comparing its workspace column with the transaction's
``app.workspace_id`` setting, which the service sets with ``set_config(..., true)`` at the start
of each transaction. The service's role neither owns the tables nor bypasses RLS, so a query that
forgets its ``WHERE workspace_id = ...`` still sees one workspace only.
"""

from __future__ import annotations

CURRENT_WORKSPACE_FUNCTION = """
CREATE OR REPLACE FUNCTION crm_current_workspace() RETURNS uuid
LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT NULLIF(current_setting('app.workspace_id', true), '')::uuid $$
"""


# The text that trigram indexes and searches compare: Unicode-normalised, lower-cased, without
# Latin diacritics (nguyen van an finds Nguyễn Văn An) and without the Thai tone and
# cantillation marks U+0E47-U+0E4E, which pg_trgm would otherwise treat as word breaks.
# IMMUTABLE so expression indexes can use it; unaccent is pinned to its dictionary for that.
SEARCH_KEY_FUNCTION = r"""
CREATE OR REPLACE FUNCTION crm_search_key(value text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
SET search_path = pg_catalog, public
AS $$
  SELECT regexp_replace(
    lower(public.unaccent('public.unaccent'::regdictionary, normalize(value, NFC))),
    '[็-๎]', '', 'g')
$$
"""


def enable_tenant_rls(table: str, column: str = "workspace_id") -> list[str]:
    """Statements that put ``table`` under the workspace policy."""
    return [
        f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY",
        f"CREATE POLICY workspace_isolation ON {table} "
        f"USING ({column} = crm_current_workspace()) "
        f"WITH CHECK ({column} = crm_current_workspace())",
    ]


def disable_tenant_rls(table: str) -> list[str]:
    return [
        f"DROP POLICY IF EXISTS workspace_isolation ON {table}",
        f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY",
    ]


def migration_app_role() -> str:
    """The service role a running migration grants to: the one the caller names (the test
    suite migrates for a role of its own), else the configured one."""
    from alembic import context

    from app.config import get_settings

    role = context.config.attributes.get("app_role")
    return str(role) if role else get_settings().app_role


def grant_app_role(role: str) -> list[str]:
    """Give the service role data access (no DDL) to what exists now and what comes later.

    Wrapped so that a database without that role (a deployment that runs everything as one
    role) still migrates; such a deployment does not get RLS protection and is warned at start.
    """
    quoted = role.replace('"', '""')
    literal = role.replace("'", "''")
    return [
        f"""
DO $grant$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{literal}') THEN
    GRANT USAGE ON SCHEMA public TO "{quoted}";
    GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO "{quoted}";
    GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO "{quoted}";
    GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA public TO "{quoted}";
    ALTER DEFAULT PRIVILEGES IN SCHEMA public
      GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO "{quoted}";
    ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO "{quoted}";
  END IF;
END
$grant$
"""
    ]
