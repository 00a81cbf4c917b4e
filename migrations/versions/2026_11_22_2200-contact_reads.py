"""A contact's API document in one round trip, for the hot by-id read.

Revision ID: 0013_contact_reads
Revises: 0012_search_trigrams
Create Date: 2026-11-22 22:00:00+00:00

The function binds the workspace for row-level security and builds the response body in the
same statement, so the read runs outside an explicit transaction: no BEGIN, no separate
``set_config``, no COMMIT, and no per-row work in Python. It runs as its caller (SECURITY
INVOKER), so the tables' policies apply exactly as to any other statement of the service.

The document's shape is the ``Contact`` schema of the API; ``tests/contact`` compares the
two on contacts that use every field, so they cannot drift apart unnoticed.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

from app.db.rls import grant_app_role, migration_app_role

revision: str = "0013_contact_reads"
down_revision: str | None = "0012_search_trigrams"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# RFC 3339 in UTC as the API writes it (Python's isoformat): microseconds only when not zero.
UTC_TEXT_FUNCTION = """
CREATE OR REPLACE FUNCTION crm_utc_text(p_at timestamptz) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog
AS $$
  SELECT to_char(p_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS')
      || CASE WHEN extract(microseconds FROM p_at)::bigint % 1000000 = 0 THEN ''
              ELSE to_char(p_at AT TIME ZONE 'UTC', '.US') END
      || 'Z'
$$
"""

CONTACT_READ_FUNCTION = """
CREATE OR REPLACE FUNCTION crm_contact_read(p_workspace_id uuid, p_contact_id uuid)
RETURNS TABLE (merged_into_id uuid, version integer, body text)
LANGUAGE plpgsql
SET search_path = pg_catalog, public
AS $$
BEGIN
  -- Local to the caller's transaction: the statement's own when called outside one.
  PERFORM set_config('app.workspace_id', p_workspace_id::text, true);
  RETURN QUERY
  SELECT c.merged_into_id, c.version, json_build_object(
    'id', c.id,
    'given_name', c.given_name,
    'family_name', c.family_name,
    'display_name', c.display_name,
    'emails', COALESCE((
      SELECT json_agg(json_build_object('email', e.email, 'primary', e.is_primary)
                      ORDER BY e.position)
      FROM contact_emails e
      WHERE e.workspace_id = c.workspace_id AND e.contact_id = c.id), '[]'::json),
    'phones', COALESCE((
      SELECT json_agg(json_build_object('number', p.number, 'type', p.type,
                                        'primary', p.is_primary)
                      ORDER BY p.position)
      FROM contact_phones p
      WHERE p.workspace_id = c.workspace_id AND p.contact_id = c.id), '[]'::json),
    'locale', c.locale,
    'time_zone', c.time_zone,
    'birthday', c.birthday,
    'addresses', c.addresses,
    'lifecycle_stage', c.lifecycle_stage,
    'account_id', c.account_id,
    'owner_id', c.owner_id,
    'tags', to_json(c.tags),
    'attributes', c.attributes,
    'external_ids', COALESCE((
      SELECT json_object_agg(x.system, x.value ORDER BY x.system COLLATE "C", x.value)
      FROM contact_external_ids x
      WHERE x.workspace_id = c.workspace_id AND x.contact_id = c.id), '{}'::json),
    'acquisition_source', c.acquisition_source,
    'acquisition_channel', c.acquisition_channel,
    'created_at', crm_utc_text(c.created_at),
    'updated_at', crm_utc_text(c.updated_at),
    'version', c.version
  )::text
  FROM contacts c
  WHERE c.workspace_id = p_workspace_id AND c.id = p_contact_id;
END
$$
"""


def upgrade() -> None:
    op.execute(UTC_TEXT_FUNCTION)
    op.execute(CONTACT_READ_FUNCTION)
    op.execute("REVOKE ALL ON FUNCTION crm_contact_read(uuid, uuid) FROM PUBLIC")
    for statement in grant_app_role(migration_app_role()):
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS crm_contact_read(uuid, uuid)")
    op.execute("DROP FUNCTION IF EXISTS crm_utc_text(timestamptz)")
