from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, cast

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from app.auth.scopes import Scope
from app.graphql.common import (
    ExternalIdInput,
    ExternalIdType,
    MoneyInput,
    MoneyType,
    external_ids_dict,
)
from app.graphql.context import Context
from app.graphql.dataloaders.contact_by_id import contact_by_id
from app.graphql.dataloaders.purchase_refunds_by_purchase import purchase_refunds_by_purchase
from app.graphql.relay import Connection, Edge, page_of, page_size
from app.kit.pagination import _encode, parse_sort
from app.kit.schemas import parse_input
from app.models import Purchase, PurchaseRefund
from app.purchase import schemas
from app.purchase.service import SORTS, PurchaseQuery
from app.purchase.service import purchase as purchase_service

if TYPE_CHECKING:
    from app.contact.graphql import ContactType


@strawberry.type(name="PurchaseItem")
class PurchaseItemType:
    line: int
    sku: str | None
    name: str
    category: str | None
    quantity: int
    unit_price: MoneyType
    discount: MoneyType
    amount: MoneyType = strawberry.field(description="quantity x unit price - discount.")
    refunded_quantity: int

    @classmethod
    def from_schema(cls, data: schemas.PurchaseItem) -> PurchaseItemType:
        return cls(
            line=data.line,
            sku=data.sku,
            name=data.name,
            category=data.category,
            quantity=data.quantity,
            unit_price=MoneyType.from_money(data.unit_price),
            discount=MoneyType.from_money(data.discount),
            amount=MoneyType.from_money(data.amount),
            refunded_quantity=data.refunded_quantity,
        )


@strawberry.type(name="RefundLine")
class RefundLineType:
    line: int
    quantity: int
    amount: MoneyType


@strawberry.type(name="PurchaseRefund")
class PurchaseRefundType:
    id: uuid.UUID
    purchase_id: uuid.UUID
    contact_id: uuid.UUID
    occurred_at: datetime
    amount: MoneyType
    items: list[RefundLineType]
    reason: str | None
    external_id: str | None
    created_at: datetime

    @classmethod
    def from_model(cls, record: PurchaseRefund) -> PurchaseRefundType:
        data = purchase_service.refund_to_schema(record)
        return cls(
            id=data.id,
            purchase_id=data.purchase_id,
            contact_id=data.contact_id,
            occurred_at=data.occurred_at,
            amount=MoneyType.from_money(data.amount),
            items=[
                RefundLineType(
                    line=line.line, quantity=line.quantity, amount=MoneyType.from_money(line.amount)
                )
                for line in data.items
            ],
            reason=data.reason,
            external_id=data.external_id,
            created_at=data.created_at,
        )


@strawberry.type(name="Purchase")
class PurchaseType:
    id: uuid.UUID
    contact_id: uuid.UUID
    occurred_at: datetime
    channel: str
    store_id: str | None
    status: str
    total: MoneyType
    refunded: MoneyType
    net: MoneyType
    items: list[PurchaseItemType]
    attributes: JSON
    external_ids: list[ExternalIdType]
    created_at: datetime
    updated_at: datetime
    version: int

    @strawberry.field(description="The buyer.")
    async def contact(
        self, info: Info[Context, None]
    ) -> Annotated[ContactType, strawberry.lazy("app.contact.graphql")] | None:
        from app.contact.graphql import ContactType

        record = await info.context.loaders.get(contact_by_id).load(self.contact_id)
        return ContactType.from_schema(record) if record is not None else None

    @strawberry.field(description="Refunds of the purchase, oldest first.")
    async def refunds(self, info: Info[Context, None]) -> list[PurchaseRefundType]:
        rows = await info.context.loaders.get(purchase_refunds_by_purchase).load(self.id)
        return [PurchaseRefundType.from_model(row) for row in rows]

    @classmethod
    def from_model(cls, record: Purchase) -> PurchaseType:
        return cls.from_schema(purchase_service.to_schema(record))

    @classmethod
    def from_schema(cls, data: schemas.Purchase) -> PurchaseType:
        return cls(
            id=data.id,
            contact_id=data.contact_id,
            occurred_at=data.occurred_at,
            channel=data.channel,
            store_id=data.store_id,
            status=data.status,
            total=MoneyType.from_money(data.total),
            refunded=MoneyType.from_money(data.refunded),
            net=MoneyType.from_money(data.net),
            items=[PurchaseItemType.from_schema(item) for item in data.items],
            attributes=cast(JSON, data.attributes),
            external_ids=ExternalIdType.from_dict(data.external_ids),
            created_at=data.created_at,
            updated_at=data.updated_at,
            version=data.version,
        )


@strawberry.type(name="CurrencySummary")
class CurrencySummaryType:
    currency: str
    first_purchase_at: datetime
    last_purchase_at: datetime
    lifetime_count: int
    lifetime_spend: MoneyType
    last_12_months_count: int
    last_12_months_spend: MoneyType
    average_order_value: MoneyType


@strawberry.type(
    name="PurchaseSummary",
    description="Counted: purchases neither cancelled nor fully refunded; spend is net of "
    "refunds and never added across currencies.",
)
class PurchaseSummaryType:
    first_purchase_at: datetime | None
    last_purchase_at: datetime | None
    lifetime_count: int
    by_currency: list[CurrencySummaryType]

    @classmethod
    def from_schema(cls, data: schemas.PurchaseSummary) -> PurchaseSummaryType:
        return cls(
            first_purchase_at=data.first_purchase_at,
            last_purchase_at=data.last_purchase_at,
            lifetime_count=data.lifetime_count,
            by_currency=[
                CurrencySummaryType(
                    currency=item.currency,
                    first_purchase_at=item.first_purchase_at,
                    last_purchase_at=item.last_purchase_at,
                    lifetime_count=item.lifetime_count,
                    lifetime_spend=MoneyType.from_money(item.lifetime_spend),
                    last_12_months_count=item.last_12_months_count,
                    last_12_months_spend=MoneyType.from_money(item.last_12_months_spend),
                    average_order_value=MoneyType.from_money(item.average_order_value),
                )
                for item in data.by_currency
            ],
        )


@strawberry.type(name="RefundResult")
class RefundResultType:
    refund: PurchaseRefundType
    purchase: PurchaseType = strawberry.field(description="The purchase after the refund.")


@strawberry.input
class PurchaseFilter:
    contact_id: uuid.UUID | None = None
    statuses: list[str] | None = None
    channels: list[str] | None = None
    store_id: str | None = None
    currency: str | None = None
    occurred_after: datetime | None = None
    occurred_before: datetime | None = None


@strawberry.input
class PurchaseItemInput:
    sku: str | None = None
    name: str
    category: str | None = None
    quantity: int
    unit_price: MoneyInput
    discount: MoneyInput | None = None


@strawberry.input(description="Field names and rules are those of the REST purchase.")
class PurchaseCreateInput:
    contact_id: uuid.UUID
    occurred_at: datetime
    total: MoneyInput
    channel: str | None = strawberry.UNSET
    store_id: str | None = strawberry.UNSET
    status: str | None = strawberry.UNSET
    items: list[PurchaseItemInput] | None = strawberry.UNSET
    attributes: JSON | None = strawberry.UNSET
    external_ids: list[ExternalIdInput] | None = strawberry.UNSET


@strawberry.input(description="Merge patch; only these fields change after creation.")
class PurchaseUpdateInput:
    channel: str | None = strawberry.UNSET
    store_id: str | None = strawberry.UNSET
    status: str | None = strawberry.UNSET
    attributes: JSON | None = strawberry.UNSET
    external_ids: list[ExternalIdInput] | None = strawberry.UNSET


@strawberry.input
class RefundLineInput:
    line: int
    quantity: int


@strawberry.input(description="Either amount or items, as in REST.")
class RefundInput:
    amount: MoneyInput | None = strawberry.UNSET
    items: list[RefundLineInput] | None = strawberry.UNSET
    reason: str | None = strawberry.UNSET
    occurred_at: datetime | None = strawberry.UNSET
    external_id: str | None = strawberry.UNSET


def _plain(value: Any) -> Any:
    """A Strawberry input as the JSON the REST endpoint would take (UNSET members left out)."""
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, (MoneyInput, PurchaseItemInput, RefundLineInput)):
        return {
            name: _plain(item) for name, item in vars(value).items() if item is not strawberry.UNSET
        }
    return value


def _as_dict(value: PurchaseCreateInput | PurchaseUpdateInput | RefundInput) -> dict[str, Any]:
    data = {
        name: _plain(item) for name, item in vars(value).items() if item is not strawberry.UNSET
    }
    if "external_ids" in data:
        data["external_ids"] = external_ids_dict(data["external_ids"])
    return data


def cursor_of(record: Purchase, sort: str | None) -> str:
    """The connection cursor that resumes right after ``record`` in the ``sort`` order."""
    order = parse_sort(sort, SORTS, "-occurred_at")
    value: datetime = getattr(record, SORTS[order.name].column.key)
    return _encode([order.token, value.isoformat(), str(record.id)])


def connection(
    rows: list[Purchase], next_cursor: str | None, sort: str | None
) -> Connection[PurchaseType]:
    """A Relay connection of a page from ``PurchaseService.find``."""
    edges = [Edge(node=PurchaseType.from_model(row), cursor=cursor_of(row, sort)) for row in rows]
    return page_of(edges, next_cursor)


@strawberry.type
class PurchaseRootQuery:
    @strawberry.field(description="One purchase (scope: purchases:read).")
    async def purchase(self, info: Info[Context, None], id: uuid.UUID) -> PurchaseType | None:
        auth = info.context.require(Scope.purchases_read)
        record = await info.context.read(lambda session: purchase_service.get(session, auth, id))
        return PurchaseType.from_model(record)

    @strawberry.field(description="A purchase by its POS or shop order id.")
    async def purchase_by_external_id(
        self, info: Info[Context, None], system: str, value: str
    ) -> PurchaseType | None:
        auth = info.context.require(Scope.purchases_read)
        record = await info.context.read(
            lambda session: purchase_service.get_by_external_id(session, auth, system, value)
        )
        return PurchaseType.from_model(record)

    @strawberry.field(description="Purchases, newest first (sort: occurred_at, created_at).")
    async def purchases(
        self,
        info: Info[Context, None],
        first: int | None = None,
        after: str | None = None,
        filter: PurchaseFilter | None = None,
        sort: str | None = None,
    ) -> Connection[PurchaseType] | None:
        auth = info.context.require(Scope.purchases_read)
        criteria = filter or PurchaseFilter()
        query = PurchaseQuery(
            contact_id=criteria.contact_id,
            statuses=criteria.statuses or (),
            channels=criteria.channels or (),
            store_id=criteria.store_id,
            currency=criteria.currency.strip().upper() if criteria.currency else None,
            occurred_after=criteria.occurred_after,
            occurred_before=criteria.occurred_before,
        )
        limit = page_size(first)
        rows, next_cursor = await info.context.read(
            lambda session: purchase_service.find(
                session, auth, query, limit=limit, cursor=after, sort=sort
            )
        )
        return connection(rows, next_cursor, sort)


@strawberry.type
class PurchaseMutation:
    # Nullable results: a failed mutation reports its error without nulling the others.
    @strawberry.mutation(
        description="Record a purchase; with a known external id, returns the recorded one."
    )
    async def create_purchase(
        self, info: Info[Context, None], input: PurchaseCreateInput
    ) -> PurchaseType | None:
        auth = info.context.require(Scope.purchases_write)
        data = parse_input(schemas.PurchaseCreate, _as_dict(input))
        record, _ = await info.context.write(
            lambda session: purchase_service.create(session, auth, data)
        )
        return PurchaseType.from_model(record)

    @strawberry.mutation(description="Change a purchase (merge-patch semantics).")
    async def update_purchase(
        self,
        info: Info[Context, None],
        id: uuid.UUID,
        input: PurchaseUpdateInput,
        if_match: str | None = None,
    ) -> PurchaseType | None:
        auth = info.context.require(Scope.purchases_write)
        patch = parse_input(schemas.PurchaseUpdate, _as_dict(input))
        record = await info.context.write(
            lambda session: purchase_service.update(session, auth, id, patch, if_match=if_match)
        )
        return PurchaseType.from_model(record)

    @strawberry.mutation(description="Delete a purchase with its items and refunds.")
    async def delete_purchase(
        self, info: Info[Context, None], id: uuid.UUID, if_match: str | None = None
    ) -> uuid.UUID | None:
        auth = info.context.require(Scope.purchases_write)
        await info.context.write(
            lambda session: purchase_service.delete(session, auth, id, if_match=if_match)
        )
        return id

    @strawberry.mutation(description="Refund a purchase by amount or by returned items.")
    async def refund_purchase(
        self, info: Info[Context, None], id: uuid.UUID, input: RefundInput
    ) -> RefundResultType | None:
        auth = info.context.require(Scope.purchases_write)
        data = parse_input(schemas.RefundCreate, _as_dict(input))
        refund, record, _ = await info.context.write(
            lambda session: purchase_service.refund(session, auth, id, data)
        )
        return RefundResultType(
            refund=PurchaseRefundType.from_model(refund), purchase=PurchaseType.from_model(record)
        )
