from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import String
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, TimestampedMixin, VersionedMixin
from app.kit.ids import uuid7


class Workspace(TimestampedMixin, VersionedMixin, Base):
    """A tenant: every customer-data row belongs to exactly one workspace."""

    __tablename__ = "workspaces"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid7)
    name: Mapped[str] = mapped_column(String(200))
    # Defaults used when input leaves them out: phone region, currency, time zone, locale.
    default_region: Mapped[str] = mapped_column(String(2), server_default="TH")
    default_currency: Mapped[str] = mapped_column(String(3), server_default="THB")
    timezone: Mapped[str] = mapped_column(String(64), server_default="Asia/Bangkok")
    locale: Mapped[str] = mapped_column(String(35), server_default="th-TH")
    settings: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")

    __mapper_args__ = {"version_id_col": VersionedMixin.version}  # noqa: RUF012
