"""What an interaction may link to (a case, an opportunity, a campaign), checked per workspace.

The modules owning those records register a lookup when they are imported::

    register_link_target("case", case_ids_that_exist)

where the lookup is ``async (session, workspace_id, ids) -> set of the ids that exist``. Until a
kind has a module, no id of that kind can be valid: linking to one is a 422, never a dangling
reference.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Collection

from sqlalchemy.ext.asyncio import AsyncSession

ExistsFn = Callable[[AsyncSession, uuid.UUID, Collection[uuid.UUID]], Awaitable[set[uuid.UUID]]]

# Link kind -> the interaction field holding its id.
LINK_FIELDS: dict[str, str] = {
    "case": "case_id",
    "opportunity": "opportunity_id",
    "campaign": "campaign_id",
}

_targets: dict[str, ExistsFn] = {}


def register_link_target(kind: str, exists_fn: ExistsFn) -> None:
    if kind not in LINK_FIELDS:
        raise ValueError(f"unknown link kind {kind!r}; one of {', '.join(sorted(LINK_FIELDS))}")
    _targets[kind] = exists_fn


def unregister_link_target(kind: str) -> None:
    _targets.pop(kind, None)


async def existing_targets(
    session: AsyncSession, workspace_id: uuid.UUID, kind: str, ids: Collection[uuid.UUID]
) -> set[uuid.UUID]:
    """The ``ids`` of this kind that exist in the workspace (none, for a kind with no module)."""
    if not ids:
        return set()
    exists_fn = _targets.get(kind)
    if exists_fn is None:
        return set()
    return set(await exists_fn(session, workspace_id, ids)) & set(ids)
