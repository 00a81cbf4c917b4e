from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from app.auth.scopes import Scope
from app.case.graphql import contact_cases
from app.contact import schemas
from app.contact.batch import batch as batch_service
from app.contact.merge import merge as merge_service
from app.contact.relationship_schemas import RelationshipCreate
from app.contact.relationships import relationship as relationship_service
from app.contact.service import ContactQuery
from app.contact.service import contact as contact_service
from app.contact_view import graphql as history
from app.graphql.common import ExternalIdInput, ExternalIdType, external_ids_dict
from app.graphql.context import Context
from app.graphql.dataloaders.account_by_id import account_by_id
from app.graphql.dataloaders.contact_by_id import contact_by_id
from app.graphql.dataloaders.relationships_by_contact import relationships_by_contact
from app.graphql.relay import Connection, Edge, page_of, page_size
from app.kit.pagination import _encode
from app.kit.schemas import parse_input
from app.loyalty.graphql import contact_loyalty_accounts
from app.models import Contact, ContactRelationship

if TYPE_CHECKING:
    from app.account.graphql import AccountType


@strawberry.type(name="Email")
class EmailType:
    email: str
    primary: bool


@strawberry.type(name="Phone")
class PhoneType:
    number: str
    type: str
    primary: bool


@strawberry.type(name="Relationship")
class RelationshipType:
    id: uuid.UUID
    type: str
    note: str | None
    created_at: datetime
    related_contact_id: uuid.UUID

    @strawberry.field(description="The other contact.")
    async def contact(self, info: Info[Context, None]) -> ContactType | None:
        record = await info.context.loaders.get(contact_by_id).load(self.related_contact_id)
        return ContactType.from_schema(record) if record is not None else None

    @classmethod
    def from_model(cls, row: ContactRelationship) -> RelationshipType:
        return cls(
            id=row.id,
            type=row.type,
            note=row.note,
            created_at=row.created_at,
            related_contact_id=row.related_contact_id,
        )


@strawberry.type(name="Contact")
class ContactType:
    id: uuid.UUID
    given_name: str | None
    family_name: str | None
    display_name: str
    emails: list[EmailType]
    phones: list[PhoneType]
    locale: str | None
    time_zone: str | None
    birthday: date | None
    addresses: JSON
    lifecycle_stage: str
    account_id: uuid.UUID | None
    owner_id: str | None
    tags: list[str]
    attributes: JSON
    external_ids: list[ExternalIdType]
    acquisition_source: str | None
    acquisition_channel: str | None
    created_at: datetime
    updated_at: datetime
    version: int

    @strawberry.field(description="The organisation the contact belongs to.")
    async def account(
        self, info: Info[Context, None]
    ) -> Annotated[AccountType, strawberry.lazy("app.account.graphql")] | None:
        from app.account.graphql import AccountType

        if self.account_id is None:
            return None
        record = await info.context.loaders.get(account_by_id).load(self.account_id)
        return AccountType.from_model(record) if record is not None else None

    @strawberry.field(description="Links to other contacts, seen from this one.")
    async def relationships(self, info: Info[Context, None]) -> list[RelationshipType]:
        rows = await info.context.loaders.get(relationships_by_contact).load(self.id)
        return [RelationshipType.from_model(row) for row in rows]

    interactions = strawberry.field(
        resolver=history.interactions,
        description="Interactions on every channel, newest first. Needs `interactions:read`.",
    )
    purchases = strawberry.field(
        resolver=history.purchases,
        description="Purchases, newest first. Needs `purchases:read`.",
    )
    loyalty_accounts = strawberry.field(
        resolver=contact_loyalty_accounts,
        description="Loyalty memberships with balance, tier, progress and expiring points. "
        "Needs `loyalty:read`.",
    )
    opportunities = strawberry.field(
        resolver=history.opportunities,
        description="Opportunities, most recently updated first; `statuses` narrows them "
        '(e.g. `["open"]`). Needs `opportunities:read`.',
    )
    cases = strawberry.field(
        resolver=contact_cases,
        description="Cases, newest first: open ones (new, open, pending) unless `statuses` "
        "says otherwise. Needs `cases:read`.",
    )
    timeline = strawberry.field(
        resolver=history.timeline,
        description="Everything that happened with the contact, newest first; kinds the key "
        "cannot read are left out.",
    )
    summary = strawberry.field(
        resolver=history.summary,
        description="Interaction counts, open feedback and purchase summary.",
    )

    @classmethod
    def from_model(cls, record: Contact) -> ContactType:
        data = contact_service.to_schema(record)
        return cls.from_schema(data)

    @classmethod
    def from_schema(cls, data: schemas.Contact) -> ContactType:
        values: dict[str, Any] = data.model_dump()
        values["emails"] = [EmailType(**e) for e in values["emails"]]
        values["phones"] = [PhoneType(**p) for p in values["phones"]]
        values["external_ids"] = ExternalIdType.from_dict(values["external_ids"])
        return cls(**values)


@strawberry.input
class EmailInput:
    email: str
    primary: bool = False


@strawberry.input
class PhoneInput:
    number: str
    type: str = "mobile"
    primary: bool = False


@strawberry.input(description="Field names and rules are those of the REST contact.")
class ContactInput:
    given_name: str | None = strawberry.UNSET
    family_name: str | None = strawberry.UNSET
    display_name: str | None = strawberry.UNSET
    emails: list[EmailInput] | None = strawberry.UNSET
    phones: list[PhoneInput] | None = strawberry.UNSET
    locale: str | None = strawberry.UNSET
    time_zone: str | None = strawberry.UNSET
    birthday: date | None = strawberry.UNSET
    addresses: JSON | None = strawberry.UNSET
    lifecycle_stage: str | None = strawberry.UNSET
    account_id: uuid.UUID | None = strawberry.UNSET
    owner_id: str | None = strawberry.UNSET
    tags: list[str] | None = strawberry.UNSET
    attributes: JSON | None = strawberry.UNSET
    external_ids: list[ExternalIdInput] | None = strawberry.UNSET
    acquisition_source: str | None = strawberry.UNSET
    acquisition_channel: str | None = strawberry.UNSET


def _as_dict(value: ContactInput) -> dict[str, Any]:
    """The input as the REST body it stands for (unset fields left out)."""
    data: dict[str, Any] = {}
    for name, item in vars(value).items():
        if item is strawberry.UNSET:
            continue
        if name in ("emails", "phones") and item is not None:
            item = [vars(entry) for entry in item]
        elif name == "external_ids":
            item = external_ids_dict(item)
        data[name] = item
    return data


@strawberry.input
class ContactFilter:
    lifecycle_stages: list[str] | None = None
    tags: list[str] | None = None
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


@strawberry.type
class MergeResultType:
    contact: ContactType
    absorbed: list[uuid.UUID]
    dry_run: bool
    merge_id: uuid.UUID | None


@strawberry.type
class BatchItemResultType:
    index: int
    status: str
    id: uuid.UUID | None
    error: JSON | None


@strawberry.type
class BatchResultType:
    results: list[BatchItemResultType]
    created: int
    updated: int
    errors: int


def _cursor_of(record: Contact) -> str:
    return _encode(["-created_at", record.created_at.isoformat(), str(record.id)])


@strawberry.type
class ContactRootQuery:
    @strawberry.field(description="One contact (scope: contacts:read).")
    async def contact(self, info: Info[Context, None], id: uuid.UUID) -> ContactType | None:
        auth = info.context.require(Scope.contacts_read)
        data = await info.context.read(lambda session: contact_service.read(session, auth, id))
        return ContactType.from_schema(data)

    @strawberry.field(description="A contact by a partner system's key.")
    async def contact_by_external_id(
        self, info: Info[Context, None], system: str, value: str
    ) -> ContactType | None:
        auth = info.context.require(Scope.contacts_read)
        record = await info.context.read(
            lambda session: contact_service.get_by_external_id(session, auth, system, value)
        )
        return ContactType.from_model(record)

    @strawberry.field(description="Contacts, newest first; with q, ranked best match first.")
    async def contacts(
        self,
        info: Info[Context, None],
        first: int | None = None,
        after: str | None = None,
        q: str | None = None,
        filter: ContactFilter | None = None,
        sort: str | None = None,
    ) -> Connection[ContactType] | None:
        auth = info.context.require(Scope.contacts_read)
        criteria = filter or ContactFilter()
        query = ContactQuery(
            q=q.strip() if q and q.strip() else None,
            lifecycle_stages=criteria.lifecycle_stages or (),
            tags=criteria.tags or (),
            account_id=criteria.account_id,
            owner_id=criteria.owner_id,
            email=criteria.email.strip().lower() if criteria.email else None,
            phone=criteria.phone,
            has_email=criteria.has_email,
            has_phone=criteria.has_phone,
            created_after=criteria.created_after,
            created_before=criteria.created_before,
            updated_after=criteria.updated_after,
            updated_before=criteria.updated_before,
        )
        limit = page_size(first)
        rows, next_cursor = await info.context.read(
            lambda session: contact_service.find(
                session, auth, query, limit=limit, cursor=after, sort=sort
            )
        )
        edges = [Edge(node=ContactType.from_model(row), cursor=_cursor_of(row)) for row in rows]
        if edges and next_cursor:
            edges[-1].cursor = next_cursor
        return page_of(edges, next_cursor)


@strawberry.type
class ContactMutation:
    # Nullable results: a failed mutation reports its error without nulling the others.
    @strawberry.mutation(description="Create a contact.")
    async def create_contact(
        self, info: Info[Context, None], input: ContactInput
    ) -> ContactType | None:
        auth = info.context.require(Scope.contacts_write)
        data = parse_input(schemas.ContactCreate, _as_dict(input))
        record = await info.context.write(
            lambda session: contact_service.create(session, auth, data)
        )
        return ContactType.from_model(record)

    @strawberry.mutation(description="Change a contact (merge-patch semantics).")
    async def update_contact(
        self,
        info: Info[Context, None],
        id: uuid.UUID,
        input: ContactInput,
        if_match: str | None = None,
    ) -> ContactType | None:
        auth = info.context.require(Scope.contacts_write)
        patch = parse_input(schemas.ContactUpdate, _as_dict(input))
        record = await info.context.write(
            lambda session: contact_service.update(session, auth, id, patch, if_match=if_match)
        )
        return ContactType.from_model(record)

    @strawberry.mutation(description="Delete a contact; returns its id.")
    async def delete_contact(
        self, info: Info[Context, None], id: uuid.UUID, if_match: str | None = None
    ) -> uuid.UUID | None:
        auth = info.context.require(Scope.contacts_write)
        await info.context.write(
            lambda session: contact_service.delete(session, auth, id, if_match=if_match)
        )
        return id

    @strawberry.mutation(description="Merge contacts into a survivor.")
    async def merge_contacts(
        self,
        info: Info[Context, None],
        survivor_id: uuid.UUID,
        absorb: list[uuid.UUID],
        fields: JSON | None = None,
        dry_run: bool = False,
    ) -> MergeResultType | None:
        auth = info.context.require(Scope.contacts_write)
        request = parse_input(
            schemas.MergeRequest, {"absorb": absorb, "fields": fields or {}, "dry_run": dry_run}
        )
        result = await info.context.write(
            lambda session: merge_service.merge(session, auth, survivor_id, request)
        )
        return MergeResultType(
            contact=ContactType.from_schema(result.contact),
            absorbed=result.absorbed,
            dry_run=result.dry_run,
            merge_id=result.merge_id,
        )

    @strawberry.mutation(description="Create or update up to 1,000 contacts.")
    async def upsert_contacts(
        self, info: Info[Context, None], items: list[ContactInput], all_or_none: bool = False
    ) -> BatchResultType | None:
        auth = info.context.require(Scope.contacts_write)
        batch = parse_input(
            schemas.BatchUpsert,
            {"items": [_as_dict(item) for item in items], "all_or_none": all_or_none},
        )
        result = await info.context.write(
            lambda session: batch_service.upsert(session, auth, batch)
        )
        return BatchResultType(
            results=[BatchItemResultType(**r.model_dump()) for r in result.results],
            created=result.created,
            updated=result.updated,
            errors=result.errors,
        )

    @strawberry.mutation(description="Link two contacts (the inverse appears on the other).")
    async def create_relationship(
        self,
        info: Info[Context, None],
        contact_id: uuid.UUID,
        related_contact_id: uuid.UUID,
        type: str,
        note: str | None = None,
    ) -> RelationshipType | None:
        auth = info.context.require(Scope.contacts_write)
        data = parse_input(
            RelationshipCreate,
            {"related_contact_id": related_contact_id, "type": type, "note": note},
        )
        row = await info.context.write(
            lambda session: relationship_service.create(session, auth, contact_id, data)
        )
        return RelationshipType.from_model(row)

    @strawberry.mutation(description="Remove a link (both directions); returns its id.")
    async def delete_relationship(
        self, info: Info[Context, None], contact_id: uuid.UUID, id: uuid.UUID
    ) -> uuid.UUID | None:
        auth = info.context.require(Scope.contacts_write)
        await info.context.write(
            lambda session: relationship_service.delete(session, auth, contact_id, id)
        )
        return id
