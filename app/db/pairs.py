"""Many (system, value) pairs as one derived table.

A ``(system, value) IN (...)`` list of a thousand pairs costs the planner about half a second
(each pair is planned as its own index probe); the same pairs joined as ``unnest`` of two text
arrays plan in well under a millisecond and travel as two parameters.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Text, bindparam, func
from sqlalchemy.dialects.postgresql import ARRAY


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
