"""Purchases and refunds on a contact's timeline."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from babel.numbers import format_currency
from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.dependencies import AuthContext
from app.auth.scopes import Scope
from app.kit.money import Money
from app.models import Purchase, PurchaseRefund
from app.purchase.service import purchase as purchase_service
from app.timeline.registry import (
    LoadedEntry,
    TimelineFilter,
    TimelineSource,
    narrowed,
    register_timeline_source,
)


def _amount(minor: int, currency: str) -> str:
    money = Money.from_minor_units(minor, currency)
    return str(format_currency(money.amount, currency, locale="en"))


def _purchases_of(
    workspace_id: uuid.UUID, contact_id: uuid.UUID, filters: TimelineFilter
) -> Select[datetime, uuid.UUID]:
    statement = select(Purchase.occurred_at, Purchase.id).where(
        Purchase.workspace_id == workspace_id, Purchase.contact_id == contact_id
    )
    return narrowed(statement, filters, occurred_at=Purchase.occurred_at, channel=Purchase.channel)


def _refunds_of(
    workspace_id: uuid.UUID, contact_id: uuid.UUID, filters: TimelineFilter
) -> Select[datetime, uuid.UUID]:
    statement = select(PurchaseRefund.occurred_at, PurchaseRefund.id).where(
        PurchaseRefund.workspace_id == workspace_id, PurchaseRefund.contact_id == contact_id
    )
    if filters.channels:
        # A refund happens on the channel of its purchase.
        statement = statement.join(
            Purchase,
            (Purchase.workspace_id == PurchaseRefund.workspace_id)
            & (Purchase.id == PurchaseRefund.purchase_id),
        )
    return narrowed(
        statement, filters, occurred_at=PurchaseRefund.occurred_at, channel=Purchase.channel
    )


def purchase_summary(purchase: Purchase) -> str:
    units = sum(item.quantity for item in purchase.items)
    where = f" at {purchase.store_id}" if purchase.store_id else ""
    status = "" if purchase.status == "completed" else f" ({purchase.status.replace('_', ' ')})"
    total = _amount(purchase.total_minor, purchase.currency)
    items = f"{units} item{'s' if units != 1 else ''}"
    return (
        f"Purchase of {items} for {total} via {purchase.channel.replace('_', ' ')}{where}{status}"
    )


async def _load_purchases(
    session: AsyncSession, auth: AuthContext, ids: Sequence[uuid.UUID], /, *, with_data: bool
) -> dict[uuid.UUID, LoadedEntry]:
    found = await purchase_service.get_many(session, auth, ids)
    return {
        purchase_id: LoadedEntry(
            channel=row.channel,
            summary=purchase_summary(row),
            data=purchase_service.to_schema(row).model_dump(mode="json") if with_data else None,
        )
        for purchase_id, row in found.items()
    }


async def _load_refunds(
    session: AsyncSession, auth: AuthContext, ids: Sequence[uuid.UUID], /, *, with_data: bool
) -> dict[uuid.UUID, LoadedEntry]:
    rows = await purchase_service.refunds_with_channel(session, auth, ids)
    loaded = {}
    for refund, channel in rows:
        reason = f": {refund.reason}" if refund.reason else ""
        loaded[refund.id] = LoadedEntry(
            channel=channel,
            summary=f"Refund of {_amount(refund.amount_minor, refund.currency)}{reason}",
            data=purchase_service.refund_to_schema(refund).model_dump(mode="json")
            if with_data
            else None,
        )
    return loaded


register_timeline_source(
    TimelineSource(
        kind="purchase",
        scope=Scope.purchases_read,
        entries_of=_purchases_of,
        load=_load_purchases,
    )
)
register_timeline_source(
    TimelineSource(
        kind="refund",
        scope=Scope.purchases_read,
        entries_of=_refunds_of,
        load=_load_refunds,
    )
)
