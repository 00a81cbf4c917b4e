from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints, model_validator

from app.kit.money import Money
from app.kit.schemas import InputSchema, PatchSchema, Schema, UTCDateTime
from app.kit.validators import Attributes, ExternalIds, ExternalIdValue, SystemName

PurchaseChannel = Literal["store", "web", "mobile_app", "phone", "marketplace", "social", "other"]
PurchaseStatus = Literal["completed", "refunded", "partially_refunded", "cancelled"]
# Refunded states are reached through refunds, never set by hand.
InitialStatus = Literal["completed", "cancelled"]

MAX_ITEMS = 500
MAX_QUANTITY = 1_000_000
MAX_REFUND_ITEMS = MAX_ITEMS

StoreId = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Sku = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
ItemName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]
Category = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
Quantity = Annotated[int, Field(gt=0, le=MAX_QUANTITY, strict=True)]


class PurchaseItemInput(InputSchema):
    sku: Sku | None = None
    name: ItemName
    category: Category | None = None
    quantity: Quantity = Field(description=f"Units bought, 1 to {MAX_QUANTITY:,}.")
    unit_price: Money = Field(description="Price of one unit, before the discount.")
    discount: Money | None = Field(
        default=None,
        description="Discount on the whole line (not per unit); at most quantity x unit price.",
    )


class PurchaseCreate(InputSchema):
    """A purchase as a POS or shop reports it.

    The line amounts (quantity x unit price - discount) must add up exactly to ``total``, all
    in the total's currency. ``items`` may be empty for systems that report receipts without
    lines; such a purchase can then only be refunded by amount.
    """

    contact_id: uuid.UUID = Field(description="The buyer; a contact of this workspace.")
    occurred_at: UTCDateTime = Field(description="When the purchase was made (with an offset).")
    channel: PurchaseChannel = "store"
    store_id: StoreId | None = Field(default=None, description="The shop or branch.")
    status: InitialStatus = Field(
        default="completed",
        description="`completed` or `cancelled`; the refunded states come from refunds.",
    )
    total: Money = Field(description="What the buyer paid, after discounts.")
    items: list[PurchaseItemInput] = Field(default_factory=list, max_length=MAX_ITEMS)
    attributes: Attributes = Field(default_factory=dict)
    external_ids: ExternalIds = Field(
        default_factory=dict,
        description='The POS or shop order id, e.g. `{"pos": "R-20261122-0042"}`: unique per '
        "workspace and system. Sending a purchase again with a known id stores nothing and "
        "returns the stored purchase.",
    )


class PurchaseUpdate(PatchSchema):
    """Merge patch of the fields that may change after a purchase is recorded.

    Totals, items, the buyer and the time are immutable: correct a wrong purchase by
    refunding or cancelling it and recording a new one. ``status`` accepts only
    ``cancelled``, for a purchase nothing has been refunded on.
    """

    not_nullable = frozenset({"channel", "status"})

    channel: PurchaseChannel | None = None
    store_id: StoreId | None = None
    status: Literal["cancelled"] | None = None
    attributes: dict[str, Any] | None = None
    external_ids: dict[SystemName, ExternalIdValue | None] | None = None


class PurchaseItem(Schema):
    line: int = Field(description="1-based position of the line; refunds name lines by it.")
    sku: str | None
    name: str
    category: str | None
    quantity: int
    unit_price: Money
    discount: Money
    amount: Money = Field(description="quantity x unit price - discount.")
    refunded_quantity: int = Field(description="Units returned by refunds so far.")


class Purchase(Schema):
    """A purchase with its line items; amounts are decimal strings in one currency."""

    id: uuid.UUID
    contact_id: uuid.UUID
    occurred_at: UTCDateTime
    channel: PurchaseChannel
    store_id: str | None
    status: PurchaseStatus
    total: Money
    refunded: Money = Field(description="Refunded so far.")
    net: Money = Field(description="total - refunded.")
    items: list[PurchaseItem]
    attributes: dict[str, Any]
    external_ids: dict[str, str]
    created_at: UTCDateTime
    updated_at: UTCDateTime
    version: int


# -- refunds ---------------------------------------------------------------------------------


class RefundLineInput(InputSchema):
    line: int = Field(ge=1, le=MAX_ITEMS, strict=True, description="The purchase line.")
    quantity: Quantity = Field(description="Units returned.")


class RefundCreate(InputSchema):
    """Either ``amount`` or ``items``.

    By items, each returned unit gives back its unit price minus its share of the line's
    discount. The share of the first n units ever returned from a line is
    ceil(discount x n / quantity) in minor units, so the shares of all returns of a line add up
    exactly to its discount and every refund is an integer number of minor units, never more
    than was paid for the units returned so far.
    """

    amount: Money | None = Field(default=None, description="In the purchase's currency.")
    items: list[RefundLineInput] | None = Field(
        default=None, min_length=1, max_length=MAX_REFUND_ITEMS, description="Returned units."
    )
    reason: Reason | None = None
    occurred_at: UTCDateTime | None = Field(
        default=None, description="When the refund was made; default: now (database clock)."
    )
    external_id: ExternalIdValue | None = Field(
        default=None,
        description="The POS or shop's id of the return. A refund sent again with an id "
        "already recorded on this purchase stores nothing and returns the recorded refund.",
    )

    @model_validator(mode="after")
    def _amount_or_items(self) -> RefundCreate:
        if (self.amount is None) == (self.items is None):
            raise ValueError("give either amount or items, not both")
        if self.items is not None:
            lines = [item.line for item in self.items]
            if len(lines) != len(set(lines)):
                raise ValueError("each line may appear once in items")
        return self


class RefundLine(Schema):
    line: int
    quantity: int
    amount: Money


class PurchaseRefund(Schema):
    id: uuid.UUID
    purchase_id: uuid.UUID
    contact_id: uuid.UUID
    occurred_at: UTCDateTime
    amount: Money
    items: list[RefundLine] = Field(description="Returned units, empty for a refund by amount.")
    reason: str | None
    external_id: str | None
    created_at: UTCDateTime


class RefundResult(PurchaseRefund):
    """The refund, and the purchase as it stands after it."""

    purchase_status: PurchaseStatus
    purchase_refunded: Money = Field(description="All refunds of the purchase so far.")
    purchase_version: int = Field(description="The purchase's new version (its ETag).")


# -- summaries -------------------------------------------------------------------------------


class CurrencySummary(Schema):
    """A contact's purchases in one currency (amounts are never added across currencies)."""

    currency: str
    first_purchase_at: UTCDateTime
    last_purchase_at: UTCDateTime
    lifetime_count: int
    lifetime_spend: Money
    last_12_months_count: int
    last_12_months_spend: Money
    average_order_value: Money = Field(
        description="lifetime_spend / lifetime_count, rounded half up to the minor unit."
    )


class PurchaseSummary(Schema):
    """A contact's purchase history at a glance.

    Counted: purchases neither cancelled nor fully refunded; spend is net of refunds. The
    12-month window ends at the database's current time.
    """

    first_purchase_at: UTCDateTime | None
    last_purchase_at: UTCDateTime | None
    lifetime_count: int = Field(description="Purchases in every currency.")
    by_currency: list[CurrencySummary] = Field(description="Sorted by currency code.")


def summary_of(currencies: list[CurrencySummary]) -> PurchaseSummary:
    firsts: list[datetime] = [item.first_purchase_at for item in currencies]
    lasts: list[datetime] = [item.last_purchase_at for item in currencies]
    return PurchaseSummary(
        first_purchase_at=min(firsts) if firsts else None,
        last_purchase_at=max(lasts) if lasts else None,
        lifetime_count=sum(item.lifetime_count for item in currencies),
        by_currency=sorted(currencies, key=lambda item: item.currency),
    )
