"""The per-request DataLoader registry.

Loaders cache what they load, so they live exactly as long as one request: a loader shared
between requests would serve one caller's data to another. Each loader module exposes a
factory taking the request's context; the registry builds each loader once, on first use.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.dataloader import DataLoader

if TYPE_CHECKING:
    from app.graphql.context import Context

LoaderT = TypeVar("LoaderT", bound=DataLoader[Any, Any])
KeyT = TypeVar("KeyT", bound=tuple[Any, ...])
RowT = TypeVar("RowT")
# (session, ids, shape) -> rows by id, for every id of one shape.
FetchGroups = Callable[
    [AsyncSession, list[uuid.UUID], tuple[Any, ...]], Awaitable[Mapping[uuid.UUID, list[RowT]]]
]


class Loaders:
    def __init__(self, context: Context) -> None:
        self._context = context
        self._built: dict[Callable[..., Any], DataLoader[Any, Any]] = {}

    def get(self, factory: Callable[[Context], LoaderT]) -> LoaderT:
        loader = self._built.get(factory)
        if loader is None:
            loader = self._built[factory] = factory(self._context)
        return loader  # type: ignore[return-value]


def grouped_loader(context: Context, fetch: FetchGroups[RowT]) -> DataLoader[KeyT, list[RowT]]:
    """A loader of each parent's rows for keys ``(parent id, *shape)``, where the shape is what
    else the field asks for (a page size, a set of statuses): one ``fetch`` per distinct shape,
    with every parent id asking for it, so the statement count depends on the query alone."""

    async def load(keys: Sequence[KeyT]) -> list[list[RowT]]:
        batches: dict[tuple[Any, ...], list[uuid.UUID]] = {}
        for key in keys:
            batches.setdefault(tuple(key[1:]), []).append(key[0])
        found: dict[tuple[Any, ...], list[RowT]] = {}
        for shape, ids in batches.items():

            async def fetch_batch(
                session: AsyncSession,
                ids: list[uuid.UUID] = ids,
                shape: tuple[Any, ...] = shape,
            ) -> Mapping[uuid.UUID, list[RowT]]:
                return await fetch(session, ids, shape)

            grouped = await context.read(fetch_batch)
            for parent_id in ids:
                found[(parent_id, *shape)] = grouped.get(parent_id, [])
        return [found[tuple(key)] for key in keys]

    return DataLoader(load_fn=load)
