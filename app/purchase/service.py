"""Purchases: order history with line items and refunds, the input to loyalty and value metrics.

Amounts are stored as integers in the currency's minor unit and only ever compared or added
within one currency.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.dependencies import AuthContext
from app.contact.exceptions import ContactMerged, ContactNotFound
from app.contact.references import column_mover, register_contact_reference
from app.db.locking import lock_keys
from app.events import outbox
from app.kit.changes import changed_fields
from app.kit.errors import FieldError, ValidationFailed
from app.kit.etag import check_if_match
from app.kit.ids import uuid7
from app.kit.merge_patch import merge_patch
from app.kit.money import Money
from app.kit.pagination import Keyset, Sort, SortField, parse_datetime, parse_sort
from app.kit.schemas import validate_value
from app.kit.validators import Attributes, ExternalIds
from app.models import Purchase, PurchaseExternalId, PurchaseItem, PurchaseRefund
from app.purchase import listeners, schemas
from app.purchase.exceptions import (
    DuplicatePurchase,
    PurchaseCancelled,
    PurchaseNotFound,
    RefundExceedsPaid,
    RefundNotFound,
)
from app.purchase.repository import PurchaseFilters, PurchaseRepository

SORTS = {
    "occurred_at": SortField(Purchase.occurred_at, parse_datetime),
    "created_at": SortField(Purchase.created_at, parse_datetime),
}
REFUND_SORTS = {"created_at": SortField(PurchaseRefund.created_at, parse_datetime)}
OLDEST_FIRST = Sort(name="created_at", descending=False)
# Amounts live in BIGINT columns; anything larger is refused before it reaches them.
MAX_MINOR = 2**63 - 1
MAX_RECENT = 100


async def _move_purchases(
    session: AsyncSession,
    workspace_id: uuid.UUID,
    survivor_id: uuid.UUID,
    absorbed_ids: Sequence[uuid.UUID],
) -> None:
    # A new version, so that cached copies (ETags) of a re-pointed purchase go stale.
    await session.execute(
        text(
            "UPDATE purchases SET contact_id = :survivor, version = version + 1, "
            "updated_at = now() WHERE workspace_id = :workspace_id AND contact_id = ANY(:absorbed)"
        ),
        {"survivor": survivor_id, "workspace_id": workspace_id, "absorbed": list(absorbed_ids)},
    )


register_contact_reference("purchases", _move_purchases)
register_contact_reference("purchase_refunds", column_mover("purchase_refunds", "contact_id"))


@dataclass(frozen=True)
class PurchaseQuery:
    """What a caller asks of the purchase list."""

    contact_id: uuid.UUID | None = None
    statuses: Sequence[str] = ()
    channels: Sequence[str] = ()
    store_id: str | None = None
    currency: str | None = None
    occurred_after: datetime | None = None
    occurred_before: datetime | None = None


@dataclass(frozen=True)
class _PricedLine:
    item: schemas.PurchaseItemInput
    unit_price_minor: int
    discount_minor: int


def _priced(data: schemas.PurchaseCreate) -> tuple[int, list[_PricedLine]]:
    """The total and lines in minor units, or a 422 naming every amount that is wrong."""
    currency = data.total.currency
    errors: list[FieldError] = []
    total = data.total.to_minor_units()
    if total < 0:
        errors.append(FieldError(field="total.amount", message="must not be negative"))
    elif total > MAX_MINOR:
        errors.append(FieldError(field="total.amount", message="is out of range"))
    lines: list[_PricedLine] = []
    for index, item in enumerate(data.items):
        path = f"items.{index}"
        prices = [("unit_price", item.unit_price)]
        if item.discount is not None:
            prices.append(("discount", item.discount))
        wrong_currency = [name for name, money in prices if money.currency != currency]
        for name in wrong_currency:
            errors.append(
                FieldError(
                    field=f"{path}.{name}.currency",
                    message=f"must be {currency}, the currency of the total",
                )
            )
        if wrong_currency:
            continue
        unit = item.unit_price.to_minor_units()
        discount = item.discount.to_minor_units() if item.discount is not None else 0
        if unit < 0:
            errors.append(FieldError(field=f"{path}.unit_price.amount", message="negative"))
        if discount < 0:
            errors.append(FieldError(field=f"{path}.discount.amount", message="negative"))
        gross = item.quantity * unit
        if gross > MAX_MINOR:
            errors.append(
                FieldError(field=f"{path}.quantity", message="quantity x unit price is too large")
            )
        elif unit >= 0 and discount > gross:
            errors.append(
                FieldError(field=f"{path}.discount.amount", message="exceeds quantity x unit price")
            )
        lines.append(_PricedLine(item=item, unit_price_minor=unit, discount_minor=discount))
    if not errors and lines:
        added = sum(line.item.quantity * line.unit_price_minor - line.discount_minor
                    for line in lines)  # fmt: skip
        if added != total:
            errors.append(
                FieldError(
                    field="total.amount",
                    message=f"the items add up to "
                    f"{Money.from_minor_units(added, currency).amount} {currency}, "
                    f"not {data.total.amount}",
                )
            )
    if errors:
        raise ValidationFailed("The purchase's amounts do not add up", errors=errors)
    return total, lines


def _discount_share(discount: int, quantity: int, units: int) -> int:
    """The part of a line's discount carried by its first ``units`` units, rounded up."""
    return -(-discount * units // quantity)


class PurchaseService:
    # -- reading -----------------------------------------------------------------------------
    async def get(
        self, session: AsyncSession, auth: AuthContext, purchase_id: uuid.UUID
    ) -> Purchase:
        """Raises: PurchaseNotFound: no such purchase in the caller's workspace."""
        purchase = await PurchaseRepository(session).get(auth.workspace_id, purchase_id)
        if purchase is None:
            raise PurchaseNotFound()
        return purchase

    async def get_many(
        self, session: AsyncSession, auth: AuthContext, purchase_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, Purchase]:
        """Purchases of the caller's workspace by id, with items; others are simply absent."""
        if not purchase_ids:
            return {}
        rows = await PurchaseRepository(session).get_many(auth.workspace_id, purchase_ids)
        return {row.id: row for row in rows}

    async def get_by_external_id(
        self, session: AsyncSession, auth: AuthContext, system: str, value: str
    ) -> Purchase:
        """Raises: PurchaseNotFound: no purchase has this key in the caller's workspace."""
        purchase_id = await PurchaseRepository(session).by_external_id(
            auth.workspace_id, system, value
        )
        if purchase_id is None:
            raise PurchaseNotFound(f"No purchase has {system} id {value!r}")
        return await self.get(session, auth, purchase_id)

    async def find(
        self,
        session: AsyncSession,
        auth: AuthContext,
        query: PurchaseQuery,
        *,
        limit: int,
        cursor: str | None,
        sort: str | None,
    ) -> tuple[list[Purchase], str | None]:
        """A page of purchases with their items, newest first unless ``sort`` says otherwise.

        Raises:
            ValidationFailed: unknown sort field.
            InvalidCursor: the cursor is malformed or from another listing.
        """
        keyset = Keyset.build(
            sort=parse_sort(sort, SORTS, "-occurred_at"),
            allowed=SORTS,
            id_column=Purchase.id,
            limit=limit,
            cursor=cursor,
        )
        filters = PurchaseFilters(
            contact_id=query.contact_id,
            statuses=query.statuses,
            channels=query.channels,
            store_id=query.store_id,
            currency=query.currency,
            occurred_after=query.occurred_after,
            occurred_before=query.occurred_before,
        )
        rows = await PurchaseRepository(session).find(auth.workspace_id, filters, keyset)
        column = keyset.field.column.key
        return keyset.page(rows, lambda row: (getattr(row, column), row.id))

    async def recent_for_contacts(
        self,
        session: AsyncSession,
        auth: AuthContext,
        contact_ids: Sequence[uuid.UUID],
        limit: int,
    ) -> dict[uuid.UUID, list[Purchase]]:
        """Each contact's newest ``limit`` purchases (items loaded), in one SQL statement.

        Every contact asked for is a key, with an empty list when it has no purchases.

        Raises:
            ValidationFailed: ``limit`` is not between 1 and 100.
        """
        if not 1 <= limit <= MAX_RECENT:
            raise ValidationFailed(
                f"limit must be between 1 and {MAX_RECENT}",
                errors=[FieldError(field="limit", message=f"1 to {MAX_RECENT}")],
            )
        grouped: dict[uuid.UUID, list[Purchase]] = {contact_id: [] for contact_id in contact_ids}
        if not contact_ids:
            return grouped
        rows = await PurchaseRepository(session).recent_for_contacts(
            auth.workspace_id, list(dict.fromkeys(contact_ids)), limit
        )
        for row in rows:
            grouped.setdefault(row.contact_id, []).append(row)
        return grouped

    async def summaries_for_contacts(
        self, session: AsyncSession, auth: AuthContext, contact_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, schemas.PurchaseSummary]:
        """Each contact's purchase summary, per currency, in one SQL statement.

        Counted are purchases neither cancelled nor fully refunded; spend is net of refunds;
        the 12-month window ends at the database's current time. Every contact asked for is a
        key (an empty summary when it has no purchases).
        """
        by_contact: dict[uuid.UUID, list[schemas.CurrencySummary]] = {
            contact_id: [] for contact_id in contact_ids
        }
        if contact_ids:
            totals = await PurchaseRepository(session).totals_for_contacts(
                auth.workspace_id, list(dict.fromkeys(contact_ids))
            )
            for row in totals:
                money = Money.from_minor_units
                # Half up, in integers: (2s + n) // 2n.
                average = (2 * row.spend_minor + row.count) // (2 * row.count)
                by_contact.setdefault(row.contact_id, []).append(
                    schemas.CurrencySummary(
                        currency=row.currency,
                        first_purchase_at=row.first_at,
                        last_purchase_at=row.last_at,
                        lifetime_count=row.count,
                        lifetime_spend=money(row.spend_minor, row.currency),
                        last_12_months_count=row.recent_count,
                        last_12_months_spend=money(row.recent_spend_minor, row.currency),
                        average_order_value=money(average, row.currency),
                    )
                )
        return {
            contact_id: schemas.summary_of(currencies)
            for contact_id, currencies in by_contact.items()
        }

    async def refunds(
        self,
        session: AsyncSession,
        auth: AuthContext,
        purchase_id: uuid.UUID,
        *,
        limit: int,
        cursor: str | None,
    ) -> tuple[list[PurchaseRefund], str | None]:
        """The purchase's refunds, oldest first.

        Raises:
            PurchaseNotFound: no such purchase in the caller's workspace.
            InvalidCursor: the cursor is malformed or from another listing.
        """
        repository = PurchaseRepository(session)
        if await repository.get(auth.workspace_id, purchase_id) is None:
            raise PurchaseNotFound()
        keyset = Keyset.build(
            sort=OLDEST_FIRST,
            allowed=REFUND_SORTS,
            id_column=PurchaseRefund.id,
            limit=limit,
            cursor=cursor,
        )
        rows = await repository.refunds_of(auth.workspace_id, purchase_id, keyset)
        return keyset.page(rows, lambda row: (row.created_at, row.id))

    async def get_refund(
        self,
        session: AsyncSession,
        auth: AuthContext,
        purchase_id: uuid.UUID,
        refund_id: uuid.UUID,
    ) -> PurchaseRefund:
        """Raises: RefundNotFound: no such refund of this purchase in the caller's workspace."""
        found = await PurchaseRepository(session).refund(
            auth.workspace_id, purchase_id, refund_id=refund_id
        )
        if found is None:
            raise RefundNotFound()
        return found

    async def refunds_with_channel(
        self, session: AsyncSession, auth: AuthContext, refund_ids: Sequence[uuid.UUID]
    ) -> list[tuple[PurchaseRefund, str]]:
        """Refunds of the caller's workspace by id, each with its purchase's channel (a refund
        happens where the purchase did); others are simply absent."""
        if not refund_ids:
            return []
        return await PurchaseRepository(session).refunds_with_channel(auth.workspace_id, refund_ids)

    async def refunds_for_purchases(
        self, session: AsyncSession, auth: AuthContext, purchase_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, list[PurchaseRefund]]:
        """Each purchase's refunds, oldest first, in one SQL statement."""
        grouped: dict[uuid.UUID, list[PurchaseRefund]] = {pid: [] for pid in purchase_ids}
        if purchase_ids:
            rows = await PurchaseRepository(session).refunds_of_many(
                auth.workspace_id, list(dict.fromkeys(purchase_ids))
            )
            for row in rows:
                grouped.setdefault(row.purchase_id, []).append(row)
        return grouped

    # -- writing -----------------------------------------------------------------------------
    async def create(
        self, session: AsyncSession, auth: AuthContext, data: schemas.PurchaseCreate
    ) -> tuple[Purchase, bool]:
        """Record a purchase; ``(purchase, created)``.

        Idempotent by external id: when one of ``external_ids`` is already recorded, nothing
        is stored and the recorded purchase is returned with ``created`` false. Concurrent
        requests with the same id queue on a lock, so only the first stores anything.

        Raises:
            ValidationFailed: the amounts do not add up or mix currencies.
            ContactNotFound: the buyer is not a contact of the caller's workspace.
            ContactMerged: the buyer was merged into another contact (named in the problem).
            DuplicatePurchase: its external ids belong to two different purchases.
        """
        total, lines = _priced(data)
        repository = PurchaseRepository(session)
        pairs = sorted(data.external_ids.items())
        if pairs:
            await lock_keys(
                session,
                auth.workspace_id,
                [f"purchase_external_id:{system}:{value}" for system, value in pairs],
            )
            owners = await repository.external_id_owners(auth.workspace_id, pairs)
            if len(set(owners.values())) > 1:
                (system, _), owner = sorted(owners.items())[-1]
                raise DuplicatePurchase(
                    "The external ids belong to different purchases",
                    field=f"external_ids.{system}",
                    existing_id=owner,
                )
            if owners:
                return await self.get(session, auth, next(iter(owners.values()))), False

        await self._check_contact(repository, auth, data.contact_id)
        purchase_id = uuid7()
        purchase = Purchase(
            workspace_id=auth.workspace_id,
            id=purchase_id,
            contact_id=data.contact_id,
            occurred_at=data.occurred_at,
            channel=data.channel,
            store_id=data.store_id,
            status=data.status,
            currency=data.total.currency,
            total_minor=total,
            refunded_minor=0,
            attributes=dict(data.attributes),
            version=1,
            items=[
                PurchaseItem(
                    workspace_id=auth.workspace_id,
                    purchase_id=purchase_id,
                    line=number,
                    sku=line.item.sku,
                    name=line.item.name,
                    category=line.item.category,
                    quantity=line.item.quantity,
                    unit_price_minor=line.unit_price_minor,
                    discount_minor=line.discount_minor,
                    refunded_quantity=0,
                )
                for number, line in enumerate(lines, start=1)
            ],
            external_ids=[],
        )
        self._set_external_ids(purchase, dict(pairs))
        repository.add(purchase)
        await session.flush()
        await listeners.purchase_created(session, auth, purchase)
        await outbox.record(
            session,
            workspace_id=auth.workspace_id,
            type="purchase.created",
            aggregate_type="purchase",
            aggregate_id=purchase.id,
            data=self.to_schema(purchase),
        )
        return purchase, True

    async def update(
        self,
        session: AsyncSession,
        auth: AuthContext,
        purchase_id: uuid.UUID,
        patch: schemas.PurchaseUpdate,
        *,
        if_match: str | None = None,
    ) -> Purchase:
        """Apply a merge patch to the fields that may change (see ``PurchaseUpdate``).

        Raises:
            PurchaseNotFound: no such purchase in the caller's workspace.
            PreconditionFailed: ``if_match`` names an older version.
            PurchaseCancelled: cancelling a purchase that has refunds.
            DuplicatePurchase: an external id belongs to another purchase.
            ValidationFailed: invalid attributes or external ids.
        """
        repository = PurchaseRepository(session)
        changes = patch.changes()
        purchase = await repository.get(auth.workspace_id, purchase_id, for_update=True)
        if purchase is None:
            raise PurchaseNotFound()
        check_if_match(if_match, purchase.version)
        before = self.to_schema(purchase).model_dump(mode="json")

        if changes.get("status") == "cancelled" and purchase.status != "cancelled":
            if purchase.refunded_minor > 0:
                raise PurchaseCancelled(
                    "A purchase with refunds cannot be cancelled; refund the rest instead",
                    errors=[FieldError(field="status", message="the purchase has refunds")],
                )
            purchase.status = "cancelled"
        if "external_ids" in changes:
            current = {item.system: item.value for item in purchase.external_ids}
            merged = validate_value(
                ExternalIds, merge_patch(current, changes["external_ids"]) or {}, "external_ids"
            )
            if merged != current:
                await self._check_external_ids_free(session, repository, auth, purchase, merged)
                # Old rows go first, in a flush of their own, so that a pair that stays is
                # deleted before it is inserted again.
                purchase.external_ids = []
                await session.flush()
                self._set_external_ids(purchase, merged)
        if "attributes" in changes:
            patched = merge_patch(purchase.attributes, changes["attributes"]) or {}
            purchase.attributes = validate_value(Attributes, patched, "attributes")
        if "channel" in changes:
            purchase.channel = changes["channel"]
        if "store_id" in changes:
            purchase.store_id = changes["store_id"]

        after = self.to_schema(purchase).model_dump(mode="json")
        changed = changed_fields(before, after)
        if not changed:
            return purchase
        # Writes the purchase's own row even when only external ids (rows of their own)
        # changed, so that its version and ETag move.
        purchase.updated_at = func.now()
        await session.flush()
        await session.refresh(purchase, ["updated_at"])
        if "status" in changed and purchase.status == "cancelled":
            await listeners.purchase_voided(session, auth, purchase, "cancel")
        await outbox.record(
            session,
            workspace_id=auth.workspace_id,
            type="purchase.updated",
            aggregate_type="purchase",
            aggregate_id=purchase.id,
            data=self.to_schema(purchase),
            changed_fields=changed,
        )
        return purchase

    async def delete(
        self,
        session: AsyncSession,
        auth: AuthContext,
        purchase_id: uuid.UUID,
        *,
        if_match: str | None = None,
    ) -> None:
        """Delete a purchase with its items, refunds and external ids.

        Raises:
            PurchaseNotFound: no such purchase in the caller's workspace.
            PreconditionFailed: ``if_match`` names an older version.
        """
        repository = PurchaseRepository(session)
        purchase = await repository.get(auth.workspace_id, purchase_id, for_update=True)
        if purchase is None:
            raise PurchaseNotFound()
        check_if_match(if_match, purchase.version)
        await listeners.purchase_voided(session, auth, purchase, "delete")
        await repository.delete(purchase)
        session.expunge(purchase)
        await outbox.record(
            session,
            workspace_id=auth.workspace_id,
            type="purchase.deleted",
            aggregate_type="purchase",
            aggregate_id=purchase_id,
            data={"id": str(purchase_id), "contact_id": str(purchase.contact_id)},
        )

    async def refund(
        self,
        session: AsyncSession,
        auth: AuthContext,
        purchase_id: uuid.UUID,
        data: schemas.RefundCreate,
    ) -> tuple[PurchaseRefund, Purchase, bool]:
        """Give money back, by amount or by returned units; ``(refund, purchase, created)``.

        The purchase row is locked (FOR UPDATE) for the whole check-and-write, so concurrent
        refunds of one purchase run one after the other and together never exceed what was
        paid (the database's CHECK on ``refunded_minor`` is the backstop). A refund with an
        ``external_id`` already recorded on the purchase stores nothing and is returned with
        ``created`` false.

        Raises:
            PurchaseNotFound: no such purchase in the caller's workspace.
            PurchaseCancelled: the purchase was cancelled.
            RefundExceedsPaid: more money, or more units of a line, than remain.
            ValidationFailed: another currency, an unknown line, or nothing to give back.
        """
        repository = PurchaseRepository(session)
        contact_id = await repository.contact_of(auth.workspace_id, purchase_id)
        if contact_id is None:
            raise PurchaseNotFound()
        # The buyer is held before the purchase row, in the order a contact merge takes them
        # (it locks the contact, then re-points its purchases): the refund's reference to the
        # contact could otherwise wait on a merge that waits on this purchase.
        await repository.hold_contact(auth.workspace_id, contact_id)
        purchase = await repository.get(auth.workspace_id, purchase_id, for_update=True)
        if purchase is None:
            raise PurchaseNotFound()
        if data.external_id is not None:
            known = await repository.refund(
                auth.workspace_id, purchase_id, external_id=data.external_id
            )
            if known is not None:
                return known, purchase, False
        if purchase.status == "cancelled":
            raise PurchaseCancelled("A cancelled purchase cannot be refunded")

        currency = purchase.currency
        if data.amount is not None:
            lines: list[dict[str, Any]] = []
            amount, field = self._refund_by_amount(data.amount, currency), "amount"
        else:
            amount, lines = self._refund_by_items(purchase, data.items or [])
            field = "items"
        remaining = purchase.total_minor - purchase.refunded_minor
        if amount > remaining:
            left = Money.from_minor_units(remaining, currency)
            raise RefundExceedsPaid(
                f"Only {left.amount} {currency} remain to be refunded on this purchase",
                errors=[FieldError(field=field, message=f"at most {left.amount} {currency}")],
                extra={"remaining": left.model_dump(mode="json")},
            )
        if amount == 0:
            raise ValidationFailed(
                "The returned units cost nothing: there is nothing to refund",
                errors=[FieldError(field=field, message="amounts to 0")],
            )

        refund = PurchaseRefund(
            workspace_id=auth.workspace_id,
            id=uuid7(),
            purchase_id=purchase.id,
            contact_id=purchase.contact_id,
            occurred_at=data.occurred_at if data.occurred_at is not None else func.now(),
            currency=currency,
            amount_minor=amount,
            items=lines,
            reason=data.reason,
            external_id=data.external_id,
        )
        purchase.refunded_minor += amount
        purchase.status = (
            "refunded" if purchase.refunded_minor == purchase.total_minor else "partially_refunded"
        )
        repository.add(refund)
        await session.flush()
        await session.refresh(purchase, ["updated_at"])
        await session.refresh(refund, ["occurred_at", "created_at"])
        await listeners.purchase_refunded(session, auth, purchase, refund)
        await outbox.record(
            session,
            workspace_id=auth.workspace_id,
            type="purchase.refunded",
            aggregate_type="purchase",
            aggregate_id=purchase.id,
            data=self.refund_result(refund, purchase),
        )
        return refund, purchase, True

    @staticmethod
    def _refund_by_amount(money: Money, currency: str) -> int:
        if money.currency != currency:
            raise ValidationFailed(
                f"The purchase was paid in {currency}",
                errors=[FieldError(field="amount.currency", message=f"must be {currency}")],
            )
        amount = money.to_minor_units()
        if amount <= 0:
            raise ValidationFailed(
                "A refund gives back a positive amount",
                errors=[FieldError(field="amount.amount", message="must be more than 0")],
            )
        return amount

    @staticmethod
    def _refund_by_items(
        purchase: Purchase, wanted: Sequence[schemas.RefundLineInput]
    ) -> tuple[int, list[dict[str, Any]]]:
        by_line = {item.line: item for item in purchase.items}
        unknown: list[FieldError] = []
        too_many: list[FieldError] = []
        for index, request in enumerate(wanted):
            item = by_line.get(request.line)
            if item is None:
                unknown.append(
                    FieldError(field=f"items.{index}.line", message="the purchase has no such line")
                )
                continue
            left = item.quantity - item.refunded_quantity
            if request.quantity > left:
                too_many.append(
                    FieldError(
                        field=f"items.{index}.quantity",
                        message=f"{left} of {item.quantity} units of line {item.line} remain",
                    )
                )
        if unknown:
            raise ValidationFailed("No such purchase line", errors=unknown)
        if too_many:
            raise RefundExceedsPaid("More units than remain to be returned", errors=too_many)
        amount = 0
        lines: list[dict[str, Any]] = []
        for request in sorted(wanted, key=lambda request: request.line):
            item = by_line[request.line]
            before, after = item.refunded_quantity, item.refunded_quantity + request.quantity
            discount = _discount_share(item.discount_minor, item.quantity, after) - _discount_share(
                item.discount_minor, item.quantity, before
            )
            line_amount = request.quantity * item.unit_price_minor - discount
            item.refunded_quantity = after
            amount += line_amount
            lines.append(
                {"line": item.line, "quantity": request.quantity, "amount_minor": line_amount}
            )
        return amount, lines

    # -- output ------------------------------------------------------------------------------
    def to_schema(self, purchase: Purchase) -> schemas.Purchase:
        currency = purchase.currency

        def money(minor: int) -> Money:
            return Money.from_minor_units(minor, currency)

        return schemas.Purchase(
            id=purchase.id,
            contact_id=purchase.contact_id,
            occurred_at=purchase.occurred_at,
            channel=purchase.channel,  # type: ignore[arg-type]
            store_id=purchase.store_id,
            status=purchase.status,  # type: ignore[arg-type]
            total=money(purchase.total_minor),
            refunded=money(purchase.refunded_minor),
            net=money(purchase.total_minor - purchase.refunded_minor),
            items=[
                schemas.PurchaseItem(
                    line=item.line,
                    sku=item.sku,
                    name=item.name,
                    category=item.category,
                    quantity=item.quantity,
                    unit_price=money(item.unit_price_minor),
                    discount=money(item.discount_minor),
                    amount=money(item.quantity * item.unit_price_minor - item.discount_minor),
                    refunded_quantity=item.refunded_quantity,
                )
                for item in sorted(purchase.items, key=lambda item: item.line)
            ],
            attributes=dict(purchase.attributes),
            external_ids={
                x.system: x.value for x in sorted(purchase.external_ids, key=lambda x: x.system)
            },
            created_at=purchase.created_at,
            updated_at=purchase.updated_at,
            version=purchase.version,
        )

    def refund_to_schema(self, refund: PurchaseRefund) -> schemas.PurchaseRefund:
        return schemas.PurchaseRefund(**self._refund_fields(refund))

    def refund_result(self, refund: PurchaseRefund, purchase: Purchase) -> schemas.RefundResult:
        return schemas.RefundResult(
            **self._refund_fields(refund),
            purchase_status=purchase.status,  # type: ignore[arg-type]
            purchase_refunded=Money.from_minor_units(purchase.refunded_minor, purchase.currency),
            purchase_version=purchase.version,
        )

    @staticmethod
    def _refund_fields(refund: PurchaseRefund) -> dict[str, Any]:
        currency = refund.currency
        return {
            "id": refund.id,
            "purchase_id": refund.purchase_id,
            "contact_id": refund.contact_id,
            "occurred_at": refund.occurred_at,
            "amount": Money.from_minor_units(refund.amount_minor, currency),
            "items": [
                schemas.RefundLine(
                    line=line["line"],
                    quantity=line["quantity"],
                    amount=Money.from_minor_units(line["amount_minor"], currency),
                )
                for line in refund.items
            ],
            "reason": refund.reason,
            "external_id": refund.external_id,
            "created_at": refund.created_at,
        }

    # -- helpers -----------------------------------------------------------------------------
    @staticmethod
    async def _check_contact(
        repository: PurchaseRepository, auth: AuthContext, contact_id: uuid.UUID
    ) -> None:
        exists, merged_into = await repository.hold_contact(auth.workspace_id, contact_id)
        if not exists:
            raise ContactNotFound(
                f"No contact {contact_id} in this workspace",
                errors=[FieldError(field="contact_id", message="no such contact")],
            )
        if merged_into is not None:
            raise ContactMerged(merged_into)

    @staticmethod
    def _set_external_ids(purchase: Purchase, external_ids: dict[str, str]) -> None:
        purchase.external_ids = [
            PurchaseExternalId(
                workspace_id=purchase.workspace_id,
                purchase_id=purchase.id,
                system=system,
                value=value,
            )
            for system, value in sorted(external_ids.items())
        ]

    @staticmethod
    async def _check_external_ids_free(
        session: AsyncSession,
        repository: PurchaseRepository,
        auth: AuthContext,
        purchase: Purchase,
        external_ids: dict[str, str],
    ) -> None:
        pairs = sorted(external_ids.items())
        await lock_keys(
            session,
            auth.workspace_id,
            [f"purchase_external_id:{system}:{value}" for system, value in pairs],
        )
        owners = await repository.external_id_owners(auth.workspace_id, pairs)
        for (system, value), owner in sorted(owners.items()):
            if owner != purchase.id:
                raise DuplicatePurchase(
                    f"A purchase with {system} id {value!r} already exists",
                    field=f"external_ids.{system}",
                    existing_id=owner,
                )


purchase = PurchaseService()
