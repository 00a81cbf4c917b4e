"""Batch upsert for partner sync: each item created or updated, reported one by one."""

from __future__ import annotations

import contextlib
import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.dependencies import AuthContext
from app.contact import schemas
from app.contact.repository import ContactRepository
from app.contact.service import contact as contact_service
from app.contact.service import emails_of, phones_of, point_keys, vouch_free
from app.db.locking import lock_keys
from app.kit.contact_points import normalize_phone
from app.kit.errors import CRMError, ValidationFailed
from app.models import Contact


class BatchFailed(ValidationFailed):
    title = "The batch was rolled back: an item failed"


class BatchService:
    async def upsert(
        self, session: AsyncSession, auth: AuthContext, batch: schemas.BatchUpsert
    ) -> schemas.BatchResult:
        """Create or update each item in a savepoint of its own.

        Raises:
            BatchFailed: ``all_or_none`` was asked and an item failed; nothing is written.
        """
        results: list[schemas.BatchItemResult] = []
        repository = ContactRepository(session)
        region = await contact_service.region(session, auth)
        # Every item's keys at once, in one sorted pass: item by item, two partner syncs
        # sending overlapping contacts in different orders would deadlock each other.
        emails = [email.email for item in batch.items for email in item.emails]
        pairs = [pair for item in batch.items for pair in item.external_ids.items()]
        await lock_keys(
            session,
            auth.workspace_id,
            point_keys(emails, pairs),
        )
        # Every item's owner at once (two statements, not two per item); what the batch
        # writes is added as it goes, so a later item finds a contact an earlier one made.
        id_owners = await repository.external_id_owners(auth.workspace_id, pairs)
        email_owners = await repository.email_owners(auth.workspace_id, emails)
        # Looked up under their locks: the items' writes need not look again.
        vouch_free(
            session,
            point_keys(
                [email for email in emails if email not in email_owners],
                [pair for pair in pairs if pair not in id_owners],
            ),
        )
        for index, item in enumerate(batch.items):
            try:
                async with session.begin_nested():
                    existing = self._match(item, id_owners, email_owners)
                    if existing is None:
                        created = await contact_service.create(session, auth, item)
                        written = created.id
                        results.append(schemas.BatchItemResult(
                            index=index, status="created", id=created.id
                        ))  # fmt: skip
                    else:
                        current = await contact_service.get_for_update(session, auth, existing)
                        patch = self._as_patch(item, current, region)
                        updated = await contact_service.apply_patch(session, auth, current, patch)
                        written = updated.id
                        results.append(schemas.BatchItemResult(
                            index=index, status="updated", id=updated.id
                        ))  # fmt: skip
            except CRMError as exc:
                results.append(schemas.BatchItemResult(
                    index=index, status="error", error=exc.problem()
                ))  # fmt: skip
                continue
            id_owners.update((pair, written) for pair in item.external_ids.items())
            email_owners.update((email.email, written) for email in item.emails)
        summary = schemas.BatchResult(
            results=results,
            created=sum(1 for r in results if r.status == "created"),
            updated=sum(1 for r in results if r.status == "updated"),
            errors=sum(1 for r in results if r.status == "error"),
        )
        if batch.all_or_none and summary.errors:
            raise BatchFailed(
                f"{summary.errors} of {len(results)} items failed; nothing was written",
                extra={"results": [r.model_dump(mode="json") for r in results]},
            )
        return summary

    @staticmethod
    def _match(
        item: schemas.ContactCreate,
        id_owners: dict[tuple[str, str], uuid.UUID],
        email_owners: dict[str, uuid.UUID],
    ) -> uuid.UUID | None:
        """The contact an item updates: the owner of its first known external id, else of
        its first known e-mail; None creates one."""
        for pair in item.external_ids.items():
            if pair in id_owners:
                return id_owners[pair]
        for email in item.emails:
            if email.email in email_owners:
                return email_owners[email.email]
        return None

    @staticmethod
    def _as_patch(
        item: schemas.ContactCreate, current: Contact, region: str
    ) -> schemas.ContactUpdate:
        """The item as a merge patch: lists it brings are added to what the contact has."""
        values = {name: getattr(item, name) for name in item.model_fields_set}
        if "emails" in values:
            known = {e.email for e in item.emails}
            values["emails"] = [
                schemas.EmailIn(
                    email=email, primary=primary and not any(n.primary for n in item.emails)
                )
                for email, primary in emails_of(current)
                if email not in known
            ] + list(item.emails)
        if "phones" in values:
            incoming = set()
            for phone in item.phones:
                with contextlib.suppress(ValueError):  # invalid ones fail in the update
                    incoming.add(normalize_phone(phone.number, region))
            values["phones"] = [
                schemas.PhoneIn.model_validate({"number": number, "type": kind, "primary": False})
                for number, kind, _primary in phones_of(current)
                if number not in incoming
            ] + list(item.phones)
        if "tags" in values:
            values["tags"] = list(dict.fromkeys([*current.tags, *item.tags]))
        if "addresses" in values:
            values["addresses"] = list(item.addresses)
        return schemas.ContactUpdate.model_construct(_fields_set=set(values), **values)


batch = BatchService()
