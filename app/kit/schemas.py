"""Base classes for request and response shapes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, TypeVar

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    PlainSerializer,
    ValidationError,
    ValidationInfo,
    field_validator,
)


def _utc_z(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


# Output timestamps are UTC with a "Z"; input must carry an offset (a naive time is a 422).
UTCDateTime = Annotated[AwareDatetime, PlainSerializer(_utc_z, return_type=str, when_used="json")]


class Schema(BaseModel):
    """A response shape, built from ORM objects."""

    model_config = ConfigDict(from_attributes=True)


class InputSchema(BaseModel):
    """A request body: unknown (and so read-only) fields are refused, not ignored."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class PatchSchema(InputSchema):
    """A JSON merge patch (RFC 7396): absent leaves a field alone, ``null`` clears it.

    Fields listed in ``not_nullable`` are required on the resource: ``null`` for them is a 422
    naming the field, rather than a database error later.
    """

    not_nullable: ClassVar[frozenset[str]] = frozenset()

    @field_validator("*", mode="before")
    @classmethod
    def _refuse_null(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None and info.field_name in cls.not_nullable:
            raise ValueError("cannot be null")
        return value

    def changes(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.model_fields_set}


InputT = TypeVar("InputT", bound=BaseModel)


def parse_input(model: type[InputT], data: Any) -> InputT:
    """Validate input outside FastAPI's request parsing (GraphQL, CLI) with the same errors."""
    from app.kit.problems import validation_problem

    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise validation_problem(exc.errors()) from None
