"""What a change changed, for ``*.updated`` events."""

from __future__ import annotations

from typing import Any

# Bookkeeping that moves with every write; not a change anyone asked for.
_BOOKKEEPING = frozenset({"updated_at", "version"})


def changed_fields(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """Sorted names of the fields whose values differ between two JSON dumps."""
    return sorted(k for k in after if after[k] != before.get(k) and k not in _BOOKKEEPING)
