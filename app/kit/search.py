"""Ranked text search over a trigram-indexed ``search_text`` column.

``search_text`` holds ``crm_search_key()`` of a record's searchable text (lower-cased, without
accents or Thai tone marks). A query is normalised the same way and split into words; every
word must occur, as a substring when it has three letters or more (what a trigram can find)
and at the start of a word when it has two. Matches are ranked by how much of the query they
contain. Ranked pages carry the score in their cursor, so paging stays stable while others
write.

Searches read the ``<table>_searchable`` views (migration 0004), where the trigram index can
serve the conditions under row-level security. A very common word matches a large part of a
workspace; ranking every match would cost seconds, so only the first ``CANDIDATES`` matches
(after the list's filters) are ranked, and paged through. Below that, ranking is exact.
``CANDIDATES`` is the largest page: scoring a candidate (``word_similarity`` over the whole
text) costs about 10 us, and finding one by a scan that stops at the cap about as much again,
so the cap is the bulk of a common word's cost.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import (
    Column,
    ColumnElement,
    MetaData,
    Numeric,
    Select,
    Table,
    and_,
    func,
    or_,
    select,
    true,
    tuple_,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from app.kit.errors import InvalidCursor
from app.kit.pagination import _decode, _encode

T = TypeVar("T")
RELEVANCE = "relevance"
# One-letter fragments match nearly everything and no index can serve them.
MIN_WORD = 2
# Substrings need a whole trigram; two-letter words are matched as word starts instead.
MIN_SUBSTRING = 3
CANDIDATES = 200
# How a search transaction's statements are planned, set with its first statement:
# - Search patterns are bound parameters. A prepared statement's generic plan cannot see how
#   selective a pattern is and may scan the whole workspace, so searches plan every execution.
# - Candidates come from the trigram index, or from reading the table until the cap is
#   reached, whichever the planner finds cheaper for the pattern's estimated share of rows.
#   With the default random_page_cost (4, a disk seek per candidate row) it read the table
#   for any pattern above ~0.8 %: 10,000 rows or more where the index finds 200 candidates
#   among 20,000 entries in a few milliseconds. The index and the candidate rows are hot, so
#   searches price a page read as cached storage does; the table is still read for a word in
#   several percent of the contacts, where it reaches the cap within a few thousand rows.
_SEARCH_PLANS = (
    func.set_config("plan_cache_mode", "force_custom_plan", True),
    func.set_config("random_page_cost", "1.1", True),
)


@dataclass(frozen=True)
class Pattern:
    """One way a word may match ``search_text``: a LIKE pattern."""

    value: str

    def applied_to(self, column: Any) -> ColumnElement[bool]:
        matched: ColumnElement[bool] = column.like(self.value)
        return matched


@dataclass(frozen=True)
class SearchTerms:
    """A normalised query: every group must match, by any of its patterns."""

    key: str
    groups: tuple[tuple[Pattern, ...], ...]

    def condition(self, column: Any) -> ColumnElement[bool]:
        if not self.groups:
            # Matched by other conditions only (a whole e-mail address); the key still ranks.
            return true()
        return and_(*(or_(*(p.applied_to(column) for p in group)) for group in self.groups))


def like_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def substring(value: str) -> Pattern:
    return Pattern(f"%{like_escape(value)}%")


def word_start(value: str) -> tuple[Pattern, Pattern]:
    """At the start of the text or after a space. pg_trgm pads words with spaces, so both
    patterns have an indexable trigram (a regular expression for the same, ``(^| )``, had
    none for Thai letters: the whole workspace was read)."""
    escaped = like_escape(value)
    return Pattern(f"{escaped}%"), Pattern(f"% {escaped}%")


def word_patterns(word: str) -> tuple[Pattern, ...]:
    return (substring(word),) if len(word) >= MIN_SUBSTRING else word_start(word)


def searchable(word: str) -> bool:
    """Long enough, and with a letter or digit: punctuation alone has no trigram, and a
    pattern without one makes the index list every row."""
    return len(word) >= MIN_WORD and any(char.isalnum() for char in word)


async def use_search_plans(session: AsyncSession) -> None:
    """Plan the rest of the transaction's statements as searches (see ``_SEARCH_PLANS``)."""
    await session.execute(select(*_SEARCH_PLANS))


async def text_terms(session: AsyncSession, q: str) -> SearchTerms:
    """The normalised query and the patterns of its words (every word must match).

    Also plans the rest of the transaction as searches (see ``use_search_plans``), in the
    same round trip.
    """
    result = await session.execute(select(func.crm_search_key(q.strip()), *_SEARCH_PLANS))
    key: str = result.scalar_one()
    words = dict.fromkeys(word for word in key.split() if searchable(word))
    return SearchTerms(key, tuple(word_patterns(word) for word in words))


def searchable_view(model: type[T]) -> Any:
    """``model`` read through its ``<table>_searchable`` view, with the same attributes."""
    table: Table = model.__table__  # type: ignore[attr-defined]
    view = Table(
        f"{table.name}_searchable",
        MetaData(),
        *(Column(column.name, column.type, key=column.key) for column in table.columns),
    )
    return aliased(model, view, adapt_on_names=True, name=view.name)


def ranked(
    model: Any,
    view: Any,
    filtered: Select[Any],
    terms: SearchTerms,
    *,
    workspace_id: uuid.UUID,
    limit: int,
    after: tuple[float, uuid.UUID] | None,
) -> Select[Any]:
    """``model`` rows with their scores, best first, one more than ``limit``.

    ``filtered`` selects from ``view`` with the list's filters; the search conditions are added
    here. The score is an exact numeric, so a cursor carrying it compares equal next time.
    """
    candidates = (
        filtered.with_only_columns(view.id, view.search_text)
        .where(terms.condition(view.search_text))
        .limit(CANDIDATES)
        .subquery("candidates")
    )
    similarity = func.word_similarity(terms.key, candidates.c.search_text)
    score = func.round(similarity.cast(Numeric), 4)
    # The page is cut from the ranked candidates before the rows are read in full: the join
    # then fetches ``limit + 1`` contacts, not every candidate.
    page = select(candidates.c.id, score.label("score"))
    if after is not None:
        page = page.where(tuple_(score, candidates.c.id) < tuple_(after[0], after[1]))
    ranked_page = (
        page.order_by(score.desc(), candidates.c.id.desc()).limit(limit + 1).subquery("page")
    )
    return (
        select(model, ranked_page.c.score)
        .join(ranked_page, and_(model.workspace_id == workspace_id, model.id == ranked_page.c.id))
        .order_by(ranked_page.c.score.desc(), model.id.desc())
    )


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
