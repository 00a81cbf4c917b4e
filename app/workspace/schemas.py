from __future__ import annotations

import uuid
from typing import Annotated

import phonenumbers
from pydantic import AfterValidator, Field

from app.kit.money import validate_currency
from app.kit.schemas import PatchSchema, Schema, UTCDateTime
from app.kit.validators import LocaleTag, TimeZone


def _region(value: str) -> str:
    value = value.upper()
    if value not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError(f"{value!r} is not an ISO 3166 region with phone numbering")
    return value


WorkspaceName = Annotated[str, Field(min_length=1, max_length=200)]
Region = Annotated[str, Field(min_length=2, max_length=2), AfterValidator(_region)]
CurrencyCode = Annotated[str, Field(min_length=3, max_length=3), AfterValidator(validate_currency)]


class Workspace(Schema):
    """A tenant and the defaults applied to its data."""

    id: uuid.UUID
    name: str
    default_region: str = Field(description="Region used to read phone numbers without +.")
    default_currency: str
    timezone: str
    locale: str
    created_at: UTCDateTime
    updated_at: UTCDateTime
    version: int


class WorkspaceUpdate(PatchSchema):
    """Merge patch of a workspace. Every field here is required on the resource: null is 422."""

    not_nullable = frozenset({"name", "default_region", "default_currency", "timezone", "locale"})

    name: WorkspaceName | None = None
    default_region: Region | None = None
    default_currency: CurrencyCode | None = None
    timezone: TimeZone | None = None
    locale: LocaleTag | None = None
