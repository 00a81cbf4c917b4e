"""Modules that react to purchases inside the purchase's own transaction (loyalty earns and
claws back points), registered when they are imported (from ``app.modules``).

A listener runs after the purchase or refund is written and flushed, in the same transaction:
its writes commit or roll back with the purchase, and an error it raises fails the request.
The purchase module knows nothing of who listens.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.dependencies import AuthContext
from app.models import Purchase, PurchaseRefund

OnCreated = Callable[[AsyncSession, AuthContext, Purchase], Awaitable[None]]
OnRefunded = Callable[[AsyncSession, AuthContext, Purchase, PurchaseRefund], Awaitable[None]]
# ``how`` is "cancel" or "delete": the purchase no longer counts at all.
OnVoided = Callable[[AsyncSession, AuthContext, Purchase, str], Awaitable[None]]


@dataclass(frozen=True)
class PurchaseListener:
    name: str
    on_created: OnCreated | None = None
    on_refunded: OnRefunded | None = None
    on_voided: OnVoided | None = None


_listeners: dict[str, PurchaseListener] = {}


def register_purchase_listener(listener: PurchaseListener) -> None:
    _listeners[listener.name] = listener


def purchase_listeners() -> list[PurchaseListener]:
    return [_listeners[name] for name in sorted(_listeners)]


async def purchase_created(session: AsyncSession, auth: AuthContext, purchase: Purchase) -> None:
    for listener in purchase_listeners():
        if listener.on_created is not None:
            await listener.on_created(session, auth, purchase)


async def purchase_refunded(
    session: AsyncSession, auth: AuthContext, purchase: Purchase, refund: PurchaseRefund
) -> None:
    for listener in purchase_listeners():
        if listener.on_refunded is not None:
            await listener.on_refunded(session, auth, purchase, refund)


async def purchase_voided(
    session: AsyncSession, auth: AuthContext, purchase: Purchase, how: str
) -> None:
    for listener in purchase_listeners():
        if listener.on_voided is not None:
            await listener.on_voided(session, auth, purchase, how)
