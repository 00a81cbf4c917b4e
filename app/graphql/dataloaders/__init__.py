"""The per-request DataLoader registry.

Loaders cache what they load, so they live exactly as long as one request: a loader shared
between requests would serve one caller's data to another. Each loader module exposes a
factory taking the request's context; the registry builds each loader once, on first use.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from strawberry.dataloader import DataLoader

if TYPE_CHECKING:
    from app.graphql.context import Context

LoaderT = TypeVar("LoaderT", bound=DataLoader[Any, Any])


class Loaders:
    def __init__(self, context: Context) -> None:
        self._context = context
        self._built: dict[Callable[..., Any], DataLoader[Any, Any]] = {}

    def get(self, factory: Callable[[Context], LoaderT]) -> LoaderT:
        loader = self._built.get(factory)
        if loader is None:
            loader = self._built[factory] = factory(self._context)
        return loader  # type: ignore[return-value]
