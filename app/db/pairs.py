"""Many (system, value) pairs as one derived table, and who owns them.

A ``(system, value) IN (...)`` list of a thousand pairs costs the planner about half a second
(each pair is planned as its own index probe); the same pairs joined as ``unnest`` of two text
arrays plan in well under a millisecond and travel as two parameters.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from sqlalchemy import FromClause, Text, bindparam, func, select
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

    A join, whose worst plan is linear: hashing the workspace's ids. With a thousand pairs
    against some 100,000 ids the planner takes it though a thousand index probes are about
    ten times faster (40-60 ms against 5 per batch). The forms that force the probes are
    worse: looked up one by one (``LATERAL ... LIMIT 1``) or as ``system = ANY(...) AND
    value = ANY(...)``, a plan cached while the table was small scans it once per pair, or
    compares every row with every value, which takes seconds once the table has grown.
    """
    wanted = list(pairs)
    if not wanted:
        return {}
    listed = text_pairs(wanted)
    result = await session.execute(
        select(table.c.system, table.c.value, table.c[owner_column].label("owner_id"))
        .join(listed, (table.c.system == listed.c.system) & (table.c.value == listed.c.value))
        .where(table.c.workspace_id == workspace_id)
    )
    return {(row.system, row.value): row.owner_id for row in result}
