"""Ranked text search over a trigram-indexed ``search_text`` column.

``search_text`` holds ``crm_search_key()`` of a record's searchable text (lower-cased, without
accents or Thai tone marks). A query is normalised the same way, split into words, and every
word must occur as a substring; matches are ranked by how much of the query they contain.
Ranked pages carry the score in their cursor, so paging stays stable while others write.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from typing import TypeVar

from sqlalchemy import Numeric, Text, Uuid, column, func, literal, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.selectable import TableValuedAlias

from app.kit.errors import InvalidCursor
from app.kit.pagination import _decode, _encode

T = TypeVar("T")
RELEVANCE = "relevance"
# Shorter fragments match nearly everything and cannot use the trigram index.
MIN_WORD = 2


def like_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def substring_pattern(value: str) -> str:
    return f"%{like_escape(value)}%"


async def text_terms(session: AsyncSession, q: str) -> tuple[str, list[list[str]]]:
    """The normalised query and its LIKE pattern groups (every group must match)."""
    key: str = (await session.execute(select(func.crm_search_key(q.strip())))).scalar_one()
    groups = [[substring_pattern(word)] for word in key.split() if len(word) >= MIN_WORD]
    return key, groups


def relevance_after(cursor: str | None) -> tuple[float, uuid.UUID] | None:
    """Where a ranked page resumes: the (score, id) of the last item of the previous page."""
    if not cursor:
        return None
    token, score, raw_id = _decode(cursor)
    if token != RELEVANCE or isinstance(score, bool) or not isinstance(score, (int, float)):
        raise InvalidCursor("The cursor belongs to a different listing")
    try:
        return float(score), uuid.UUID(str(raw_id))
    except ValueError:
        raise InvalidCursor() from None


def relevance_page(
    ranked: Sequence[tuple[T, float]], limit: int, id_of: Callable[[T], uuid.UUID]
) -> tuple[list[T], str | None]:
    """The first ``limit`` ranked items and the cursor after them (None on the last page)."""
    page = list(ranked[:limit])
    if len(ranked) <= limit or not page:
        return [item for item, _ in page], None
    last, score = page[-1]
    return [item for item, _ in page], _encode([RELEVANCE, score, str(id_of(last))])


def matches(function: str, key: str, groups: Sequence[Sequence[str]]) -> TableValuedAlias:
    """Rows matching the pattern groups, with their scores: ``crm_search_<table>()``.

    Single-pattern groups must all match; at most one group may offer alternatives (a phone
    number in the forms it may be stored in), of which one must match.
    """
    every = [group[0] for group in groups if len(group) == 1]
    alternatives = [list(group) for group in groups if len(group) > 1]
    if len(alternatives) > 1:
        raise ValueError("at most one group of alternatives")
    call = getattr(func, function)(
        key,
        literal(every, type_=ARRAY(Text)),
        literal(alternatives[0] if alternatives else [], type_=ARRAY(Text)),
    )
    found: TableValuedAlias = call.table_valued(column("id", Uuid), column("score", Numeric)).alias(
        "matches"
    )
    return found
