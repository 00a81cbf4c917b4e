from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    bindparam,
    delete,
    exists,
    func,
    literal_column,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, UUID, aggregate_order_by
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload, with_expression

from app.db.pairs import pair_owners
from app.db.params import uuid_param
from app.kit.pagination import Keyset
from app.kit.search import SearchTerms, ranked, searchable_view
from app.models import Contact, ContactEmail, ContactExternalId, ContactPhone

SearchableContact = searchable_view(Contact)


_DOCUMENTS = text(
    "SELECT wanted.id, read.merged_into_id, read.body "
    "FROM unnest(:ids) AS wanted (id) "
    "CROSS JOIN LATERAL crm_contact_read(:workspace_id, wanted.id) AS read"
).bindparams(
    bindparam("ids", type_=ARRAY(UUID(as_uuid=True))),
    bindparam("workspace_id", type_=UUID(as_uuid=True)),
)

# Every read of a contact's history checks the contact first: built once (app.db.params).
_MERGED_INTO = select(Contact.merged_into_id).where(
    Contact.workspace_id == uuid_param("workspace_id"), Contact.id == uuid_param("contact_id")
)


@dataclass(frozen=True)
class ContactFilters:
    lifecycle_stages: Sequence[str] = ()
    tags: Sequence[str] = ()
    account_id: uuid.UUID | None = None
    owner_id: str | None = None
    email: str | None = None
    phone: str | None = None
    has_email: bool | None = None
    has_phone: bool | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    updated_after: datetime | None = None
    updated_before: datetime | None = None
    # A whole e-mail address typed as the search: the contact has it (beside ``email``, so a
    # contact with two addresses can be filtered by one and searched by the other).
    search_email: str | None = None


def _with_children(statement: Select[Any]) -> Select[Any]:
    """For changing contacts: their e-mails, phones and ids as ORM collections."""
    return statement.options(
        selectinload(Contact.emails),
        selectinload(Contact.phones),
        selectinload(Contact.external_ids),
    )


def _json_list(*pairs: Any, order_by: Any, where: Any) -> ColumnElement[Any]:
    return (
        select(
            func.coalesce(
                func.jsonb_agg(aggregate_order_by(func.jsonb_build_object(*pairs), order_by)),
                literal_column("'[]'::jsonb"),
            )
        )
        .where(where)
        .scalar_subquery()
    )


def _value_options() -> tuple[Any, ...]:
    emails = _json_list(
        "email", ContactEmail.email, "primary", ContactEmail.is_primary,
        order_by=ContactEmail.position,
        where=(ContactEmail.workspace_id == Contact.workspace_id)
        & (ContactEmail.contact_id == Contact.id),
    )  # fmt: skip
    phones = _json_list(
        "number", ContactPhone.number, "type", ContactPhone.type,
        "primary", ContactPhone.is_primary,
        order_by=ContactPhone.position,
        where=(ContactPhone.workspace_id == Contact.workspace_id)
        & (ContactPhone.contact_id == Contact.id),
    )  # fmt: skip
    external_ids = (
        select(
            func.coalesce(
                func.jsonb_object_agg(ContactExternalId.system, ContactExternalId.value),
                literal_column("'{}'::jsonb"),
            )
        )
        .where(
            ContactExternalId.workspace_id == Contact.workspace_id,
            ContactExternalId.contact_id == Contact.id,
        )
        .scalar_subquery()
    )
    return (
        with_expression(Contact.email_values, emails),
        with_expression(Contact.phone_values, phones),
        with_expression(Contact.external_id_values, external_ids),
    )


# Built once: constructing these expressions costs more than running the query.
_VALUE_OPTIONS = _value_options()


def _with_values(statement: Select[Any]) -> Select[Any]:
    """For reading contacts: their e-mails, phones and ids as JSON in the same statement.

    ``populate_existing``: a contact already in the session (loaded without them) gets them
    too; its pending changes were flushed before the query, so nothing is lost.
    """
    return statement.options(*_VALUE_OPTIONS).execution_options(populate_existing=True)


class ContactRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(
        self, workspace_id: uuid.UUID, contact_id: uuid.UUID, *, for_update: bool = False
    ) -> Contact | None:
        """The contact, merged tombstones included, with its e-mails, phones and ids."""
        statement = _with_children(
            select(Contact).where(Contact.workspace_id == workspace_id, Contact.id == contact_id)
        )
        if for_update:
            # The row as locked, over whatever the session holds of it (an earlier read,
            # or a copy this transaction wrote and the database completed).
            statement = statement.with_for_update(of=Contact).execution_options(
                populate_existing=True
            )
        result = await self.session.execute(statement)
        found: Contact | None = result.scalars().unique().one_or_none()
        return found

    async def read(
        self, workspace_id: uuid.UUID, contact_id: uuid.UUID, *, for_update: bool = False
    ) -> Contact | None:
        """The contact, merged tombstones included, in one statement, its e-mails, phones and
        ids as values: to show, or (``for_update``, its row locked until the transaction
        ends) to change fields other than those; ``get`` brings their rows, to replace them."""
        statement = _with_values(
            select(Contact).where(Contact.workspace_id == workspace_id, Contact.id == contact_id)
        )
        if for_update:
            statement = statement.with_for_update(of=Contact)
        found: Contact | None = (await self.session.execute(statement)).scalars().one_or_none()
        return found

    async def read_many(
        self, workspace_id: uuid.UUID, contact_ids: Iterable[uuid.UUID]
    ) -> list[Contact]:
        """The contacts, to show (not to change): one statement."""
        statement = _with_values(
            select(Contact).where(
                Contact.workspace_id == workspace_id, Contact.id.in_(list(contact_ids))
            )
        ).order_by(Contact.id)
        return list((await self.session.execute(statement)).scalars().all())

    async def documents(
        self, workspace_id: uuid.UUID, contact_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, tuple[uuid.UUID | None, str]]:
        """Each contact's survivor (when merged) and API document (JSON text), as the hot
        by-id read builds it (``crm_contact_read``): one statement, no ORM objects."""
        rows = await self.session.execute(_DOCUMENTS, {"workspace_id": workspace_id,
                                                       "ids": list(contact_ids)})  # fmt: skip
        return {row.id: (row.merged_into_id, row.body) for row in rows}

    async def merged_into(
        self, workspace_id: uuid.UUID, contact_id: uuid.UUID
    ) -> tuple[bool, uuid.UUID | None]:
        """Whether the contact exists, and the survivor it was merged into if it was."""
        params = {"workspace_id": workspace_id, "contact_id": contact_id}
        row = (await self.session.execute(_MERGED_INTO, params)).one_or_none()
        return (False, None) if row is None else (True, row.merged_into_id)

    async def get_many(
        self, workspace_id: uuid.UUID, contact_ids: Iterable[uuid.UUID], *, for_update: bool = False
    ) -> list[Contact]:
        statement = _with_children(
            select(Contact).where(
                Contact.workspace_id == workspace_id, Contact.id.in_(list(contact_ids))
            )
        ).order_by(Contact.id)
        if for_update:
            # Locked in id order, so concurrent merges of overlapping sets cannot deadlock.
            statement = statement.with_for_update(of=Contact)
        return list((await self.session.execute(statement)).scalars().unique().all())

    def _filtered(
        self, workspace_id: uuid.UUID, filters: ContactFilters, entity: Any = Contact
    ) -> Select[Any]:
        statement = select(entity).where(
            entity.workspace_id == workspace_id, entity.merged_into_id.is_(None)
        )
        if filters.lifecycle_stages:
            statement = statement.where(entity.lifecycle_stage.in_(filters.lifecycle_stages))
        if filters.tags:
            statement = statement.where(entity.tags.contains(list(filters.tags)))
        if filters.account_id is not None:
            statement = statement.where(entity.account_id == filters.account_id)
        if filters.owner_id is not None:
            statement = statement.where(entity.owner_id == filters.owner_id)
        email_of_contact = (ContactEmail.workspace_id == entity.workspace_id) & (
            ContactEmail.contact_id == entity.id
        )
        phone_of_contact = (ContactPhone.workspace_id == entity.workspace_id) & (
            ContactPhone.contact_id == entity.id
        )
        if filters.email is not None:
            statement = statement.where(
                exists().where(email_of_contact, ContactEmail.email == filters.email)
            )
        if filters.search_email is not None:
            statement = statement.where(
                exists().where(email_of_contact, ContactEmail.email == filters.search_email)
            )
        if filters.phone is not None:
            statement = statement.where(
                exists().where(phone_of_contact, ContactPhone.number == filters.phone)
            )
        if filters.has_email is not None:
            has = exists().where(email_of_contact)
            statement = statement.where(has if filters.has_email else ~has)
        if filters.has_phone is not None:
            has = exists().where(phone_of_contact)
            statement = statement.where(has if filters.has_phone else ~has)
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
        self, workspace_id: uuid.UUID, filters: ContactFilters, keyset: Keyset
    ) -> list[Contact]:
        statement = _with_values(keyset.apply(self._filtered(workspace_id, filters)))
        return list((await self.session.execute(statement)).scalars().all())

    async def search(
        self,
        workspace_id: uuid.UUID,
        filters: ContactFilters,
        terms: SearchTerms,
        *,
        limit: int,
        after: tuple[float, uuid.UUID] | None,
    ) -> list[tuple[Contact, float]]:
        """Matches ranked best first: how much of the query the contact's text contains."""
        statement = ranked(
            Contact,
            SearchableContact,
            self._filtered(workspace_id, filters, SearchableContact),
            terms,
            workspace_id=workspace_id,
            limit=limit,
            after=after,
        )
        rows = (await self.session.execute(_with_values(statement))).all()
        return [(row[0], float(row[1])) for row in rows]

    async def email_owners(
        self, workspace_id: uuid.UUID, emails: Iterable[str]
    ) -> dict[str, uuid.UUID]:
        wanted = list(emails)
        if not wanted:
            return {}
        result = await self.session.execute(
            select(ContactEmail.email, ContactEmail.contact_id).where(
                ContactEmail.workspace_id == workspace_id, ContactEmail.email.in_(wanted)
            )
        )
        return {row.email: row.contact_id for row in result}

    async def external_id_owners(
        self, workspace_id: uuid.UUID, pairs: Iterable[tuple[str, str]]
    ) -> dict[tuple[str, str], uuid.UUID]:
        return await pair_owners(
            self.session, ContactExternalId.__table__, "contact_id", workspace_id, pairs
        )

    async def contacts_with_phones(
        self, workspace_id: uuid.UUID, numbers: Iterable[str], *, exclude: uuid.UUID
    ) -> dict[uuid.UUID, set[str]]:
        wanted = list(numbers)
        if not wanted:
            return {}
        result = await self.session.execute(
            select(ContactPhone.contact_id, ContactPhone.number)
            .join(
                Contact,
                (Contact.workspace_id == ContactPhone.workspace_id)
                & (Contact.id == ContactPhone.contact_id),
            )
            .where(
                ContactPhone.workspace_id == workspace_id,
                ContactPhone.number.in_(wanted),
                ContactPhone.contact_id != exclude,
                Contact.merged_into_id.is_(None),
            )
        )
        found: dict[uuid.UUID, set[str]] = {}
        for row in result:
            found.setdefault(row.contact_id, set()).add(row.number)
        return found

    async def similar_names(
        self, workspace_id: uuid.UUID, name_key: str, *, exclude: uuid.UUID, limit: int
    ) -> list[tuple[uuid.UUID, float]]:
        """Contacts whose searchable text closely contains this (normalised) name."""
        score = func.word_similarity(name_key, Contact.search_text)
        result = await self.session.execute(
            select(Contact.id, score.label("score"))
            .where(
                Contact.workspace_id == workspace_id,
                Contact.merged_into_id.is_(None),
                Contact.id != exclude,
                # %> uses the trigram index (word_similarity_threshold, 0.6 by default).
                Contact.search_text.op("%>")(name_key),
            )
            .order_by(score.desc(), Contact.id)
            .limit(limit)
        )
        return [(row.id, float(row.score)) for row in result]

    async def by_external_id(
        self, workspace_id: uuid.UUID, system: str, value: str
    ) -> uuid.UUID | None:
        result = await self.session.execute(
            select(ContactExternalId.contact_id).where(
                ContactExternalId.workspace_id == workspace_id,
                ContactExternalId.system == system,
                ContactExternalId.value == value,
            )
        )
        return result.scalar_one_or_none()

    def add(self, contact: Contact) -> None:
        self.session.add(contact)

    async def delete(self, contact: Contact) -> None:
        await self.session.execute(
            delete(Contact).where(
                Contact.workspace_id == contact.workspace_id, Contact.id == contact.id
            )
        )
