"""Contacts, accounts, contact points, external ids, relationships and merges.

Revision ID: 0002_contacts
Revises: 0001_foundation
Create Date: 2026-11-22 15:04:02.816730+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from app.db.rls import disable_tenant_rls, enable_tenant_rls, grant_app_role, migration_app_role

revision: str = "0002_contacts"
down_revision: str | None = "0001_foundation"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


TENANT_TABLES = (
    "accounts",
    "account_external_ids",
    "contacts",
    "contact_emails",
    "contact_phones",
    "contact_external_ids",
    "contact_relationships",
    "contact_merges",
)


def upgrade() -> None:
    # GIN indexes that lead with workspace_id and continue with trigrams.
    op.execute("CREATE EXTENSION IF NOT EXISTS btree_gin")
    op.create_table(
        "accounts",
        sa.Column("workspace_id", sa.UUID(), nullable=False),
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("name", sa.String(length=300), nullable=False),
        sa.Column("type", sa.String(length=20), server_default="customer", nullable=False),
        sa.Column("domain", sa.String(length=253), nullable=True),
        sa.Column("industry", sa.String(length=100), nullable=True),
        sa.Column("size", sa.String(length=20), nullable=True),
        sa.Column("parent_account_id", sa.UUID(), nullable=True),
        sa.Column("owner_id", sa.String(length=200), nullable=True),
        sa.Column(
            "attributes",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default="{}",
            nullable=False,
        ),
        sa.Column("search_text", sa.String(), server_default="", nullable=False),
        sa.Column("name_sort_key", sa.LargeBinary(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.CheckConstraint(
            "size IS NULL OR size IN ('micro', 'small', 'medium', 'large', 'enterprise')",
            name=op.f("ck_accounts_size"),
        ),
        sa.CheckConstraint(
            "type IN ('customer', 'prospect', 'partner', 'distributor', 'retailer', 'supplier')",
            name=op.f("ck_accounts_type"),
        ),
        sa.CheckConstraint(
            "parent_account_id IS NULL OR parent_account_id <> id",
            name=op.f("ck_accounts_not_own_parent"),
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id", "parent_account_id"],
            ["accounts.workspace_id", "accounts.id"],
            name="fk_accounts_parent",
            ondelete="SET NULL (parent_account_id)",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_accounts_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("workspace_id", "id", name=op.f("pk_accounts")),
    )
    op.create_index(
        "ix_accounts_created", "accounts", ["workspace_id", "created_at", "id"], unique=False
    )
    op.create_index(
        "ix_accounts_name_sort", "accounts", ["workspace_id", "name_sort_key", "id"], unique=False
    )
    op.create_index(
        "ix_accounts_parent", "accounts", ["workspace_id", "parent_account_id"], unique=False
    )
    op.create_index(
        "ix_accounts_search",
        "accounts",
        ["workspace_id", "search_text"],
        unique=False,
        postgresql_using="gin",
        postgresql_ops={"search_text": "gin_trgm_ops"},
    )
    op.create_index(
        "ix_accounts_updated", "accounts", ["workspace_id", "updated_at", "id"], unique=False
    )
    op.create_index(
        "uq_accounts_domain",
        "accounts",
        ["workspace_id", "domain"],
        unique=True,
        postgresql_where=sa.text("domain IS NOT NULL"),
    )
    op.create_table(
        "contact_merges",
        sa.Column("workspace_id", sa.UUID(), nullable=False),
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("survivor_id", sa.UUID(), nullable=False),
        sa.Column("absorbed_ids", sa.ARRAY(sa.Uuid()), nullable=False),
        sa.Column(
            "field_choices",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default="{}",
            nullable=False,
        ),
        sa.Column(
            "snapshots",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default="[]",
            nullable=False,
        ),
        sa.Column("merged_by_id", sa.UUID(), nullable=True),
        sa.Column(
            "merged_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_contact_merges_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("workspace_id", "id", name=op.f("pk_contact_merges")),
    )
    op.create_index(
        "ix_contact_merges_survivor",
        "contact_merges",
        ["workspace_id", "survivor_id"],
        unique=False,
    )
    op.create_table(
        "account_external_ids",
        sa.Column("workspace_id", sa.UUID(), nullable=False),
        sa.Column("system", sa.String(length=64), nullable=False),
        sa.Column("value", sa.String(length=255), nullable=False),
        sa.Column("account_id", sa.UUID(), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id", "account_id"],
            ["accounts.workspace_id", "accounts.id"],
            name="fk_account_external_ids_account",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "workspace_id", "system", "value", name=op.f("pk_account_external_ids")
        ),
    )
    op.create_index(
        "ix_account_external_ids_account",
        "account_external_ids",
        ["workspace_id", "account_id"],
        unique=False,
    )
    op.create_table(
        "contacts",
        sa.Column("workspace_id", sa.UUID(), nullable=False),
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("given_name", sa.String(length=200), nullable=True),
        sa.Column("family_name", sa.String(length=200), nullable=True),
        sa.Column("display_name", sa.String(length=300), nullable=False),
        sa.Column("locale", sa.String(length=35), nullable=True),
        sa.Column("time_zone", sa.String(length=64), nullable=True),
        sa.Column("birthday", sa.Date(), nullable=True),
        sa.Column(
            "addresses",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default="[]",
            nullable=False,
        ),
        sa.Column("lifecycle_stage", sa.String(length=20), server_default="lead", nullable=False),
        sa.Column("account_id", sa.UUID(), nullable=True),
        sa.Column("owner_id", sa.String(length=200), nullable=True),
        sa.Column("tags", sa.ARRAY(sa.String(length=64)), server_default="{}", nullable=False),
        sa.Column(
            "attributes",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default="{}",
            nullable=False,
        ),
        sa.Column("acquisition_source", sa.String(length=100), nullable=True),
        sa.Column("acquisition_channel", sa.String(length=50), nullable=True),
        sa.Column("merged_into_id", sa.UUID(), nullable=True),
        sa.Column("search_text", sa.String(), server_default="", nullable=False),
        sa.Column("name_sort_key", sa.LargeBinary(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.CheckConstraint(
            "lifecycle_stage IN "
            "('lead', 'prospect', 'customer', 'advocate', 'ambassador', 'churned')",
            name=op.f("ck_contacts_lifecycle_stage"),
        ),
        sa.CheckConstraint(
            "merged_into_id IS NULL OR merged_into_id <> id",
            name=op.f("ck_contacts_not_merged_into_self"),
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id", "account_id"],
            ["accounts.workspace_id", "accounts.id"],
            name="fk_contacts_account",
            ondelete="SET NULL (account_id)",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_contacts_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("workspace_id", "id", name=op.f("pk_contacts")),
    )
    op.create_index("ix_contacts_account", "contacts", ["workspace_id", "account_id"], unique=False)
    op.create_index(
        "ix_contacts_created", "contacts", ["workspace_id", "created_at", "id"], unique=False
    )
    op.create_index(
        "ix_contacts_merged_into",
        "contacts",
        ["workspace_id", "merged_into_id"],
        unique=False,
        postgresql_where=sa.text("merged_into_id IS NOT NULL"),
    )
    op.create_index(
        "ix_contacts_name_sort", "contacts", ["workspace_id", "name_sort_key", "id"], unique=False
    )
    op.create_index(
        "ix_contacts_search",
        "contacts",
        ["workspace_id", "search_text"],
        unique=False,
        postgresql_using="gin",
        postgresql_ops={"search_text": "gin_trgm_ops"},
    )
    op.create_index(
        "ix_contacts_tags",
        "contacts",
        ["workspace_id", "tags"],
        unique=False,
        postgresql_using="gin",
    )
    op.create_index(
        "ix_contacts_updated", "contacts", ["workspace_id", "updated_at", "id"], unique=False
    )
    op.create_table(
        "contact_emails",
        sa.Column("workspace_id", sa.UUID(), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("contact_id", sa.UUID(), nullable=False),
        sa.Column("is_primary", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("position", sa.SmallInteger(), server_default="0", nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id", "contact_id"],
            ["contacts.workspace_id", "contacts.id"],
            name="fk_contact_emails_contact",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("workspace_id", "email", name=op.f("pk_contact_emails")),
    )
    op.create_index(
        "ix_contact_emails_contact", "contact_emails", ["workspace_id", "contact_id"], unique=False
    )
    op.create_table(
        "contact_external_ids",
        sa.Column("workspace_id", sa.UUID(), nullable=False),
        sa.Column("system", sa.String(length=64), nullable=False),
        sa.Column("value", sa.String(length=255), nullable=False),
        sa.Column("contact_id", sa.UUID(), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id", "contact_id"],
            ["contacts.workspace_id", "contacts.id"],
            name="fk_contact_external_ids_contact",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "workspace_id", "system", "value", name=op.f("pk_contact_external_ids")
        ),
    )
    op.create_index(
        "ix_contact_external_ids_contact",
        "contact_external_ids",
        ["workspace_id", "contact_id"],
        unique=False,
    )
    op.create_table(
        "contact_phones",
        sa.Column("workspace_id", sa.UUID(), nullable=False),
        sa.Column("contact_id", sa.UUID(), nullable=False),
        sa.Column("number", sa.String(length=20), nullable=False),
        sa.Column("type", sa.String(length=10), server_default="mobile", nullable=False),
        sa.Column("is_primary", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("position", sa.SmallInteger(), server_default="0", nullable=False),
        sa.CheckConstraint(
            "type IN ('mobile', 'home', 'work', 'other')", name=op.f("ck_contact_phones_type")
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id", "contact_id"],
            ["contacts.workspace_id", "contacts.id"],
            name="fk_contact_phones_contact",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "workspace_id", "contact_id", "number", name=op.f("pk_contact_phones")
        ),
    )
    op.create_index(
        "ix_contact_phones_number", "contact_phones", ["workspace_id", "number"], unique=False
    )
    op.create_table(
        "contact_relationships",
        sa.Column("workspace_id", sa.UUID(), nullable=False),
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("contact_id", sa.UUID(), nullable=False),
        sa.Column("related_contact_id", sa.UUID(), nullable=False),
        sa.Column("type", sa.String(length=20), nullable=False),
        sa.Column("pair_id", sa.UUID(), nullable=False),
        sa.Column("note", sa.String(length=500), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "type IN ('referred_by', 'referred', 'household', 'spouse', 'parent', 'child', "
            "'colleague', 'advocate_of', 'advocated_by')",
            name=op.f("ck_contact_relationships_type"),
        ),
        sa.CheckConstraint(
            "contact_id <> related_contact_id", name=op.f("ck_contact_relationships_not_self")
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id", "contact_id"],
            ["contacts.workspace_id", "contacts.id"],
            name="fk_contact_relationships_contact",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id", "related_contact_id"],
            ["contacts.workspace_id", "contacts.id"],
            name="fk_contact_relationships_related",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_contact_relationships_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("workspace_id", "id", name=op.f("pk_contact_relationships")),
        sa.UniqueConstraint(
            "workspace_id",
            "contact_id",
            "related_contact_id",
            "type",
            name="uq_contact_relationships_link",
        ),
    )
    op.create_index(
        "ix_contact_relationships_pair",
        "contact_relationships",
        ["workspace_id", "pair_id"],
        unique=False,
    )
    op.create_index(
        "ix_contact_relationships_related",
        "contact_relationships",
        ["workspace_id", "related_contact_id"],
        unique=False,
    )
    for table in TENANT_TABLES:
        for statement in enable_tenant_rls(table):
            op.execute(statement)
    for statement in grant_app_role(migration_app_role()):
        op.execute(statement)


def downgrade() -> None:
    for table in TENANT_TABLES:
        for statement in disable_tenant_rls(table):
            op.execute(statement)
    op.drop_index("ix_contact_relationships_related", table_name="contact_relationships")
    op.drop_index("ix_contact_relationships_pair", table_name="contact_relationships")
    op.drop_table("contact_relationships")
    op.drop_index("ix_contact_phones_number", table_name="contact_phones")
    op.drop_table("contact_phones")
    op.drop_index("ix_contact_external_ids_contact", table_name="contact_external_ids")
    op.drop_table("contact_external_ids")
    op.drop_index("ix_contact_emails_contact", table_name="contact_emails")
    op.drop_table("contact_emails")
    op.drop_index("ix_contacts_updated", table_name="contacts")
    op.drop_index("ix_contacts_tags", table_name="contacts", postgresql_using="gin")
    op.drop_index("ix_contacts_search", table_name="contacts", postgresql_using="gin")
    op.drop_index("ix_contacts_name_sort", table_name="contacts")
    op.drop_index(
        "ix_contacts_merged_into",
        table_name="contacts",
        postgresql_where=sa.text("merged_into_id IS NOT NULL"),
    )
    op.drop_index("ix_contacts_created", table_name="contacts")
    op.drop_index("ix_contacts_account", table_name="contacts")
    op.drop_table("contacts")
    op.drop_index("ix_account_external_ids_account", table_name="account_external_ids")
    op.drop_table("account_external_ids")
    op.drop_index("ix_contact_merges_survivor", table_name="contact_merges")
    op.drop_table("contact_merges")
    op.drop_index(
        "uq_accounts_domain", table_name="accounts", postgresql_where=sa.text("domain IS NOT NULL")
    )
    op.drop_index("ix_accounts_updated", table_name="accounts")
    op.drop_index("ix_accounts_search", table_name="accounts", postgresql_using="gin")
    op.drop_index("ix_accounts_parent", table_name="accounts")
    op.drop_index("ix_accounts_name_sort", table_name="accounts")
    op.drop_index("ix_accounts_created", table_name="accounts")
    op.drop_table("accounts")
