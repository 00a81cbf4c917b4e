from __future__ import annotations

import functools
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, case, delete, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload, selectinload

from app.db.pairs import pair_owners
from app.db.params import in_uuids, newest_per_contact, rows_among, uuid_param
from app.kit.pagination import Keyset
from app.models import Contact, Purchase, PurchaseExternalId, PurchaseRefund


@dataclass(frozen=True)
class PurchaseFilters:
    contact_id: uuid.UUID | None = None
    statuses: Sequence[str] = ()
    channels: Sequence[str] = ()
    store_id: str | None = None
    currency: str | None = None
    occurred_after: datetime | None = None
    occurred_before: datetime | None = None


@dataclass(frozen=True)
class CurrencyTotals:
    """One contact's aggregates in one currency, in minor units."""

    contact_id: uuid.UUID
    currency: str
    first_at: datetime
    last_at: datetime
    count: int
    spend_minor: int
    recent_count: int
    recent_spend_minor: int


def _with_children(statement: Select[Any]) -> Select[Any]:
    return statement.options(selectinload(Purchase.items), selectinload(Purchase.external_ids))


class PurchaseRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # -- contacts ----------------------------------------------------------------------------
    async def hold_contact(
        self, workspace_id: uuid.UUID, contact_id: uuid.UUID
    ) -> tuple[bool, uuid.UUID | None]:
        """Whether the contact exists, and whom it was merged into.

        The row is held (FOR KEY SHARE) until commit: a concurrent merge, which locks the
        contact FOR UPDATE, waits and then re-points the new purchase with the others.
        """
        result = await self.session.execute(
            select(Contact.merged_into_id)
            .where(Contact.workspace_id == workspace_id, Contact.id == contact_id)
            .with_for_update(read=True, key_share=True)
        )
        row = result.one_or_none()
        if row is None:
            return False, None
        return True, row.merged_into_id

    # -- purchases ---------------------------------------------------------------------------
    async def contact_of(self, workspace_id: uuid.UUID, purchase_id: uuid.UUID) -> uuid.UUID | None:
        result = await self.session.execute(
            select(Purchase.contact_id).where(
                Purchase.workspace_id == workspace_id, Purchase.id == purchase_id
            )
        )
        return result.scalar_one_or_none()

    async def get(
        self, workspace_id: uuid.UUID, purchase_id: uuid.UUID, *, for_update: bool = False
    ) -> Purchase | None:
        statement = _with_children(
            select(Purchase).where(
                Purchase.workspace_id == workspace_id, Purchase.id == purchase_id
            )
        )
        if for_update:
            statement = statement.with_for_update(of=Purchase).execution_options(
                populate_existing=True
            )
        found: Purchase | None = (await self.session.execute(statement)).scalars().one_or_none()
        return found

    async def get_many(self, workspace_id: uuid.UUID, ids: Iterable[uuid.UUID]) -> list[Purchase]:
        result = await self.session.execute(
            _purchases_by_id(), {"workspace_id": workspace_id, "ids": list(ids)}
        )
        return list(result.scalars().unique().all())

    def _filtered(self, workspace_id: uuid.UUID, filters: PurchaseFilters) -> Select[Any]:
        statement = select(Purchase).where(Purchase.workspace_id == workspace_id)
        if filters.contact_id is not None:
            statement = statement.where(Purchase.contact_id == filters.contact_id)
        if filters.statuses:
            statement = statement.where(Purchase.status.in_(filters.statuses))
        if filters.channels:
            statement = statement.where(Purchase.channel.in_(filters.channels))
        if filters.store_id is not None:
            statement = statement.where(Purchase.store_id == filters.store_id)
        if filters.currency is not None:
            statement = statement.where(Purchase.currency == filters.currency)
        if filters.occurred_after is not None:
            statement = statement.where(Purchase.occurred_at >= filters.occurred_after)
        if filters.occurred_before is not None:
            statement = statement.where(Purchase.occurred_at < filters.occurred_before)
        return statement

    async def find(
        self, workspace_id: uuid.UUID, filters: PurchaseFilters, keyset: Keyset
    ) -> list[Purchase]:
        statement = _with_children(keyset.apply(self._filtered(workspace_id, filters)))
        return list((await self.session.execute(statement)).scalars().all())

    async def recent_for_contacts(
        self, workspace_id: uuid.UUID, contact_ids: Sequence[uuid.UUID], per_contact: int
    ) -> list[Purchase]:
        """Each contact's newest ``per_contact`` purchases with items and ids: one statement.

        A LATERAL subquery per contact walks ``ix_purchases_contact`` backwards and stops after
        ``per_contact`` rows, however many purchases a contact has.
        """
        result = await self.session.execute(
            _recent_for_contacts(),
            {"workspace_id": workspace_id, "contact_ids": list(contact_ids),
             "per_contact": per_contact},
        )  # fmt: skip
        return list(result.unique().scalars().all())

    async def totals_for_contacts(
        self, workspace_id: uuid.UUID, contact_ids: Sequence[uuid.UUID]
    ) -> list[CurrencyTotals]:
        """Per contact and currency: purchases neither cancelled nor fully refunded, net of
        refunds, over their lifetime and the last 12 months by the database's clock."""
        statement = _totals_for_contacts()
        params = {"workspace_id": workspace_id, "contact_ids": list(contact_ids)}
        rows = (await self.session.execute(statement, params)).all()
        return [
            CurrencyTotals(
                contact_id=row.contact_id,
                currency=row.currency,
                first_at=row.first_at,
                last_at=row.last_at,
                count=int(row.purchases),
                spend_minor=int(row.spend_minor),
                recent_count=int(row.recent_count),
                recent_spend_minor=int(row.recent_spend_minor),
            )
            for row in rows
        ]

    # -- external ids ------------------------------------------------------------------------
    async def by_external_id(
        self, workspace_id: uuid.UUID, system: str, value: str
    ) -> uuid.UUID | None:
        result = await self.session.execute(
            select(PurchaseExternalId.purchase_id).where(
                PurchaseExternalId.workspace_id == workspace_id,
                PurchaseExternalId.system == system,
                PurchaseExternalId.value == value,
            )
        )
        return result.scalar_one_or_none()

    async def external_id_owners(
        self, workspace_id: uuid.UUID, pairs: Iterable[tuple[str, str]]
    ) -> dict[tuple[str, str], uuid.UUID]:
        return await pair_owners(
            self.session, PurchaseExternalId.__table__, "purchase_id", workspace_id, pairs
        )

    # -- refunds -----------------------------------------------------------------------------
    async def refunds_of(
        self, workspace_id: uuid.UUID, purchase_id: uuid.UUID, keyset: Keyset
    ) -> list[PurchaseRefund]:
        statement = keyset.apply(
            select(PurchaseRefund).where(
                PurchaseRefund.workspace_id == workspace_id,
                PurchaseRefund.purchase_id == purchase_id,
            )
        )
        return list((await self.session.execute(statement)).scalars().all())

    async def refunds_of_many(
        self, workspace_id: uuid.UUID, purchase_ids: Sequence[uuid.UUID]
    ) -> list[PurchaseRefund]:
        statement = (
            select(PurchaseRefund)
            .where(
                PurchaseRefund.workspace_id == workspace_id,
                PurchaseRefund.purchase_id.in_(purchase_ids),
            )
            .order_by(PurchaseRefund.purchase_id, PurchaseRefund.created_at, PurchaseRefund.id)
        )
        return list((await self.session.execute(statement)).scalars().all())

    async def refunds_with_channel(
        self, workspace_id: uuid.UUID, refund_ids: Sequence[uuid.UUID]
    ) -> list[tuple[PurchaseRefund, str]]:
        """Refunds by id, each with the channel of its purchase."""
        statement = (
            select(PurchaseRefund, Purchase.channel)
            .join(
                Purchase,
                (Purchase.workspace_id == PurchaseRefund.workspace_id)
                & (Purchase.id == PurchaseRefund.purchase_id),
            )
            .where(
                PurchaseRefund.workspace_id == workspace_id,
                PurchaseRefund.id.in_(list(refund_ids)),
            )
        )
        return [(row[0], row[1]) for row in await self.session.execute(statement)]

    async def refund(
        self,
        workspace_id: uuid.UUID,
        purchase_id: uuid.UUID,
        *,
        refund_id: uuid.UUID | None = None,
        external_id: str | None = None,
    ) -> PurchaseRefund | None:
        conditions = [
            PurchaseRefund.workspace_id == workspace_id,
            PurchaseRefund.purchase_id == purchase_id,
        ]
        if refund_id is not None:
            conditions.append(PurchaseRefund.id == refund_id)
        if external_id is not None:
            conditions.append(PurchaseRefund.external_id == external_id)
        result = await self.session.execute(select(PurchaseRefund).where(and_(*conditions)))
        return result.scalars().one_or_none()

    # -- writing -----------------------------------------------------------------------------
    def add(self, row: Purchase | PurchaseRefund) -> None:
        self.session.add(row)

    async def delete(self, purchase: Purchase) -> None:
        await self.session.execute(
            delete(Purchase).where(
                Purchase.workspace_id == purchase.workspace_id, Purchase.id == purchase.id
            )
        )


# The reads below run for every contact page (GraphQL loaders, the 360 view, the timeline):
# built once with bound parameters (app.db.params), not for each request.


@functools.cache
def _purchases_by_id() -> Select[Any]:
    # Joined, not a statement per collection: a receipt has a few lines and ids at most, and
    # the timeline loads a page of purchases in this one round trip.
    return (
        rows_among(Purchase, Purchase.id)
        .options(joinedload(Purchase.items), joinedload(Purchase.external_ids))
        .execution_options(populate_existing=True)
    )


@functools.cache
def _recent_for_contacts() -> Select[Any]:
    return newest_per_contact(Purchase, Purchase.occurred_at).options(
        joinedload(Purchase.items), joinedload(Purchase.external_ids)
    )


@functools.cache
def _totals_for_contacts() -> Select[Any]:
    net = Purchase.total_minor - Purchase.refunded_minor
    recent = Purchase.occurred_at >= func.now() - text("interval '12 months'")
    return (
        select(
            Purchase.contact_id,
            Purchase.currency,
            func.min(Purchase.occurred_at).label("first_at"),
            func.max(Purchase.occurred_at).label("last_at"),
            func.count().label("purchases"),
            func.sum(net).label("spend_minor"),
            func.count().filter(recent).label("recent_count"),
            func.coalesce(func.sum(case((recent, net), else_=0)), 0).label("recent_spend_minor"),
        )
        .where(
            Purchase.workspace_id == uuid_param("workspace_id"),
            in_uuids(Purchase.contact_id, "contact_ids"),
            Purchase.status.in_(("completed", "partially_refunded")),
        )
        .group_by(Purchase.contact_id, Purchase.currency)
    )
