"""Relay-style connections built from keyset pages."""

from __future__ import annotations

from typing import Generic, TypeVar

import strawberry

from app.kit.errors import FieldError, ValidationFailed
from app.kit.pagination import DEFAULT_LIMIT, MAX_LIMIT

NodeT = TypeVar("NodeT")


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


@strawberry.type
class Edge(Generic[NodeT]):
    node: NodeT
    cursor: str


@strawberry.type
class Connection(Generic[NodeT]):
    edges: list[Edge[NodeT]]
    page_info: PageInfo


def page_of(edges: list[Edge[NodeT]], next_cursor: str | None) -> Connection[NodeT]:
    """A connection of one keyset page; ``next_cursor`` is None on the last page."""
    return Connection(
        edges=edges,
        page_info=PageInfo(
            has_next_page=next_cursor is not None,
            end_cursor=next_cursor or (edges[-1].cursor if edges else None),
        ),
    )


def page_size(first: int | None) -> int:
    if first is None:
        return DEFAULT_LIMIT
    if not 1 <= first <= MAX_LIMIT:
        raise ValidationFailed(
            f"first must be between 1 and {MAX_LIMIT}",
            errors=[FieldError(field="first", message=f"between 1 and {MAX_LIMIT}")],
        )
    return first
