from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from app.account import schemas
from app.account.service import AccountQuery
from app.account.service import account as account_service
from app.auth.scopes import Scope
from app.graphql.common import ExternalIdInput, ExternalIdType, external_ids_dict
from app.graphql.context import Context
from app.graphql.dataloaders.account_by_id import account_by_id
from app.graphql.dataloaders.contacts_by_account import contacts_by_account
from app.graphql.relay import Connection, Edge, page_of, page_size
from app.kit.errors import FieldError, ValidationFailed
from app.kit.pagination import _encode
from app.kit.schemas import parse_input
from app.models import Account

if TYPE_CHECKING:
    from app.contact.graphql import ContactType

MAX_NESTED_CONTACTS = 100


@strawberry.type(name="Account")
class AccountType:
    id: uuid.UUID
    name: str
    type: str
    domain: str | None
    industry: str | None
    size: str | None
    parent_account_id: uuid.UUID | None
    owner_id: str | None
    attributes: JSON
    external_ids: list[ExternalIdType]
    created_at: datetime
    updated_at: datetime
    version: int

    @strawberry.field(description="The parent organisation (e.g. a retailer's distributor).")
    async def parent(self, info: Info[Context, None]) -> AccountType | None:
        if self.parent_account_id is None:
            return None
        record = await info.context.loaders.get(account_by_id).load(self.parent_account_id)
        return AccountType.from_model(record) if record is not None else None

    @strawberry.field(
        description="The account's newest contacts (page through all of them with "
        "`contacts(filter: {accountId})`)."
    )
    async def contacts(
        self, info: Info[Context, None], first: int = 20
    ) -> list[Annotated[ContactType, strawberry.lazy("app.contact.graphql")]]:
        from app.contact.graphql import ContactType

        if not 1 <= first <= MAX_NESTED_CONTACTS:
            raise ValidationFailed(
                f"first must be between 1 and {MAX_NESTED_CONTACTS}",
                errors=[FieldError(field="first", message=f"1 to {MAX_NESTED_CONTACTS}")],
            )
        rows = await info.context.loaders.get(contacts_by_account).load((self.id, first))
        return [ContactType.from_model(row) for row in rows]

    @classmethod
    def from_model(cls, record: Account) -> AccountType:
        return cls.from_schema(account_service.to_schema(record))

    @classmethod
    def from_schema(cls, data: schemas.Account) -> AccountType:
        values = data.model_dump()
        values["external_ids"] = ExternalIdType.from_dict(values["external_ids"])
        return cls(**values)


@strawberry.input
class AccountFilter:
    types: list[str] | None = None
    parent_account_id: uuid.UUID | None = None
    owner_id: str | None = None
    domain: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    updated_after: datetime | None = None
    updated_before: datetime | None = None


@strawberry.input(description="Field names and rules are those of the REST account.")
class AccountInput:
    name: str | None = strawberry.UNSET
    type: str | None = strawberry.UNSET
    domain: str | None = strawberry.UNSET
    industry: str | None = strawberry.UNSET
    size: str | None = strawberry.UNSET
    parent_account_id: uuid.UUID | None = strawberry.UNSET
    owner_id: str | None = strawberry.UNSET
    attributes: JSON | None = strawberry.UNSET
    external_ids: list[ExternalIdInput] | None = strawberry.UNSET


def _as_dict(value: AccountInput) -> dict[str, Any]:
    data = {name: item for name, item in vars(value).items() if item is not strawberry.UNSET}
    if "external_ids" in data:
        data["external_ids"] = external_ids_dict(data["external_ids"])
    return data


def _cursor_of(record: Account) -> str:
    return _encode(["-created_at", record.created_at.isoformat(), str(record.id)])


@strawberry.type
class AccountRootQuery:
    @strawberry.field(description="One account (scope: contacts:read).")
    async def account(self, info: Info[Context, None], id: uuid.UUID) -> AccountType | None:
        auth = info.context.require(Scope.contacts_read)
        record = await info.context.read(lambda session: account_service.get(session, auth, id))
        return AccountType.from_model(record)

    @strawberry.field(description="An account by a partner system's key.")
    async def account_by_external_id(
        self, info: Info[Context, None], system: str, value: str
    ) -> AccountType | None:
        auth = info.context.require(Scope.contacts_read)
        record = await info.context.read(
            lambda session: account_service.get_by_external_id(session, auth, system, value)
        )
        return AccountType.from_model(record)

    @strawberry.field(description="Accounts, newest first; with q, ranked best match first.")
    async def accounts(
        self,
        info: Info[Context, None],
        first: int | None = None,
        after: str | None = None,
        q: str | None = None,
        filter: AccountFilter | None = None,
        sort: str | None = None,
    ) -> Connection[AccountType] | None:
        auth = info.context.require(Scope.contacts_read)
        criteria = filter or AccountFilter()
        query = AccountQuery(
            q=q.strip() if q and q.strip() else None,
            types=criteria.types or (),
            parent_account_id=criteria.parent_account_id,
            owner_id=criteria.owner_id,
            domain=criteria.domain,
            created_after=criteria.created_after,
            created_before=criteria.created_before,
            updated_after=criteria.updated_after,
            updated_before=criteria.updated_before,
        )
        limit = page_size(first)
        rows, next_cursor = await info.context.read(
            lambda session: account_service.find(
                session, auth, query, limit=limit, cursor=after, sort=sort
            )
        )
        edges = [Edge(node=AccountType.from_model(row), cursor=_cursor_of(row)) for row in rows]
        if edges and next_cursor:
            edges[-1].cursor = next_cursor
        return page_of(edges, next_cursor)


@strawberry.type
class AccountMutation:
    # Nullable results: a failed mutation reports its error without nulling the others.
    @strawberry.mutation(description="Create an account.")
    async def create_account(
        self, info: Info[Context, None], input: AccountInput
    ) -> AccountType | None:
        auth = info.context.require(Scope.contacts_write)
        data = parse_input(schemas.AccountCreate, _as_dict(input))
        record = await info.context.write(
            lambda session: account_service.create(session, auth, data)
        )
        return AccountType.from_model(record)

    @strawberry.mutation(description="Change an account (merge-patch semantics).")
    async def update_account(
        self,
        info: Info[Context, None],
        id: uuid.UUID,
        input: AccountInput,
        if_match: str | None = None,
    ) -> AccountType | None:
        auth = info.context.require(Scope.contacts_write)
        patch = parse_input(schemas.AccountUpdate, _as_dict(input))
        record = await info.context.write(
            lambda session: account_service.update(session, auth, id, patch, if_match=if_match)
        )
        return AccountType.from_model(record)

    @strawberry.mutation(description="Delete an account; its contacts stay, unlinked.")
    async def delete_account(
        self, info: Info[Context, None], id: uuid.UUID, if_match: str | None = None
    ) -> uuid.UUID | None:
        auth = info.context.require(Scope.contacts_write)
        await info.context.write(
            lambda session: account_service.delete(session, auth, id, if_match=if_match)
        )
        return id
