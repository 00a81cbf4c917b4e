"""Accounts: organisations contacts belong to, their hierarchy and partner keys."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import func
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from app.account import schemas
from app.account.exceptions import AccountNotFound, BatchFailed, DuplicateAccount
from app.account.repository import AccountFilters, AccountRepository
from app.auth.dependencies import AuthContext
from app.contact.service import contact as contact_service
from app.db.locking import lock_keys
from app.events import outbox
from app.kit.changes import changed_fields
from app.kit.collation import sort_key
from app.kit.errors import CRMError, FieldError, ValidationFailed
from app.kit.etag import check_if_match
from app.kit.ids import uuid7
from app.kit.merge_patch import merge_patch
from app.kit.pagination import (
    Keyset,
    Sort,
    SortField,
    parse_datetime,
    parse_hex_bytes,
    parse_sort,
)
from app.kit.problems import database_problem
from app.kit.schemas import parse_input, validate_value
from app.kit.search import RELEVANCE, relevance_after, relevance_page, text_terms
from app.kit.validators import Attributes, ExternalIds
from app.models import Account, AccountExternalId, Contact

SORTS = {
    "created_at": SortField(Account.created_at, parse_datetime),
    "updated_at": SortField(Account.updated_at, parse_datetime),
    "name": SortField(Account.name_sort_key, parse_hex_bytes),
}
CONTACT_SORTS = {"created_at": SortField(Contact.created_at, parse_datetime)}
NEWEST_FIRST = Sort(name="created_at", descending=True)
# Held (transaction-scoped) by every re-parenting in a workspace, so that two concurrent ones
# cannot each pass the cycle check and together close a loop.
HIERARCHY_LOCK = "account_hierarchy"
# Events for contacts unlinked by an account's deletion are written this many at a time.
_CONTACT_EVENT_CHUNK = 500


@dataclass(frozen=True)
class AccountQuery:
    """What a caller asks of the account list."""

    q: str | None = None
    types: Sequence[str] = ()
    parent_account_id: uuid.UUID | None = None
    owner_id: str | None = None
    domain: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    updated_after: datetime | None = None
    updated_before: datetime | None = None


@dataclass
class _Outcome:
    status: Literal["created", "updated", "error"]
    account_id: uuid.UUID | None = None
    error: CRMError | None = None


class AccountService:
    # -- reading -----------------------------------------------------------------------------
    async def get(self, session: AsyncSession, auth: AuthContext, account_id: uuid.UUID) -> Account:
        """Raises: AccountNotFound: no such account in the caller's workspace."""
        account = await AccountRepository(session).get(auth.workspace_id, account_id)
        if account is None:
            raise AccountNotFound()
        return account

    async def get_many(
        self, session: AsyncSession, auth: AuthContext, account_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, Account]:
        """Accounts of the caller's workspace by id; others are simply absent."""
        if not account_ids:
            return {}
        rows = await AccountRepository(session).get_many(auth.workspace_id, account_ids)
        return {row.id: row for row in rows}

    async def newest_contacts_of(
        self,
        session: AsyncSession,
        auth: AuthContext,
        account_ids: Sequence[uuid.UUID],
        *,
        per_account: int,
    ) -> dict[uuid.UUID, list[Contact]]:
        """Each account's newest live contacts (for nested GraphQL lists), in one query."""
        rows = await AccountRepository(session).newest_contacts_of(
            auth.workspace_id, account_ids, per_account
        )
        grouped: dict[uuid.UUID, list[Contact]] = {}
        for row in rows:
            if row.account_id is not None:
                grouped.setdefault(row.account_id, []).append(row)
        return grouped

    async def exists(self, session: AsyncSession, auth: AuthContext, account_id: uuid.UUID) -> bool:
        """Whether the account exists; if so it is held until commit (it cannot be deleted,
        though it can still be edited), so a link to it stays valid."""
        return await AccountRepository(session).exists(auth.workspace_id, account_id)

    async def get_by_external_id(
        self, session: AsyncSession, auth: AuthContext, system: str, value: str
    ) -> Account:
        account_id = await AccountRepository(session).by_external_id(
            auth.workspace_id, system, value
        )
        if account_id is None:
            raise AccountNotFound(f"No account has {system} id {value!r}")
        return await self.get(session, auth, account_id)

    async def find(
        self,
        session: AsyncSession,
        auth: AuthContext,
        query: AccountQuery,
        *,
        limit: int,
        cursor: str | None,
        sort: str | None,
    ) -> tuple[list[Account], str | None]:
        """A page of accounts; with ``q``, ranked best match first.

        Raises:
            ValidationFailed: unknown sort field, or a sort other than relevance with ``q``.
            InvalidCursor: the cursor is malformed or from another listing.
        """
        filters = AccountFilters(
            types=query.types,
            parent_account_id=query.parent_account_id,
            owner_id=query.owner_id,
            domain=query.domain,
            created_after=query.created_after,
            created_before=query.created_before,
            updated_after=query.updated_after,
            updated_before=query.updated_before,
        )
        repository = AccountRepository(session)
        if query.q:
            if sort not in (None, RELEVANCE):
                raise ValidationFailed(
                    "Search results are ranked by relevance",
                    errors=[FieldError(field="query.sort", message="only 'relevance' with q")],
                )
            return await self._search(
                session, repository, auth, filters, query.q, limit=limit, cursor=cursor
            )
        keyset = Keyset.build(
            sort=parse_sort(sort, SORTS, "-created_at"),
            allowed=SORTS,
            id_column=Account.id,
            limit=limit,
            cursor=cursor,
        )
        rows = await repository.find(auth.workspace_id, filters, keyset)
        column = keyset.field.column.key
        return keyset.page(rows, lambda row: (getattr(row, column), row.id))

    async def _search(
        self,
        session: AsyncSession,
        repository: AccountRepository,
        auth: AuthContext,
        filters: AccountFilters,
        q: str,
        *,
        limit: int,
        cursor: str | None,
    ) -> tuple[list[Account], str | None]:
        after = relevance_after(cursor)
        terms = await text_terms(session, q)
        if not terms.groups:
            return [], None
        ranked = await repository.search(
            auth.workspace_id, filters, terms, limit=limit, after=after
        )
        return relevance_page(ranked, limit, lambda account: account.id)

    async def contacts(
        self,
        session: AsyncSession,
        auth: AuthContext,
        account_id: uuid.UUID,
        *,
        limit: int,
        cursor: str | None,
    ) -> tuple[list[Contact], str | None]:
        """The account's live contacts, newest first.

        Raises:
            AccountNotFound: no such account in the caller's workspace.
            InvalidCursor: the cursor is malformed or from another listing.
        """
        repository = AccountRepository(session)
        if await repository.get(auth.workspace_id, account_id) is None:
            raise AccountNotFound()
        keyset = Keyset.build(
            sort=NEWEST_FIRST,
            allowed=CONTACT_SORTS,
            id_column=Contact.id,
            limit=limit,
            cursor=cursor,
        )
        rows = await repository.contacts(auth.workspace_id, account_id, keyset)
        return keyset.page(rows, lambda row: (row.created_at, row.id))

    # -- writing -----------------------------------------------------------------------------
    async def create(
        self, session: AsyncSession, auth: AuthContext, data: schemas.AccountCreate
    ) -> Account:
        """Create an account.

        Raises:
            DuplicateAccount: the domain or an external id belongs to another account.
            ValidationFailed: the parent account does not exist.
        """
        repository = AccountRepository(session)
        if data.parent_account_id is not None:
            await self._check_parent_exists(repository, auth, data.parent_account_id)
        account = Account(
            workspace_id=auth.workspace_id,
            id=uuid7(),
            name=data.name,
            type=data.type,
            domain=data.domain,
            industry=data.industry,
            size=data.size,
            parent_account_id=data.parent_account_id,
            owner_id=data.owner_id,
            attributes=dict(data.attributes),
            version=1,
            external_ids=[],
        )
        self._set_external_ids(account, dict(data.external_ids))
        self._index(account)
        repository.add(account)
        await self._flush_checking_uniqueness(session, auth, account)
        await outbox.record(
            session,
            workspace_id=auth.workspace_id,
            type="account.created",
            aggregate_type="account",
            aggregate_id=account.id,
            data=self.to_schema(account),
        )
        return account

    async def update(
        self,
        session: AsyncSession,
        auth: AuthContext,
        account_id: uuid.UUID,
        patch: schemas.AccountUpdate,
        *,
        if_match: str | None = None,
    ) -> Account:
        """Apply a merge patch.

        Raises:
            AccountNotFound: no such account in the caller's workspace.
            PreconditionFailed: ``if_match`` names an older version.
            DuplicateAccount: the domain or an external id belongs to another account.
            ValidationFailed: the parent does not exist or would make a cycle.
        """
        repository = AccountRepository(session)
        changes = patch.changes()
        new_parent = changes.get("parent_account_id")
        if new_parent is not None:
            # Taken before the row lock, so that re-parentings queue here and never hold one
            # account while waiting for another.
            await lock_keys(session, auth.workspace_id, [HIERARCHY_LOCK])
        account = await repository.get(auth.workspace_id, account_id, lock="no_key_update")
        if account is None:
            raise AccountNotFound()
        check_if_match(if_match, account.version)
        before = self.to_schema(account).model_dump(mode="json")

        if new_parent is not None and new_parent != account.parent_account_id:
            await self._check_parent(repository, auth, account.id, new_parent)
        if "external_ids" in changes:
            current = {item.system: item.value for item in account.external_ids}
            # null for the whole member removes every key, as merge patch removes a member.
            merged = validate_value(
                ExternalIds,
                merge_patch(current, changes["external_ids"]) or {},
                "external_ids",
            )
            if merged != current:
                # Old rows go first, in a flush of their own, so that a pair that stays is
                # deleted before it is inserted again.
                account.external_ids = []
                await session.flush()
                self._set_external_ids(account, merged)
        if "attributes" in changes:
            patched = merge_patch(account.attributes, changes["attributes"]) or {}
            account.attributes = validate_value(Attributes, patched, "attributes")
        for name in ("name", "type", "domain", "industry", "size", "owner_id"):
            if name in changes:
                setattr(account, name, changes[name])
        if "parent_account_id" in changes:
            account.parent_account_id = new_parent

        after = self.to_schema(account).model_dump(mode="json")
        changed = changed_fields(before, after)
        if not changed:
            return account
        # Re-indexing also writes the account's row, so its version and updated_at move even
        # when only external ids (rows of their own) changed.
        self._index(account)
        await self._flush_checking_uniqueness(session, auth, account)
        await session.refresh(account, ["updated_at"])
        await outbox.record(
            session,
            workspace_id=auth.workspace_id,
            type="account.updated",
            aggregate_type="account",
            aggregate_id=account.id,
            data=self.to_schema(account),
            changed_fields=changed,
        )
        return account

    async def delete(
        self,
        session: AsyncSession,
        auth: AuthContext,
        account_id: uuid.UUID,
        *,
        if_match: str | None = None,
    ) -> None:
        """Delete an account; its contacts and child accounts stay, no longer linked to it.

        The foreign keys would unlink them too, but silently: they are unlinked here first as
        new versions (new ETags, ``updated_at``, events), so caches and subscribers learn of it.
        """
        repository = AccountRepository(session)
        # FOR UPDATE, unlike a change: no contact or child may start pointing at it meanwhile.
        account = await repository.get(auth.workspace_id, account_id, lock="update")
        if account is None:
            raise AccountNotFound()
        check_if_match(if_match, account.version)
        contact_ids = await repository.detach_contacts(auth.workspace_id, account_id)
        child_ids = await repository.detach_children(auth.workspace_id, account_id)
        await repository.delete(account)
        session.expunge(account)
        for start in range(0, len(contact_ids), _CONTACT_EVENT_CHUNK):
            chunk = contact_ids[start : start + _CONTACT_EVENT_CHUNK]
            for contact in await repository.contacts_by_ids(auth.workspace_id, chunk):
                await outbox.record(
                    session,
                    workspace_id=auth.workspace_id,
                    type="contact.updated",
                    aggregate_type="contact",
                    aggregate_id=contact.id,
                    data=contact_service.to_schema(contact),
                    changed_fields=["account_id"],
                )
        for child in await repository.get_many(auth.workspace_id, child_ids):
            await outbox.record(
                session,
                workspace_id=auth.workspace_id,
                type="account.updated",
                aggregate_type="account",
                aggregate_id=child.id,
                data=self.to_schema(child),
                changed_fields=["parent_account_id"],
            )
        await outbox.record(
            session,
            workspace_id=auth.workspace_id,
            type="account.deleted",
            aggregate_type="account",
            aggregate_id=account_id,
            data={"id": str(account_id)},
        )

    async def batch(
        self, session: AsyncSession, auth: AuthContext, request: schemas.AccountBatchUpsert
    ) -> schemas.AccountBatchResult:
        """Upsert each item in a savepoint of its own.

        Raises:
            BatchFailed: ``all_or_none`` and an item failed (the caller rolls back).
        """
        outcomes: list[_Outcome] = []
        parsed: list[schemas.AccountBatchItem | CRMError] = []
        for raw in request.items:
            try:
                parsed.append(parse_input(schemas.AccountBatchItem, raw))
            except CRMError as error:
                parsed.append(error)
        # Every item's keys at once, in one sorted pass: item by item, two partner syncs
        # sending overlapping accounts in different orders would deadlock each other.
        await lock_keys(
            session,
            auth.workspace_id,
            _batch_keys(item for item in parsed if not isinstance(item, CRMError)),
        )
        for item in parsed:
            if isinstance(item, CRMError):
                outcomes.append(_Outcome("error", error=item))
                continue
            try:
                async with session.begin_nested():
                    outcomes.append(await self._upsert(session, auth, item))
            except CRMError as error:
                outcomes.append(_Outcome("error", error=error))
            except SQLAlchemyError as exc:
                translated = database_problem(exc)
                if translated is None:
                    raise
                outcomes.append(_Outcome("error", error=translated))
        failed = [index for index, outcome in enumerate(outcomes) if outcome.error is not None]
        if request.all_or_none and failed:
            results = [
                _result(index, outcome, rolled_back=True) for index, outcome in enumerate(outcomes)
            ]
            raise BatchFailed(
                f"{len(failed)} of {len(outcomes)} items failed (items "
                f"{', '.join(str(index) for index in failed[:20])}"
                f"{', ...' if len(failed) > 20 else ''}); nothing was written",
                errors=[
                    error for index in failed for error in _item_errors(index, outcomes[index])
                ],
                results=[result.model_dump(mode="json") for result in results],
            )
        return schemas.AccountBatchResult(
            results=[_result(index, outcome) for index, outcome in enumerate(outcomes)],
            created=sum(1 for outcome in outcomes if outcome.status == "created"),
            updated=sum(1 for outcome in outcomes if outcome.status == "updated"),
            errors=len(failed),
        )

    async def _upsert(
        self, session: AsyncSession, auth: AuthContext, item: schemas.AccountBatchItem
    ) -> _Outcome:
        external_ids = dict(item.external_ids)
        if item.match is not None:
            listed = external_ids.setdefault(item.match.system, item.match.value)
            if listed != item.match.value:
                raise ValidationFailed(
                    "The item lists another value for the system it is matched by",
                    errors=[
                        FieldError(
                            field=f"external_ids.{item.match.system}",
                            message="differs from match.value",
                        )
                    ],
                )
        given = item.model_dump(include=item.model_fields_set - {"match"})
        if external_ids:
            given["external_ids"] = external_ids
        existing = await self._match(session, auth, item, external_ids)
        if existing is None:
            data = parse_input(schemas.AccountCreate, given)
            return _Outcome("created", (await self.create(session, auth, data)).id)
        patch = parse_input(schemas.AccountUpdate, given)
        return _Outcome("updated", (await self.update(session, auth, existing, patch)).id)

    async def _match(
        self,
        session: AsyncSession,
        auth: AuthContext,
        item: schemas.AccountBatchItem,
        external_ids: dict[str, str],
    ) -> uuid.UUID | None:
        """The account an item describes: by ``match``, else its external ids, else domain."""
        repository = AccountRepository(session)
        if item.match is not None:
            found = await repository.by_external_id(
                auth.workspace_id, item.match.system, item.match.value
            )
            if found is not None:
                return found
        owners = await repository.external_id_owners(auth.workspace_id, external_ids.items())
        distinct = set(owners.values())
        if len(distinct) > 1:
            raise ValidationFailed(
                "The item's external ids belong to different accounts",
                errors=[
                    FieldError(field=f"external_ids.{system}", message=f"belongs to {owner}")
                    for (system, _), owner in sorted(owners.items())
                ],
            )
        if distinct:
            return distinct.pop()
        if item.domain is not None:
            return await repository.domain_owner(auth.workspace_id, item.domain)
        return None

    # -- helpers -----------------------------------------------------------------------------
    def to_schema(self, account: Account) -> schemas.Account:
        return schemas.Account(
            id=account.id,
            name=account.name,
            type=account.type,  # type: ignore[arg-type]
            domain=account.domain,
            industry=account.industry,
            size=account.size,  # type: ignore[arg-type]
            parent_account_id=account.parent_account_id,
            owner_id=account.owner_id,
            attributes=dict(account.attributes),
            external_ids={
                x.system: x.value for x in sorted(account.external_ids, key=lambda x: x.system)
            },
            created_at=account.created_at,
            updated_at=account.updated_at,
            version=account.version,
        )

    @staticmethod
    async def _check_parent_exists(
        repository: AccountRepository, auth: AuthContext, parent_id: uuid.UUID
    ) -> None:
        if not await repository.exists(auth.workspace_id, parent_id):
            raise ValidationFailed(
                "No such parent account",
                errors=[FieldError(field="parent_account_id", message="no such account")],
            )

    async def _check_parent(
        self,
        repository: AccountRepository,
        auth: AuthContext,
        account_id: uuid.UUID,
        parent_id: uuid.UUID,
    ) -> None:
        if parent_id == account_id:
            raise _cycle("an account cannot be its own parent")
        await self._check_parent_exists(repository, auth, parent_id)
        if await repository.is_ancestor_or_self(auth.workspace_id, account_id, of=parent_id):
            raise _cycle("the new parent is one of this account's descendants")

    @staticmethod
    def _set_external_ids(account: Account, external_ids: dict[str, str]) -> None:
        account.external_ids = [
            AccountExternalId(
                workspace_id=account.workspace_id, account_id=account.id, system=system, value=value
            )
            for system, value in sorted(external_ids.items())
        ]

    @staticmethod
    def _index(account: Account) -> None:
        source = " ".join(part for part in (account.name, account.domain) if part)
        account.search_text = func.crm_search_key(source)
        account.name_sort_key = sort_key(account.name)

    async def _flush_checking_uniqueness(
        self, session: AsyncSession, auth: AuthContext, account: Account
    ) -> None:
        """Flush; a domain or external id another account has is a 409 naming its owner.

        Writers of the same domain or external id are serialised by transaction-scoped
        advisory locks, as for contacts' e-mails: the second waits for the first to commit and
        then sees its owner. The unique keys remain the backstop.
        """
        repository = AccountRepository(session)
        pairs = [(x.system, x.value) for x in account.external_ids]
        await lock_keys(session, auth.workspace_id, _identity_keys(pairs, account.domain))
        await self._raise_if_taken(repository, auth, account, pairs)
        await session.flush()
        # search_text was written as an SQL expression; its value is not needed in memory.
        session.expire(account, ["search_text"])

    @staticmethod
    async def _raise_if_taken(
        repository: AccountRepository,
        auth: AuthContext,
        account: Account,
        pairs: Sequence[tuple[str, str]],
    ) -> None:
        if account.domain is not None:
            owner = await repository.domain_owner(auth.workspace_id, account.domain)
            if owner is not None and owner != account.id:
                raise DuplicateAccount(
                    f"An account with domain {account.domain} already exists",
                    field="domain",
                    existing_id=owner,
                )
        owners = await repository.external_id_owners(auth.workspace_id, pairs)
        for system, value in pairs:
            found = owners.get((system, value))
            if found is not None and found != account.id:
                raise DuplicateAccount(
                    f"An account with {system} id {value!r} already exists",
                    field=f"external_ids.{system}",
                    existing_id=found,
                )


def _cycle(message: str) -> ValidationFailed:
    return ValidationFailed(
        "The account hierarchy cannot contain a cycle",
        errors=[FieldError(field="parent_account_id", message=message)],
    )


def _item_errors(index: int, outcome: _Outcome) -> list[FieldError]:
    """An item's errors as paths into the batch request: ``items.3.domain``."""
    if outcome.error is None:
        return []
    if not outcome.error.errors:
        return [FieldError(field=f"items.{index}", message=outcome.error.detail)]
    return [
        FieldError(
            field=f"items.{index}" if error.field == "body" else f"items.{index}.{error.field}",
            message=error.message,
        )
        for error in outcome.error.errors
    ]


def _result(
    index: int, outcome: _Outcome, *, rolled_back: bool = False
) -> schemas.AccountBatchItemResult:
    error = outcome.error
    if error is None:
        return schemas.AccountBatchItemResult(
            index=index,
            status="rolled_back" if rolled_back else outcome.status,
            id=None if rolled_back else outcome.account_id,
        )
    return schemas.AccountBatchItemResult(
        index=index,
        status="error",
        error=schemas.AccountBatchItemProblem.model_validate(error.problem()),
    )


account = AccountService()


def _identity_keys(pairs: Iterable[tuple[str, str]], domain: str | None) -> list[str]:
    """The advisory-lock names serialising writers of the same external id or domain."""
    keys = [f"account_external_id:{system}:{value}" for system, value in pairs]
    if domain is not None:
        keys.append(f"account_domain:{domain}")
    return keys


def _batch_keys(items: Iterable[schemas.AccountBatchItem]) -> list[str]:
    """The lock names of the batch's items: their external ids, match key and domain."""
    keys: list[str] = []
    for item in items:
        pairs = list(item.external_ids.items())
        if item.match is not None:
            pairs.append((item.match.system, item.match.value))
        keys += _identity_keys(pairs, item.domain)
    return keys
