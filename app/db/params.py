"""Bound parameters of statements built once (``functools.cache``) and run with new values.

Building a statement (columns, operators, options) and deriving its cache key cost more Python
than running it: the hottest reads construct theirs once, with these in place of values.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Text, any_, bindparam
from sqlalchemy.dialects.postgresql import ARRAY, UUID
from sqlalchemy.sql.elements import BindParameter


def uuid_param(name: str) -> BindParameter[Any]:
    return bindparam(name, type_=UUID(as_uuid=True))


def uuid_array_param(name: str) -> BindParameter[Any]:
    return bindparam(name, type_=ARRAY(UUID(as_uuid=True)))


def in_uuids(column: Any, name: str) -> ColumnElement[bool]:
    """``column = ANY(:name)``: one statement text whatever the number of ids, unlike IN."""
    return column == any_(uuid_array_param(name))  # type: ignore[no-any-return]


def in_texts(column: Any, name: str) -> ColumnElement[bool]:
    """``column = ANY(:name)`` for a list of strings (statuses, channels)."""
    return column == any_(bindparam(name, type_=ARRAY(Text())))  # type: ignore[no-any-return]
