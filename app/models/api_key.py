from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ARRAY, CheckConstraint, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, TimestampedMixin, VersionedMixin, WorkspaceScopedMixin


class ApiKey(WorkspaceScopedMixin, TimestampedMixin, VersionedMixin, Base):
    """A secret a partner system presents as ``Authorization: Bearer``.

    Only a hash of the secret is stored; ``prefix`` is public and finds the row.
    """

    __tablename__ = "api_keys"

    name: Mapped[str] = mapped_column(String(200))
    prefix: Mapped[str] = mapped_column(String(32), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    scopes: Mapped[list[str]] = mapped_column(ARRAY(String(64)))
    created_by_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    expires_at: Mapped[datetime | None] = mapped_column(default=None)
    last_used_at: Mapped[datetime | None] = mapped_column(default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)

    __table_args__ = (
        CheckConstraint("cardinality(scopes) > 0", name="has_scopes"),
        # Listing serves live keys newest first; revoked keys are rarely read.
        Index(
            "ix_api_keys_workspace_live",
            "workspace_id",
            "id",
            postgresql_where=text("revoked_at IS NULL"),
        ),
    )
    __mapper_args__ = {"version_id_col": VersionedMixin.version}  # noqa: RUF012
