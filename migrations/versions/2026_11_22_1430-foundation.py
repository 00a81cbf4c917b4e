"""Foundation: workspaces, API keys, idempotency keys, outbox; row-level security.

Revision ID: 0001_foundation
Revises:
Create Date: 2026-11-22 14:30:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from app.db.rls import (
    CURRENT_WORKSPACE_FUNCTION,
    SEARCH_KEY_FUNCTION,
    disable_tenant_rls,
    enable_tenant_rls,
    grant_app_role,
    migration_app_role,
)

revision: str = "0001_foundation"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TENANT_TABLES = {
    "workspaces": "id",
    "api_keys": "workspace_id",
    "idempotency_keys": "workspace_id",
    "outbox_events": "workspace_id",
}

# Authentication happens before the workspace is known, so the lookup by public prefix runs
# with the owner's rights. It returns only what verifying a key needs.
FIND_API_KEY_FUNCTION = """
CREATE OR REPLACE FUNCTION crm_find_api_key(p_prefix text)
RETURNS TABLE (id uuid, workspace_id uuid, secret_hash text, scopes text[],
               expires_at timestamptz, revoked_at timestamptz, last_used_at timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, public
AS $$
  SELECT k.id, k.workspace_id, k.secret_hash, k.scopes::text[], k.expires_at, k.revoked_at,
         k.last_used_at
  FROM api_keys k
  WHERE k.prefix = p_prefix
$$
"""


# Expired idempotency records of every workspace are pruned by a periodic task of the service,
# whose role only ever sees one workspace at a time.
PRUNE_IDEMPOTENCY_FUNCTION = """
CREATE OR REPLACE FUNCTION crm_prune_idempotency_keys(p_ttl_hours integer)
RETURNS bigint
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, public
AS $$
  WITH deleted AS (
    DELETE FROM idempotency_keys
    WHERE created_at < now() - make_interval(hours => p_ttl_hours)
    RETURNING 1
  )
  SELECT count(*) FROM deleted
$$
"""


def _timestamps() -> list[sa.Column[object]]:
    return [
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"),
                  nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"),
                  nullable=False),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
    ]  # fmt: skip


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.execute("CREATE EXTENSION IF NOT EXISTS unaccent")
    op.execute(SEARCH_KEY_FUNCTION)
    op.execute(CURRENT_WORKSPACE_FUNCTION)

    op.create_table(
        "workspaces",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("default_region", sa.String(length=2), server_default="TH", nullable=False),
        sa.Column("default_currency", sa.String(length=3), server_default="THB", nullable=False),
        sa.Column("timezone", sa.String(length=64), server_default="Asia/Bangkok",
                  nullable=False),
        sa.Column("locale", sa.String(length=35), server_default="th-TH", nullable=False),
        sa.Column("settings", postgresql.JSONB(astext_type=sa.Text()), server_default="{}",
                  nullable=False),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workspaces")),
    )  # fmt: skip

    op.create_table(
        "api_keys",
        sa.Column("workspace_id", sa.UUID(), nullable=False),
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("prefix", sa.String(length=32), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("scopes", sa.ARRAY(sa.String(length=64)), nullable=False),
        sa.Column("created_by_id", sa.UUID(), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        *_timestamps(),
        sa.CheckConstraint("cardinality(scopes) > 0", name=op.f("ck_api_keys_has_scopes")),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"],
                                name=op.f("fk_api_keys_workspace_id_workspaces"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("workspace_id", "id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("prefix", name=op.f("uq_api_keys_prefix")),
    )  # fmt: skip
    op.create_index("ix_api_keys_workspace_live", "api_keys", ["workspace_id", "id"],
                    unique=False, postgresql_where=sa.text("revoked_at IS NULL"))  # fmt: skip

    op.create_table(
        "idempotency_keys",
        sa.Column("workspace_id", sa.UUID(), nullable=False),
        sa.Column("principal_id", sa.UUID(), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("method", sa.String(length=10), nullable=False),
        sa.Column("path", sa.String(length=2048), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("response_status", sa.SmallInteger(), nullable=False),
        sa.Column("response_headers", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("response_body", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"),
                  nullable=False),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"],
                                name=op.f("fk_idempotency_keys_workspace_id_workspaces"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("workspace_id", "principal_id", "key",
                                name=op.f("pk_idempotency_keys")),
    )  # fmt: skip
    op.create_index(op.f("ix_idempotency_keys_created_at"), "idempotency_keys", ["created_at"])

    op.create_table(
        "outbox_events",
        sa.Column("workspace_id", sa.UUID(), nullable=False),
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("type", sa.String(length=100), nullable=False),
        sa.Column("aggregate_type", sa.String(length=50), nullable=False),
        sa.Column("aggregate_id", sa.UUID(), nullable=False),
        sa.Column("data", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("changed_fields", sa.ARRAY(sa.String(length=100)), server_default="{}",
                  nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), server_default=sa.text("now()"),
                  nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"],
                                name=op.f("fk_outbox_events_workspace_id_workspaces"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("workspace_id", "id", name=op.f("pk_outbox_events")),
    )  # fmt: skip
    op.create_index("ix_outbox_events_aggregate", "outbox_events",
                    ["workspace_id", "aggregate_type", "aggregate_id"])  # fmt: skip
    op.create_index("ix_outbox_events_unpublished", "outbox_events", ["id"],
                    postgresql_where=sa.text("published_at IS NULL"))  # fmt: skip

    for table, column in TENANT_TABLES.items():
        for statement in enable_tenant_rls(table, column):
            op.execute(statement)
    op.execute(FIND_API_KEY_FUNCTION)
    op.execute("REVOKE ALL ON FUNCTION crm_find_api_key(text) FROM PUBLIC")
    op.execute(PRUNE_IDEMPOTENCY_FUNCTION)
    op.execute("REVOKE ALL ON FUNCTION crm_prune_idempotency_keys(integer) FROM PUBLIC")
    for statement in grant_app_role(migration_app_role()):
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS crm_prune_idempotency_keys(integer)")
    op.execute("DROP FUNCTION IF EXISTS crm_find_api_key(text)")
    for table in TENANT_TABLES:
        for statement in disable_tenant_rls(table):
            op.execute(statement)
    op.drop_index("ix_outbox_events_unpublished", table_name="outbox_events")
    op.drop_index("ix_outbox_events_aggregate", table_name="outbox_events")
    op.drop_table("outbox_events")
    op.drop_index(op.f("ix_idempotency_keys_created_at"), table_name="idempotency_keys")
    op.drop_table("idempotency_keys")
    op.drop_index("ix_api_keys_workspace_live", table_name="api_keys")
    op.drop_table("api_keys")
    op.drop_table("workspaces")
    op.execute("DROP FUNCTION IF EXISTS crm_current_workspace()")
    op.execute("DROP FUNCTION IF EXISTS crm_search_key(text)")
