"""Keyset pagination with opaque cursors.

A cursor holds the sort key of the last item returned (plus the id as a tie-breaker), so the
next page starts strictly after it: rows inserted or deleted meanwhile never make a page repeat
or skip an item, and deep pages cost the same as the first.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

import orjson
from pydantic import BaseModel, Field
from sqlalchemy import Select, tuple_
from sqlalchemy.orm import InstrumentedAttribute

from app.kit.errors import FieldError, InvalidCursor, ValidationFailed

T = TypeVar("T")
MAX_LIMIT = 200
DEFAULT_LIMIT = 50


class Page(BaseModel, Generic[T]):
    data: list[T]
    next_cursor: str | None = Field(
        description="Pass as `cursor` to get the next page; null on the last page."
    )


@dataclass(frozen=True)
class SortField:
    column: InstrumentedAttribute[Any]
    # How a cursor value is turned back into the column's Python type.
    parse: Callable[[Any], Any]


def parse_datetime(value: Any) -> datetime:
    if not isinstance(value, str):
        raise ValueError("expected a timestamp")
    return datetime.fromisoformat(value)


def parse_str(value: Any) -> str:
    # No stored text holds U+0000 (PostgreSQL refuses it), so a cursor with one is forged.
    if not isinstance(value, str) or "\x00" in value:
        raise ValueError("expected a string")
    return value


def parse_hex_bytes(value: Any) -> bytes:
    if not isinstance(value, str):
        raise ValueError("expected hex")
    return bytes.fromhex(value)


@dataclass(frozen=True)
class Sort:
    name: str
    descending: bool

    @property
    def token(self) -> str:
        return f"-{self.name}" if self.descending else self.name


def parse_sort(value: str | None, allowed: dict[str, SortField], default: str) -> Sort:
    raw = (value or default).strip()
    descending = raw.startswith("-")
    name = raw.removeprefix("-").removeprefix("+")
    if name not in allowed:
        raise ValidationFailed(
            f"Cannot sort by {name!r}",
            errors=[FieldError(
                field="query.sort",
                message=f"one of: {', '.join(sorted(allowed))}, optionally prefixed with '-'",
            )],
        )  # fmt: skip
    return Sort(name=name, descending=descending)


def _encode(payload: list[Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(payload, default=str)).decode().rstrip("=")


def _decode(cursor: str) -> list[Any]:
    if len(cursor) > 1024:
        raise InvalidCursor("The cursor is too long")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        payload = orjson.loads(raw)
    except (binascii.Error, ValueError, orjson.JSONDecodeError):
        raise InvalidCursor() from None
    if not isinstance(payload, list) or len(payload) != 3:
        raise InvalidCursor()
    return payload


@dataclass(frozen=True)
class Keyset:
    """Applies a sort, a cursor and a limit to a select whose entity has an ``id`` column."""

    sort: Sort
    field: SortField
    id_column: InstrumentedAttribute[Any]
    limit: int
    after: tuple[Any, uuid.UUID] | None

    @classmethod
    def build(
        cls,
        *,
        sort: Sort,
        allowed: dict[str, SortField],
        id_column: InstrumentedAttribute[Any],
        limit: int,
        cursor: str | None,
    ) -> Keyset:
        after = None
        if cursor:
            token, value, raw_id = _decode(cursor)
            if token != sort.token:
                raise InvalidCursor("The cursor belongs to a different sort order")
            try:
                after = (allowed[sort.name].parse(value), uuid.UUID(str(raw_id)))
            except (ValueError, TypeError):
                raise InvalidCursor() from None
        return cls(sort=sort, field=allowed[sort.name], id_column=id_column, limit=limit,
                   after=after)  # fmt: skip

    def apply(self, statement: Select[Any]) -> Select[Any]:
        column, id_column = self.field.column, self.id_column
        if self.after is not None:
            value, last_id = self.after
            if column is id_column:
                condition = id_column < last_id if self.sort.descending else id_column > last_id
            elif self.sort.descending:
                condition = tuple_(column, id_column) < tuple_(value, last_id)
            else:
                condition = tuple_(column, id_column) > tuple_(value, last_id)
            statement = statement.where(condition)
        if column is id_column:
            order = [id_column.desc() if self.sort.descending else id_column.asc()]
        elif self.sort.descending:
            order = [column.desc(), id_column.desc()]
        else:
            order = [column.asc(), id_column.asc()]
        # One extra row tells whether another page exists without a count query.
        return statement.order_by(*order).limit(self.limit + 1)

    def cursor(self, value: Any, item_id: uuid.UUID) -> str:
        if isinstance(value, datetime):
            value = value.isoformat()
        elif isinstance(value, bytes):
            value = value.hex()
        return _encode([self.sort.token, value, str(item_id)])

    def page(
        self, rows: Sequence[T], key: Callable[[T], tuple[Any, uuid.UUID]]
    ) -> tuple[list[T], str | None]:
        """The first ``limit`` rows and the cursor after them (None on the last page)."""
        items = list(rows[: self.limit])
        if len(rows) <= self.limit or not items:
            return items, None
        return items, self.cursor(*key(items[-1]))


__all__ = [
    "DEFAULT_LIMIT",
    "MAX_LIMIT",
    "Keyset",
    "Page",
    "Sort",
    "SortField",
    "parse_datetime",
    "parse_sort",
    "parse_str",
]
