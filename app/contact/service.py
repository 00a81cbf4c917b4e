"""Contacts: the customer profile, its contact points and partner keys."""

from __future__ import annotations

import contextlib
import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import phonenumbers
from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from app.auth.dependencies import AuthContext
from app.contact import schemas
from app.contact.exceptions import ContactMerged, ContactNotFound, DuplicateContact
from app.contact.repository import ContactFilters, ContactRepository
from app.db.clock import transaction_now
from app.db.direct import DirectPool
from app.db.locking import lock_keys
from app.events import outbox
from app.kit.changes import changed_fields
from app.kit.collation import sort_key
from app.kit.contact_points import normalize_email, normalize_phone
from app.kit.errors import FieldError, ValidationFailed
from app.kit.etag import check_if_match
from app.kit.ids import uuid7
from app.kit.merge_patch import merge_patch
from app.kit.pagination import (
    Keyset,
    SortField,
    parse_datetime,
    parse_hex_bytes,
    parse_sort,
)
from app.kit.schemas import validate_value
from app.kit.search import (
    RELEVANCE,
    SearchTerms,
    relevance_after,
    relevance_page,
    substring,
    text_terms,
    use_search_plans,
)
from app.kit.validators import Attributes, ExternalIds
from app.models import Contact, ContactEmail, ContactExternalId, ContactPhone, Workspace

SORTS = {
    "created_at": SortField(Contact.created_at, parse_datetime),
    "updated_at": SortField(Contact.updated_at, parse_datetime),
    "name": SortField(Contact.name_sort_key, parse_hex_bytes),
}
# The body has the shape of schemas.Contact; tests compare the two on every field.
_WORKSPACE = "crm.contact.workspace"
_READ_DOCUMENT = "SELECT merged_into_id, version, body FROM crm_contact_read($1, $2)"
_PHONE_LIKE = re.compile(r"^\+?[\d\s().\-]{6,}$")
# Fewer digits than a trigram: punctuation such as "... --" is not a number to look for.
_PHONE_DIGITS = 3
# One token with a local part and a dotted domain: what a whole address looks like.
_EMAIL_LIKE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass(frozen=True)
class ContactQuery:
    """What a caller asks of the contact list."""

    q: str | None = None
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


def _phone_like(q: str) -> bool:
    text = q.strip()
    return bool(_PHONE_LIKE.match(text)) and sum(c.isdigit() for c in text) >= _PHONE_DIGITS


def derive_display_name(
    given: str | None,
    family: str | None,
    locale: str | None,
    emails: Sequence[str],
    phones: Sequence[str],
    external_ids: dict[str, str],
) -> str:
    """Names in the order the contact's language writes them (Vietnamese: family first)."""
    if given or family:
        parts = [family, given] if (locale or "").startswith("vi") else [given, family]
        return " ".join(part for part in parts if part)
    if emails:
        return emails[0]
    if phones:
        return phones[0]
    if external_ids:
        system, value = next(iter(sorted(external_ids.items())))
        return f"{system}:{value}"
    return "Unnamed contact"


def _phone_digits(number: str) -> list[str]:
    """``+66812345678`` -> ``66812345678`` and ``0812345678``: either way a caller types it."""
    parsed = phonenumbers.parse(number)
    national = re.sub(
        r"\D", "", phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL)
    )
    return [number.lstrip("+"), national]


def search_source(contact: Contact, emails: Sequence[str], phones: Sequence[str]) -> str:
    parts: list[str] = [contact.display_name, contact.given_name or "", contact.family_name or ""]
    parts += emails
    for number in phones:
        parts += _phone_digits(number)
    return " ".join(part for part in parts if part)


class ContactService:
    # -- reading -----------------------------------------------------------------------------
    async def require_live(
        self, session: AsyncSession, auth: AuthContext, contact_id: uuid.UUID
    ) -> None:
        """Check that a live contact exists, in one light statement.

        Raises:
            ContactNotFound: no such contact in the caller's workspace.
            ContactMerged: it was absorbed by a merge (the problem names the survivor).
        """
        found, merged_into_id = await ContactRepository(session).merged_into(
            auth.workspace_id, contact_id
        )
        if not found:
            raise ContactNotFound()
        if merged_into_id is not None:
            raise ContactMerged(merged_into_id)

    async def get(self, session: AsyncSession, auth: AuthContext, contact_id: uuid.UUID) -> Contact:
        """A live contact.

        Raises:
            ContactNotFound: no such contact in the caller's workspace.
            ContactMerged: it was absorbed by a merge (the problem names the survivor).
        """
        contact = await ContactRepository(session).read(auth.workspace_id, contact_id)
        if contact is None:
            raise ContactNotFound()
        if contact.merged_into_id is not None:
            raise ContactMerged(contact.merged_into_id)
        return contact

    async def document(
        self, direct: DirectPool, auth: AuthContext, contact_id: uuid.UUID
    ) -> tuple[int, bytes]:
        """A live contact's version and API document (JSON), in one statement.

        Raises:
            ContactNotFound: no such contact in the caller's workspace.
            ContactMerged: it was absorbed by a merge (the problem names the survivor).
        """
        row = await direct.fetchrow(_READ_DOCUMENT, auth.workspace_id, contact_id)
        if row is None:
            raise ContactNotFound()
        if row["merged_into_id"] is not None:
            raise ContactMerged(row["merged_into_id"])
        return row["version"], row["body"].encode()

    async def read(
        self, session: AsyncSession, auth: AuthContext, contact_id: uuid.UUID
    ) -> schemas.Contact:
        """A live contact as the API shows it, from its document: one statement, where ``get``
        builds the ORM object and loads its contact points (for a change, or its relations).

        Raises:
            ContactNotFound: no such contact in the caller's workspace.
            ContactMerged: it was absorbed by a merge (the problem names the survivor).
        """
        found = await ContactRepository(session).documents(auth.workspace_id, [contact_id])
        if contact_id not in found:
            raise ContactNotFound()
        merged_into_id, body = found[contact_id]
        if merged_into_id is not None:
            raise ContactMerged(merged_into_id)
        return schemas.Contact.model_validate_json(body)

    async def read_many(
        self, session: AsyncSession, auth: AuthContext, contact_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, schemas.Contact]:
        """The live ones of these contacts as the API shows them, in one statement."""
        found = await ContactRepository(session).documents(auth.workspace_id, contact_ids)
        return {
            contact_id: schemas.Contact.model_validate_json(body)
            for contact_id, (merged_into_id, body) in found.items()
            if merged_into_id is None
        }

    async def get_many(
        self, session: AsyncSession, auth: AuthContext, contact_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, Contact]:
        rows = await ContactRepository(session).read_many(auth.workspace_id, contact_ids)
        return {row.id: row for row in rows if row.merged_into_id is None}

    async def get_by_external_id(
        self, session: AsyncSession, auth: AuthContext, system: str, value: str
    ) -> Contact:
        contact_id = await ContactRepository(session).by_external_id(
            auth.workspace_id, system, value
        )
        if contact_id is None:
            raise ContactNotFound(f"No contact has {system} id {value!r}")
        return await self.get(session, auth, contact_id)

    async def find(
        self,
        session: AsyncSession,
        auth: AuthContext,
        query: ContactQuery,
        *,
        limit: int,
        cursor: str | None,
        sort: str | None,
    ) -> tuple[list[Contact], str | None]:
        """A page of contacts; with ``q``, ranked best match first.

        Raises:
            ValidationFailed: unknown sort field, or a sort other than relevance with ``q``.
            InvalidCursor: the cursor is malformed or from another listing.
        """
        # The workspace's region reads numbers typed without +; only a phone filter or a
        # phone-like query needs it, so other lists and searches skip the statement.
        reads_phones = query.phone is not None or (query.q is not None and _phone_like(query.q))
        region = await self.region(session, auth) if reads_phones else None
        filters = ContactFilters(
            lifecycle_stages=query.lifecycle_stages,
            tags=query.tags,
            account_id=query.account_id,
            owner_id=query.owner_id,
            email=query.email,
            phone=self._phone_filter(query.phone, region),
            has_email=query.has_email,
            has_phone=query.has_phone,
            created_after=query.created_after,
            created_before=query.created_before,
            updated_after=query.updated_after,
            updated_before=query.updated_before,
        )
        repository = ContactRepository(session)
        if query.q:
            if sort not in (None, RELEVANCE):
                raise ValidationFailed(
                    "Search results are ranked by relevance",
                    errors=[FieldError(field="query.sort", message="only 'relevance' with q")],
                )
            return await self._search(
                session, repository, auth, filters, query.q, region, limit=limit, cursor=cursor
            )
        keyset = Keyset.build(
            sort=parse_sort(sort, SORTS, "-created_at"),
            allowed=SORTS,
            id_column=Contact.id,
            limit=limit,
            cursor=cursor,
        )
        rows = await repository.find(auth.workspace_id, filters, keyset)
        column = keyset.field.column.key
        return keyset.page(rows, lambda row: (getattr(row, column), row.id))

    async def _search(
        self,
        session: AsyncSession,
        repository: ContactRepository,
        auth: AuthContext,
        filters: ContactFilters,
        q: str,
        region: str | None,
        *,
        limit: int,
        cursor: str | None,
    ) -> tuple[list[Contact], str | None]:
        after = relevance_after(cursor)
        email = self._whole_email(q)
        if email is not None:
            # A whole address is the contact's key: found exactly, by the address's own index.
            # Its trigrams (the domain's above all) are shared by most contacts, and the trigram
            # index took tens of milliseconds to find the one that has it.
            await use_search_plans(session)
            filters = replace(filters, search_email=email)
            terms = SearchTerms(email, ())
        else:
            terms = await self._search_terms(session, q, region)
            if not terms.groups:
                return [], None
        ranked = await repository.search(
            auth.workspace_id, filters, terms, limit=limit, after=after
        )
        return relevance_page(ranked, limit, lambda contact: contact.id)

    async def _search_terms(self, session: AsyncSession, q: str, region: str | None) -> SearchTerms:
        """The normalised query and the patterns a match must satisfy (``region`` is known
        whenever the query looks like a phone number)."""
        text = q.strip()
        if region is not None and _phone_like(text):
            # Digits as typed match a national or international form, or a fragment; a whole
            # number also matches in E.164, whatever format it was typed in.
            typed = re.sub(r"\D", "", text)
            forms = [typed]
            with contextlib.suppress(ValueError):
                forms.append(normalize_phone(text, region).lstrip("+"))
            patterns = tuple(substring(form) for form in dict.fromkeys(forms))
            await use_search_plans(session)
            return SearchTerms(forms[-1], (patterns,))
        return await text_terms(session, text)

    def _whole_email(self, q: str) -> str | None:
        """The address, normalised as stored, when the query is one whole e-mail address."""
        text = q.strip()
        if not _EMAIL_LIKE.match(text):
            return None
        try:
            return normalize_email(text)
        except ValueError:
            return None

    def _phone_filter(self, phone: str | None, region: str | None) -> str | None:
        if phone is None or region is None:
            return None
        try:
            return normalize_phone(phone, region)
        except ValueError:
            raise ValidationFailed(
                "Not a phone number", errors=[FieldError(field="query.phone", message="invalid")]
            ) from None

    # -- writing -----------------------------------------------------------------------------
    async def create(
        self, session: AsyncSession, auth: AuthContext, data: schemas.ContactCreate
    ) -> Contact:
        """Create a contact.

        Raises:
            DuplicateContact: an e-mail or external id belongs to another contact.
            ValidationFailed: a phone number is invalid, or the account does not exist.
        """
        workspace = await self._workspace(session, auth)
        phones = self._normalize_phones(data.phones, workspace.default_region, "phones")
        await self._check_account(session, auth, data.account_id)
        contact = Contact(
            workspace_id=auth.workspace_id,
            id=uuid7(),
            given_name=data.given_name,
            family_name=data.family_name,
            locale=data.locale,
            time_zone=data.time_zone,
            birthday=data.birthday,
            addresses=[address.model_dump(exclude_none=True) for address in data.addresses],
            lifecycle_stage=data.lifecycle_stage,
            account_id=data.account_id,
            owner_id=data.owner_id,
            tags=list(data.tags),
            attributes=dict(data.attributes),
            acquisition_source=data.acquisition_source,
            acquisition_channel=data.acquisition_channel,
            version=1,
            emails=[],
            phones=[],
            external_ids=[],
        )
        emails = [(item.email, item.primary) for item in data.emails]
        self._set_children(contact, emails, phones, dict(data.external_ids))
        contact.display_name = data.display_name or self._derived_name(contact, workspace)
        self._index(contact)
        ContactRepository(session).add(contact)
        await self._flush_checking_uniqueness(session, auth, contact)
        await outbox.record(
            session,
            workspace_id=auth.workspace_id,
            type="contact.created",
            aggregate_type="contact",
            aggregate_id=contact.id,
            data=self.to_schema(contact),
        )
        return contact

    async def update(
        self,
        session: AsyncSession,
        auth: AuthContext,
        contact_id: uuid.UUID,
        patch: schemas.ContactUpdate,
        *,
        if_match: str | None = None,
    ) -> Contact:
        """Apply a merge patch.

        Raises:
            ContactNotFound, ContactMerged: as for ``get``.
            PreconditionFailed: ``if_match`` names an older version.
            DuplicateContact, ValidationFailed: as for ``create``.
        """
        contact = await self.get_for_update(session, auth, contact_id)
        check_if_match(if_match, contact.version)
        return await self.apply_patch(session, auth, contact, patch)

    async def get_for_update(
        self, session: AsyncSession, auth: AuthContext, contact_id: uuid.UUID
    ) -> Contact:
        """A live contact with its e-mails, phones and ids, its row locked until the
        transaction ends: to change it (``apply_patch``).

        Raises:
            ContactNotFound / ContactMerged: as for ``get``.
        """
        contact = await ContactRepository(session).read(
            auth.workspace_id, contact_id, for_update=True
        )
        if contact is None:
            raise ContactNotFound()
        if contact.merged_into_id is not None:
            raise ContactMerged(contact.merged_into_id)
        return contact

    async def apply_patch(
        self,
        session: AsyncSession,
        auth: AuthContext,
        contact: Contact,
        patch: schemas.ContactUpdate,
    ) -> Contact:
        """``update`` of a contact this transaction read with ``get_for_update``.

        Raises:
            DuplicateContact, ValidationFailed: as for ``create``.
        """
        before = self.to_schema(contact).model_dump(mode="json")
        workspace = await self._workspace(session, auth)
        changes = patch.changes()
        stored = (emails_of(contact), phones_of(contact), external_ids_of(contact))
        emails, phones, external_ids = stored
        if "emails" in changes:
            emails = [(item.email, item.primary) for item in patch.emails or []]
        if "phones" in changes:
            phones = self._normalize_phones(patch.phones or [], workspace.default_region, "phones")
        if "external_ids" in changes:
            external_ids = validate_value(
                ExternalIds,
                merge_patch(external_ids, changes["external_ids"] or {}),
                "external_ids",
            )
        # Contact points sent again as they are (a partner sync re-sending its ids) are left
        # alone: no rows replaced, and no e-mail or id newly claimed to check.
        replace_children = _stored_children(emails, phones, external_ids) != stored
        if replace_children:
            # The rows themselves, to replace (the locked read brought their values only).
            await ContactRepository(session).get(auth.workspace_id, contact.id, for_update=True)
            # Old child rows go first, in a flush of their own, so that a value that stays
            # (the same e-mail) is deleted before it is inserted again. Nothing else has
            # changed yet, so the contact row itself is updated once, at the end.
            contact.emails, contact.phones, contact.external_ids = [], [], []
            await session.flush()

        simple = (
            "given_name",
            "family_name",
            "locale",
            "time_zone",
            "birthday",
            "lifecycle_stage",
            "owner_id",
            "acquisition_source",
            "acquisition_channel",
        )
        for name in simple:
            if name in changes:
                setattr(contact, name, changes[name])
        if "account_id" in changes:
            await self._check_account(session, auth, changes["account_id"])
            contact.account_id = changes["account_id"]
        if "addresses" in changes:
            contact.addresses = [a.model_dump(exclude_none=True) for a in patch.addresses or []]
        if "tags" in changes:
            contact.tags = list(patch.tags or [])
        if "attributes" in changes:
            merged = merge_patch(contact.attributes, changes["attributes"] or {})
            contact.attributes = validate_value(Attributes, merged, "attributes")
        if replace_children:
            self._set_children(contact, emails, phones, external_ids)
        if changes.get("display_name"):
            contact.display_name = changes["display_name"]
        elif "display_name" in changes or _derived_from_names(before, contact):
            contact.display_name = self._derived_name(contact, workspace)

        after = self.to_schema(contact).model_dump(mode="json")
        changed = changed_fields(before, after)
        if not changed:
            return contact
        self._index(contact)
        if replace_children:
            await self._flush_checking_uniqueness(session, auth, contact)
        else:
            # The flush forgets the contact points the locked read brought as values; the
            # contact still holds them.
            kept = {
                name: contact.__dict__[name] for name in _POINT_VALUES if name in contact.__dict__
            }
            await self._flush(session, contact)
            for name, value in kept.items():
                set_committed_value(contact, name, value)
        # The UPDATE set updated_at to now(), the transaction's timestamp: known without
        # reading the row back.
        set_committed_value(contact, "updated_at", await transaction_now(session))
        await outbox.record(
            session,
            workspace_id=auth.workspace_id,
            type="contact.updated",
            aggregate_type="contact",
            aggregate_id=contact.id,
            data=self.to_schema(contact),
            changed_fields=changed,
        )
        return contact

    async def delete(
        self,
        session: AsyncSession,
        auth: AuthContext,
        contact_id: uuid.UUID,
        *,
        if_match: str | None = None,
    ) -> None:
        """Delete a contact and everything that is only its own (contact points, links)."""
        contact = await self.get_for_update(session, auth, contact_id)
        check_if_match(if_match, contact.version)
        await ContactRepository(session).delete(contact)
        session.expunge(contact)
        await outbox.record(
            session,
            workspace_id=auth.workspace_id,
            type="contact.deleted",
            aggregate_type="contact",
            aggregate_id=contact_id,
            data={"id": str(contact_id)},
        )

    # -- helpers -----------------------------------------------------------------------------
    def to_schema(self, contact: Contact) -> schemas.Contact:
        return schemas.Contact(
            id=contact.id,
            given_name=contact.given_name,
            family_name=contact.family_name,
            display_name=contact.display_name,
            emails=[
                schemas.Email(email=email, primary=primary) for email, primary in emails_of(contact)
            ],
            phones=[
                schemas.Phone.model_validate({"number": number, "type": kind, "primary": primary})
                for number, kind, primary in phones_of(contact)
            ],
            locale=contact.locale,
            time_zone=contact.time_zone,
            birthday=contact.birthday,
            addresses=list(contact.addresses),
            lifecycle_stage=contact.lifecycle_stage,  # type: ignore[arg-type]
            account_id=contact.account_id,
            owner_id=contact.owner_id,
            tags=list(contact.tags),
            attributes=dict(contact.attributes),
            external_ids=dict(sorted(external_ids_of(contact).items())),
            acquisition_source=contact.acquisition_source,
            acquisition_channel=contact.acquisition_channel,
            created_at=contact.created_at,
            updated_at=contact.updated_at,
            version=contact.version,
        )

    async def _workspace(self, session: AsyncSession, auth: AuthContext) -> Workspace:
        workspace = await session.get(Workspace, auth.workspace_id)
        if workspace is None:
            raise ContactNotFound("The workspace no longer exists")
        # Held for the session's life: the identity map keeps unreferenced objects only
        # weakly, and a batch would otherwise read the workspace again for every item.
        session.info[_WORKSPACE] = workspace
        return workspace

    async def region(self, session: AsyncSession, auth: AuthContext) -> str:
        """The region phone numbers without + are read in: the workspace's default."""
        return (await self._workspace(session, auth)).default_region

    async def _check_account(
        self, session: AsyncSession, auth: AuthContext, account_id: uuid.UUID | None
    ) -> None:
        if account_id is None:
            return
        # Imported here: the account service uses this one (deleting an account unlinks its
        # contacts), so a module-level import would be circular.
        from app.account.service import account as account_service

        # Held (key share) until commit, so the account cannot be deleted under the link.
        if not await account_service.exists(session, auth, account_id):
            raise ValidationFailed(
                "No such account",
                errors=[FieldError(field="account_id", message="no such account")],
            )

    @staticmethod
    def _normalize_phones(
        phones: Sequence[schemas.PhoneIn], region: str, field: str
    ) -> list[tuple[str, str, bool]]:
        normalized: list[tuple[str, str, bool]] = []
        errors: list[FieldError] = []
        for index, phone in enumerate(phones):
            try:
                number = normalize_phone(phone.number, region)
            except ValueError as exc:
                errors.append(FieldError(field=f"{field}.{index}.number", message=str(exc)))
                continue
            if any(existing == number for existing, _, _ in normalized):
                errors.append(
                    FieldError(
                        field=f"{field}.{index}.number", message="the same number is listed twice"
                    )
                )
                continue
            normalized.append((number, phone.type, phone.primary))
        if errors:
            raise ValidationFailed("Invalid phone number", errors=errors)
        return normalized

    def replace_contact_points(
        self,
        contact: Contact,
        emails: Sequence[tuple[str, bool]],
        phones: Sequence[tuple[str, str, bool]],
        external_ids: dict[str, str],
    ) -> None:
        self._set_children(contact, emails, phones, external_ids)

    def reindex(self, contact: Contact) -> None:
        self._index(contact)

    @staticmethod
    def _set_children(
        contact: Contact,
        emails: Sequence[tuple[str, bool]],
        phones: Sequence[tuple[str, str, bool]],
        external_ids: dict[str, str],
    ) -> None:
        emails, phones, external_ids = _stored_children(emails, phones, external_ids)
        contact.emails = [
            ContactEmail(
                workspace_id=contact.workspace_id,
                contact_id=contact.id,
                email=email,
                is_primary=primary,
                position=index,
            )
            for index, (email, primary) in enumerate(emails)
        ]
        contact.phones = [
            ContactPhone(
                workspace_id=contact.workspace_id,
                contact_id=contact.id,
                number=number,
                type=kind,
                is_primary=primary,
                position=index,
            )
            for index, (number, kind, primary) in enumerate(phones)
        ]
        contact.external_ids = [
            ContactExternalId(
                workspace_id=contact.workspace_id, contact_id=contact.id, system=system, value=value
            )
            for system, value in sorted(external_ids.items())
        ]

    @staticmethod
    def _derived_name(contact: Contact, workspace: Workspace) -> str:
        return derive_display_name(
            contact.given_name,
            contact.family_name,
            contact.locale or workspace.locale,
            [email for email, _ in emails_of(contact)],
            [number for number, _, _ in phones_of(contact)],
            external_ids_of(contact),
        )

    @staticmethod
    def _index(contact: Contact) -> None:
        source = search_source(
            contact,
            [email for email, _ in emails_of(contact)],
            [number for number, _, _ in phones_of(contact)],
        )
        contact.search_text = func.crm_search_key(source)
        contact.name_sort_key = sort_key(contact.display_name)

    async def _flush_checking_uniqueness(
        self, session: AsyncSession, auth: AuthContext, contact: Contact
    ) -> None:
        """Flush; an e-mail or external id another contact has is a 409 naming its owner.

        Writers of the same e-mail or external id are serialised by transaction-scoped
        advisory locks (taken in sorted order, so they cannot deadlock): the second waits for
        the first to commit and then sees its owner. The unique keys remain the backstop.
        """
        repository = ContactRepository(session)
        emails = [e.email for e in contact.emails]
        pairs = [(x.system, x.value) for x in contact.external_ids]
        keys = point_keys(emails, pairs)
        await lock_keys(session, auth.workspace_id, keys)
        free = _vouched_free(session)
        await self._raise_if_taken(repository, auth, contact, emails, pairs, free)
        await self._flush(session, contact)
        # Claimed now: a later writer in this transaction must look again.
        free.difference_update(keys)

    @staticmethod
    async def _flush(session: AsyncSession, contact: Contact) -> None:
        await session.flush()
        # search_text was written as an SQL expression; its value is not needed in memory.
        session.expire(contact, ["search_text"])

    @staticmethod
    async def _raise_if_taken(
        repository: ContactRepository,
        auth: AuthContext,
        contact: Contact,
        emails: Sequence[str],
        pairs: Sequence[tuple[str, str]],
        free: set[str],
    ) -> None:
        owners = await repository.email_owners(
            auth.workspace_id, [email for email in emails if email_key(email) not in free]
        )
        for index, email in enumerate(emails):
            owner = owners.get(email)
            if owner is not None and owner != contact.id:
                raise DuplicateContact(
                    f"A contact with e-mail {email} already exists",
                    field=f"emails.{index}.email",
                    existing_id=owner,
                )
        id_owners = await repository.external_id_owners(
            auth.workspace_id, [pair for pair in pairs if id_key(*pair) not in free]
        )
        for system, value in pairs:
            owner = id_owners.get((system, value))
            if owner is not None and owner != contact.id:
                raise DuplicateContact(
                    f"A contact with {system} id {value!r} already exists",
                    field=f"external_ids.{system}",
                    existing_id=owner,
                )


def _derived_from_names(before: dict[str, Any], contact: Contact) -> bool:
    """Whether the stored display name was derived (so it follows name changes)."""
    return before.get("display_name") == derive_display_name(
        before.get("given_name"),
        before.get("family_name"),
        before.get("locale") or "",
        [e["email"] for e in before.get("emails", [])],
        [p["number"] for p in before.get("phones", [])],
        before.get("external_ids", {}),
    ) and (before.get("given_name"), before.get("family_name")) != (
        contact.given_name,
        contact.family_name,
    )


contact = ContactService()


def email_key(email: str) -> str:
    """The lock name (``lock_keys``) of a contact e-mail."""
    return f"email:{email}"


def id_key(system: str, value: str) -> str:
    """The lock name (``lock_keys``) of a partner system's id."""
    return f"external_id:{system}:{value}"


def point_keys(emails: Iterable[str], pairs: Iterable[tuple[str, str]]) -> list[str]:
    """The lock names of these e-mails and partner ids, e-mails first."""
    return [email_key(email) for email in emails] + [id_key(*pair) for pair in pairs]


# Keys the current transaction holds locked and has found unowned (vouch_free), with that
# transaction.
_FREE = "crm.contact.free_keys"


def vouch_free(session: AsyncSession, keys: Iterable[str]) -> None:
    """Tell the contact writes of this transaction that no contact has these keys: the
    caller holds their locks (``lock_keys``, outside any savepoint) and looked them up after
    taking them, so no other writer can have claimed one since. A write that claims one
    then needs no look-up of its own (a batch looks up all its items' keys at once); the
    key is struck off as it is claimed."""
    session.info[_FREE] = (session.sync_session.get_transaction(), set(keys))


def _vouched_free(session: AsyncSession) -> set[str]:
    kept: tuple[object, set[str]] | None = session.info.get(_FREE)
    if kept is not None and kept[0] is session.sync_session.get_transaction():
        return kept[1]
    return set()


# What ContactRepository's reads bring instead of the contact point rows.
_POINT_VALUES = ("email_values", "phone_values", "external_id_values")


def _stored_children(
    emails: Sequence[tuple[str, bool]],
    phones: Sequence[tuple[str, str, bool]],
    external_ids: dict[str, str],
) -> tuple[list[tuple[str, bool]], list[tuple[str, str, bool]], dict[str, str]]:
    """Contact points as they are stored (and as ``emails_of`` and the others read them):
    the first e-mail and the first phone are primary when none is."""
    has_primary_email = any(primary for _, primary in emails)
    has_primary_phone = any(primary for _, _, primary in phones)
    return (
        [
            (email, primary or (not has_primary_email and index == 0))
            for index, (email, primary) in enumerate(emails)
        ],
        [
            (number, kind, primary or (not has_primary_phone and index == 0))
            for index, (number, kind, primary) in enumerate(phones)
        ],
        dict(external_ids),
    )


# A contact as read carries its e-mails, phones and ids as JSON values; one whose contact
# points are being replaced carries them as ORM collections, which reflect the session's changes.
def emails_of(contact: Contact) -> list[tuple[str, bool]]:
    """``(email, primary)`` in order."""
    if "emails" in contact.__dict__ or contact.email_values is None:
        return [(e.email, e.is_primary) for e in contact.emails]
    return [(value["email"], value["primary"]) for value in contact.email_values]


def phones_of(contact: Contact) -> list[tuple[str, str, bool]]:
    """``(number, type, primary)`` in order."""
    if "phones" in contact.__dict__ or contact.phone_values is None:
        return [(p.number, p.type, p.is_primary) for p in contact.phones]
    return [(value["number"], value["type"], value["primary"]) for value in contact.phone_values]


def external_ids_of(contact: Contact) -> dict[str, str]:
    if "external_ids" in contact.__dict__ or contact.external_id_values is None:
        return {x.system: x.value for x in contact.external_ids}
    return dict(contact.external_id_values)
