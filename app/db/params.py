"""Statements built once (``functools.cache`` or module constants) and run with new values,
and the bound parameters they take.

Building a statement (columns, operators, options) and deriving its cache key cost more Python
than running it: the hottest reads construct theirs once, with these in place of values. Each
takes the workspace as ``:workspace_id``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Integer, Select, Text, any_, bindparam, func, select, true
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


def rows_among(entity: Any, column: Any, name: str = "ids") -> Select[Any]:
    """The workspace's ``entity`` rows whose ``column`` is among ``:name``."""
    return select(entity).where(
        entity.workspace_id == uuid_param("workspace_id"), in_uuids(column, name)
    )


def newest_per_contact(entity: Any, moment: Any, *conditions: Any) -> Select[Any]:
    """Each of ``:contact_ids``' newest ``:per_contact`` ``entity`` rows (by ``moment``, then
    id) that meet ``conditions``, ordered by contact and newest first: a LATERAL probe of the
    (workspace, contact, moment) index per contact stops after ``:per_contact`` rows, however
    long the contact's history."""
    workspace = uuid_param("workspace_id")
    wanted = (
        func.unnest(uuid_array_param("contact_ids")).table_valued("contact_id").render_derived()
    )
    newest = (
        select(entity.id)
        .where(entity.workspace_id == workspace, entity.contact_id == wanted.c.contact_id)
        .where(*conditions)
        .order_by(moment.desc(), entity.id.desc())
        .limit(bindparam("per_contact", type_=Integer))
        .lateral()
    )
    return (
        select(entity)
        .where(
            entity.workspace_id == workspace,
            entity.id.in_(select(newest.c.id).select_from(wanted).join(newest, true())),
        )
        .order_by(entity.contact_id, moment.desc(), entity.id.desc())
    )
