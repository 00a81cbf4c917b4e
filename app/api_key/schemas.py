from __future__ import annotations

import uuid
from typing import Annotated

from pydantic import Field, field_validator

from app.auth.scopes import Scope
from app.kit.schemas import InputSchema, Schema, UTCDateTime


class ApiKey(Schema):
    """An API key, without its secret."""

    id: uuid.UUID
    name: str
    prefix: str = Field(description="Public part of the key: `crm_<prefix>_...`.")
    scopes: list[str]
    created_at: UTCDateTime
    expires_at: UTCDateTime | None
    last_used_at: UTCDateTime | None = Field(description="Updated at most once a minute.")
    revoked_at: UTCDateTime | None
    version: int


class ApiKeyWithSecret(ApiKey):
    key: str = Field(description="The secret. Shown once, at creation; store it safely.")


class ApiKeyCreate(InputSchema):
    name: Annotated[str, Field(min_length=1, max_length=200)]
    scopes: Annotated[list[Scope], Field(min_length=1, max_length=len(Scope))]
    expires_at: UTCDateTime | None = None

    @field_validator("scopes")
    @classmethod
    def _unique(cls, scopes: list[Scope]) -> list[Scope]:
        return sorted(set(scopes), key=lambda scope: scope.value)
