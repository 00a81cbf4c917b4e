"""Purchases earn points, refunds and cancellations claw them back, in the purchase's
transaction."""

from __future__ import annotations

from app.loyalty.service import loyalty as loyalty_service
from app.purchase.listeners import PurchaseListener, register_purchase_listener

register_purchase_listener(
    PurchaseListener(
        name="loyalty",
        on_created=loyalty_service.on_purchase_created,
        on_refunded=loyalty_service.on_purchase_refunded,
        on_voided=loyalty_service.on_purchase_voided,
    )
)
