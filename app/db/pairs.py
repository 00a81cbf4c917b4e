"""Many (system, value) pairs as one derived table, and who owns them.

A ``(system, value) IN (...)`` list of a thousand pairs costs the planner about half a second
(each pair is planned as its own index probe); the same pairs joined as ``unnest`` of two text
arrays plan in well under a millisecond and travel as two parameters.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from sqlalchemy import FromClause, Text, bindparam, func, literal_column, select, true
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession


def text_pairs(pairs: Iterable[tuple[str, str]], name: str = "wanted") -> Any:
    """A derived table with columns ``system`` and ``value``, one row per pair."""
    wanted = list(dict.fromkeys(pairs))
    return (
        func.unnest(
            bindparam(f"{name}_systems", [p[0] for p in wanted], type_=ARRAY(Text)),
            bindparam(f"{name}_values", [p[1] for p in wanted], type_=ARRAY(Text)),
        )
        .table_valued("system", "value")
        .render_derived(name=name)
    )


async def pair_owners(
    session: AsyncSession,
    table: FromClause,
    owner_column: str,
    workspace_id: uuid.UUID,
    pairs: Iterable[tuple[str, str]],
) -> dict[tuple[str, str], uuid.UUID]:
    """(system, value) -> ``owner_column`` of the rows of ``table`` (an external-id table,
    unique by workspace, system and value) holding the pairs; pairs nobody holds are absent.

    Each pair is looked up on its own (a ``LATERAL`` subquery with ``LIMIT 1``, which the
    planner cannot flatten into a join). As a plain join, a thousand pairs against a table of
    some 100,000 rows make the planner prefer hashing the whole workspace's rows to a thousand
    index probes: 60 ms instead of 7 on the interaction batch, and worse as the table grows
    until the estimate flips back.
    """
    wanted = list(dict.fromkeys(pairs))
    if not wanted:
        return {}
    listed = text_pairs(wanted)
    owner = (
        select(table.c[owner_column].label("owner_id"))
        .where(
            table.c.workspace_id == workspace_id,
            table.c.system == listed.c.system,
            table.c.value == listed.c.value,
        )
        .limit(literal_column("1"))
        .lateral("owner")
    )
    result = await session.execute(
        select(listed.c.system, listed.c.value, owner.c.owner_id)
        .select_from(listed)
        .join(owner, true())
    )
    return {(row.system, row.value): row.owner_id for row in result}
