"""Base classes for request and response shapes."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, TypeVar

import orjson
from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    PlainSerializer,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic.config import JsonDict


def _utc_z(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


# Output timestamps are UTC with a "Z"; input must carry an offset (a naive time is a 422).
UTCDateTime = Annotated[AwareDatetime, PlainSerializer(_utc_z, return_type=str, when_used="json")]


_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")


def _iso_8601(value: Any) -> Any:
    # Pydantic would also read a bare number as Unix time, which the API does not offer.
    if isinstance(value, str) and not _ISO_DATE.match(value):
        raise ValueError("expected an ISO 8601 timestamp with an offset, e.g. 2026-01-01T00:00Z")
    return value


# A timestamp in a query string: ISO 8601 with an offset, nothing else.
QueryTimestamp = Annotated[AwareDatetime, BeforeValidator(_iso_8601)]


class Schema(BaseModel):
    """A response shape, built from ORM objects."""

    model_config = ConfigDict(from_attributes=True)


# Told to the NUL check of every field when the whole input was seen to hold no NUL.
_NUL_FREE = {"nul_free": True}


def _contains_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, (list, tuple, set, frozenset)):
        return any(_contains_nul(item) for item in value)
    if isinstance(value, dict):
        return any(_contains_nul(key) or _contains_nul(item) for key, item in value.items())
    return False


class InputSchema(BaseModel):
    """A request body: unknown (and so read-only) fields are refused, not ignored."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("*", mode="after")
    @classmethod
    def _refuse_nul(cls, value: Any, info: ValidationInfo) -> Any:
        # PostgreSQL text cannot hold U+0000: a 422 naming the field, not a database error.
        if info.context is _NUL_FREE:
            return value
        if _contains_nul(value):
            raise ValueError("must not contain the NUL character (U+0000)")
        return value


def _offer_no_null(schema: JsonDict, model: type[Any]) -> None:
    """Document the ``not_nullable`` fields of a patch without ``null``, which they refuse."""
    properties = schema.get("properties")
    if not isinstance(properties, dict):
        return
    for name in getattr(model, "not_nullable", ()):
        field = properties.get(name)
        options = field.get("anyOf") if isinstance(field, dict) else None
        if not isinstance(field, dict) or not isinstance(options, list):
            continue
        kept = [option for option in options if option != {"type": "null"}]
        del field["anyOf"]
        if len(kept) == 1 and isinstance(kept[0], dict):
            field.update(kept[0])
        else:
            field["anyOf"] = kept


class PatchSchema(InputSchema):
    """A JSON merge patch (RFC 7396): absent leaves a field alone, ``null`` clears it.

    Fields listed in ``not_nullable`` are required on the resource: ``null`` for them is a 422
    naming the field, rather than a database error later.
    """

    model_config = ConfigDict(json_schema_extra=_offer_no_null)

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


# Building an adapter costs far more than validating with it: one per annotation, kept (with
# the annotation, so that its id is not reused).
_ADAPTERS: dict[int, tuple[Any, TypeAdapter[Any]]] = {}


def _adapter(annotation: Any) -> TypeAdapter[Any]:
    kept = _ADAPTERS.get(id(annotation))
    if kept is None:
        kept = _ADAPTERS[id(annotation)] = (annotation, TypeAdapter(annotation))
    return kept[1]


def validate_value(annotation: Any, value: Any, field: str) -> Any:
    """One value checked against ``annotation`` after a merge patch, with the API's errors.

    Raises:
        ValidationFailed: naming the first offending path under ``field``.
    """
    from app.kit.errors import FieldError, ValidationFailed

    try:
        return _adapter(annotation).validate_python(value)
    except ValidationError as exc:
        first = exc.errors()[0]
        path = ".".join([field, *(str(part) for part in first["loc"])])
        message = str(first["msg"]).removeprefix("Value error, ")
        raise ValidationFailed(
            f"Invalid {field}", errors=[FieldError(field=path, message=message)]
        ) from None


def parse_input(model: type[InputT], data: Any) -> InputT:
    """Validate input outside FastAPI's request parsing (GraphQL, CLI) with the same errors."""
    try:
        return model.model_validate(data, context=_NUL_FREE if _nul_free(data) else None)
    except ValidationError as exc:
        # Imported here only: the problems module imports FastAPI, which this one must not.
        from app.kit.problems import validation_problem

        raise validation_problem(exc.errors()) from None


def _nul_free(data: Any) -> bool:
    """Whether no string in ``data`` holds U+0000, found in one pass through C code: orjson
    escapes the character as ``\\u0000``, and nothing else writes that text."""
    try:
        return b"\\u0000" not in orjson.dumps(data)
    except TypeError:  # not plain JSON (a 65-bit integer, a non-string key): look field by field
        return False
