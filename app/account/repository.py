from __future__ import annotations

import functools
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Select, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from app.db.pairs import pair_owners
from app.db.params import rows_among
from app.kit.pagination import Keyset
from app.kit.search import SearchTerms, ranked, searchable_view
from app.models import Account, AccountExternalId, Contact

# Row locks, weakest first. "key_share" keeps a row from being deleted (a new child may point
# at it); "no_key_update" is what a change of the row needs and lets children be added
# meanwhile; "update" also stops new references, for a delete.
Lock = Literal["key_share", "no_key_update", "update"]
SearchableAccount = searchable_view(Account)


@dataclass(frozen=True)
class AccountFilters:
    types: Sequence[str] = ()
    parent_account_id: uuid.UUID | None = None
    owner_id: str | None = None
    domain: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    updated_after: datetime | None = None
    updated_before: datetime | None = None


def _with_ids(statement: Select[Any]) -> Select[Any]:
    return statement.options(selectinload(Account.external_ids))


def _with_contact_children(statement: Select[Any]) -> Select[Any]:
    return statement.options(
        selectinload(Contact.emails),
        selectinload(Contact.phones),
        selectinload(Contact.external_ids),
    )


class AccountRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(
        self, workspace_id: uuid.UUID, account_id: uuid.UUID, *, lock: Lock | None = None
    ) -> Account | None:
        statement = _with_ids(
            select(Account).where(Account.workspace_id == workspace_id, Account.id == account_id)
        )
        if lock is not None:
            statement = statement.with_for_update(
                of=Account, read=lock == "key_share", key_share=lock != "update"
            ).execution_options(populate_existing=True)
        found: Account | None = (await self.session.execute(statement)).scalars().one_or_none()
        return found

    async def get_many(self, workspace_id: uuid.UUID, ids: Iterable[uuid.UUID]) -> list[Account]:
        result = await self.session.execute(
            _accounts_by_id(), {"workspace_id": workspace_id, "ids": list(ids)}
        )
        return list(result.scalars().all())

    async def exists(self, workspace_id: uuid.UUID, account_id: uuid.UUID) -> bool:
        """Whether the account exists, held so that it cannot be deleted before commit."""
        result = await self.session.execute(
            select(Account.id)
            .where(Account.workspace_id == workspace_id, Account.id == account_id)
            .with_for_update(read=True, key_share=True)
        )
        return result.scalar_one_or_none() is not None

    def _filtered(
        self, workspace_id: uuid.UUID, filters: AccountFilters, entity: Any = Account
    ) -> Select[Any]:
        statement = select(entity).where(entity.workspace_id == workspace_id)
        if filters.types:
            statement = statement.where(entity.type.in_(filters.types))
        if filters.parent_account_id is not None:
            statement = statement.where(entity.parent_account_id == filters.parent_account_id)
        if filters.owner_id is not None:
            statement = statement.where(entity.owner_id == filters.owner_id)
        if filters.domain is not None:
            statement = statement.where(entity.domain == filters.domain)
        if filters.created_after is not None:
            statement = statement.where(entity.created_at >= filters.created_after)
        if filters.created_before is not None:
            statement = statement.where(entity.created_at < filters.created_before)
        if filters.updated_after is not None:
            statement = statement.where(entity.updated_at >= filters.updated_after)
        if filters.updated_before is not None:
            statement = statement.where(entity.updated_at < filters.updated_before)
        return statement

    async def find(
        self, workspace_id: uuid.UUID, filters: AccountFilters, keyset: Keyset
    ) -> list[Account]:
        statement = _with_ids(keyset.apply(self._filtered(workspace_id, filters)))
        return list((await self.session.execute(statement)).scalars().all())

    async def search(
        self,
        workspace_id: uuid.UUID,
        filters: AccountFilters,
        terms: SearchTerms,
        *,
        limit: int,
        after: tuple[float, uuid.UUID] | None,
    ) -> list[tuple[Account, float]]:
        """Matches ranked best first: how much of the query the account's text contains."""
        statement = ranked(
            Account,
            SearchableAccount,
            self._filtered(workspace_id, filters, SearchableAccount),
            terms,
            workspace_id=workspace_id,
            limit=limit,
            after=after,
        )
        rows = (await self.session.execute(_with_ids(statement))).all()
        return [(row[0], float(row[1])) for row in rows]

    async def by_external_id(
        self, workspace_id: uuid.UUID, system: str, value: str
    ) -> uuid.UUID | None:
        result = await self.session.execute(
            select(AccountExternalId.account_id).where(
                AccountExternalId.workspace_id == workspace_id,
                AccountExternalId.system == system,
                AccountExternalId.value == value,
            )
        )
        return result.scalar_one_or_none()

    async def external_id_owners(
        self, workspace_id: uuid.UUID, pairs: Iterable[tuple[str, str]]
    ) -> dict[tuple[str, str], uuid.UUID]:
        return await pair_owners(
            self.session, AccountExternalId.__table__, "account_id", workspace_id, pairs
        )

    async def domain_owner(self, workspace_id: uuid.UUID, domain: str) -> uuid.UUID | None:
        result = await self.session.execute(
            select(Account.id).where(Account.workspace_id == workspace_id, Account.domain == domain)
        )
        return result.scalar_one_or_none()

    # -- hierarchy ---------------------------------------------------------------------------
    async def is_ancestor_or_self(
        self, workspace_id: uuid.UUID, account_id: uuid.UUID, *, of: uuid.UUID
    ) -> bool:
        """Whether ``account_id`` is ``of`` or one of its ancestors (so ``of`` is below it)."""
        chain = (
            select(Account.id, Account.parent_account_id)
            .where(Account.workspace_id == workspace_id, Account.id == of)
            .cte("chain", recursive=True)
        )
        parent = select(Account.id, Account.parent_account_id).where(
            Account.workspace_id == workspace_id, Account.id == chain.c.parent_account_id
        )
        # UNION, not UNION ALL: should a loop ever exist, repeated rows end the recursion.
        chain = chain.union(parent)
        result = await self.session.execute(
            select(select(chain.c.id).where(chain.c.id == account_id).exists())
        )
        return bool(result.scalar_one())

    async def detach_children(
        self, workspace_id: uuid.UUID, account_id: uuid.UUID
    ) -> list[uuid.UUID]:
        """Make the account's children top-level, as new versions of them."""
        result = await self.session.execute(
            update(Account)
            .where(Account.workspace_id == workspace_id, Account.parent_account_id == account_id)
            .values(parent_account_id=None, version=Account.version + 1, updated_at=func.now())
            .returning(Account.id)
            .execution_options(synchronize_session=False)
        )
        return list(result.scalars().all())

    # -- contacts ----------------------------------------------------------------------------
    async def contacts(
        self, workspace_id: uuid.UUID, account_id: uuid.UUID, keyset: Keyset
    ) -> list[Contact]:
        statement = select(Contact).where(
            Contact.workspace_id == workspace_id,
            Contact.account_id == account_id,
            Contact.merged_into_id.is_(None),
        )
        statement = _with_contact_children(keyset.apply(statement))
        return list((await self.session.execute(statement)).scalars().all())

    async def detach_contacts(
        self, workspace_id: uuid.UUID, account_id: uuid.UUID
    ) -> list[uuid.UUID]:
        """Unlink the account's contacts, as new versions of them; the live ones' ids."""
        result = await self.session.execute(
            update(Contact)
            .where(Contact.workspace_id == workspace_id, Contact.account_id == account_id)
            .values(account_id=None, version=Contact.version + 1, updated_at=func.now())
            .returning(Contact.id, Contact.merged_into_id)
            .execution_options(synchronize_session=False)
        )
        return [row.id for row in result if row.merged_into_id is None]

    async def newest_contacts_of(
        self, workspace_id: uuid.UUID, account_ids: Sequence[uuid.UUID], per_account: int
    ) -> list[Contact]:
        """The newest ``per_account`` live contacts of each account, in one query."""
        ranked = (
            select(
                Contact.id,
                func.row_number()
                .over(
                    partition_by=Contact.account_id,
                    order_by=(Contact.created_at.desc(), Contact.id.desc()),
                )
                .label("rank"),
            )
            .where(
                Contact.workspace_id == workspace_id,
                Contact.account_id.in_(list(account_ids)),
                Contact.merged_into_id.is_(None),
            )
            .subquery()
        )
        statement = _with_contact_children(
            select(Contact)
            .join(ranked, Contact.id == ranked.c.id)
            .where(Contact.workspace_id == workspace_id, ranked.c.rank <= per_account)
            .order_by(Contact.account_id, Contact.created_at.desc(), Contact.id.desc())
        )
        return list((await self.session.execute(statement)).scalars().all())

    async def contacts_by_ids(
        self, workspace_id: uuid.UUID, contact_ids: Sequence[uuid.UUID]
    ) -> list[Contact]:
        statement = _with_contact_children(
            select(Contact).where(
                Contact.workspace_id == workspace_id, Contact.id.in_(list(contact_ids))
            )
        ).execution_options(populate_existing=True)
        return list((await self.session.execute(statement)).scalars().all())

    # -- writing -----------------------------------------------------------------------------
    def add(self, account: Account) -> None:
        self.session.add(account)

    async def delete(self, account: Account) -> None:
        await self.session.execute(
            delete(Account).where(
                Account.workspace_id == account.workspace_id, Account.id == account.id
            )
        )


@functools.cache
def _accounts_by_id() -> Select[Any]:
    """Built once with bound parameters (app.db.params): contact pages load their accounts."""
    statement = _with_ids(rows_among(Account, Account.id)).order_by(Account.id)
    # Rows written by a bulk UPDATE may be in the identity map with their old values.
    return statement.execution_options(populate_existing=True)
