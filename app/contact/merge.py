"""Merging duplicate contacts into one survivor, and finding likely duplicates."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.dependencies import AuthContext
from app.contact import schemas
from app.contact.exceptions import ContactMerged, ContactNotFound
from app.contact.references import move_references
from app.contact.repository import ContactRepository
from app.contact.service import contact as contact_service
from app.contact.service import phones_of
from app.events import outbox
from app.kit.errors import FieldError, ValidationFailed
from app.kit.ids import uuid7
from app.kit.merge_patch import merge_patch
from app.models import Contact, ContactMerge

_MAX_DUPLICATES = 20


def _plan(
    survivor: Contact, absorbed: Sequence[Contact], choices: dict[str, uuid.UUID]
) -> dict[str, Any]:
    """The survivor's values after the merge, computed without changing anything."""
    by_id = {c.id: c for c in (survivor, *absorbed)}
    values: dict[str, Any] = {}
    for name in schemas.MERGEABLE_FIELDS:
        if name in choices:
            values[name] = getattr(by_id[choices[name]], name)
            continue
        value = getattr(survivor, name)
        if value in (None, [], ""):
            value = next((getattr(c, name) for c in absorbed if getattr(c, name)), value)
        values[name] = value
    everyone = (survivor, *absorbed)
    emails: dict[str, bool] = {}
    for person in everyone:
        for address in person.emails:
            emails.setdefault(address.email, address.is_primary and person is survivor)
    phones: dict[str, tuple[str, bool]] = {}
    for person in everyone:
        for phone in person.phones:
            phones.setdefault(phone.number, (phone.type, phone.is_primary and person is survivor))
    external_ids: dict[str, str] = {}
    for person in everyone:
        for key in person.external_ids:
            # One value per system on a contact: the survivor's (or the first) wins.
            external_ids.setdefault(key.system, key.value)
    tags: dict[str, str] = {}
    for person in everyone:
        for tag in person.tags:
            tags.setdefault(tag.casefold(), tag)
    attributes: dict[str, Any] = {}
    for person in reversed(everyone):  # the survivor's keys win
        attributes = merge_patch(attributes, person.attributes)
    values.update(
        emails=list(emails.items()),
        phones=[(number, kind, primary) for number, (kind, primary) in phones.items()],
        external_ids=external_ids,
        tags=list(tags.values()),
        attributes=attributes,
    )
    return values


class MergeService:
    async def merge(
        self,
        session: AsyncSession,
        auth: AuthContext,
        survivor_id: uuid.UUID,
        request: schemas.MergeRequest,
    ) -> schemas.MergeResult:
        """Absorb contacts into a survivor in one transaction.

        Raises:
            ValidationFailed: merging a contact into itself, or a field choice naming a
                contact that is not part of the merge.
            ContactNotFound, ContactMerged: a contact does not exist, or was merged already.
        """
        if survivor_id in request.absorb:
            raise ValidationFailed(
                "A contact cannot be merged into itself",
                errors=[FieldError(field="absorb", message="contains the survivor")],
            )
        involved = {survivor_id, *request.absorb}
        for name, chosen in request.fields.items():
            if chosen not in involved:
                raise ValidationFailed(
                    "A field choice names a contact outside the merge",
                    errors=[FieldError(field=f"fields.{name}", message="not part of the merge")],
                )
        repository = ContactRepository(session)
        # Locked in id order: concurrent merges over overlapping contacts cannot deadlock,
        # and none of them can change while this one runs.
        rows = {
            row.id: row
            for row in await repository.get_many(
                auth.workspace_id, involved, for_update=not request.dry_run
            )
        }
        for contact_id in [survivor_id, *request.absorb]:
            row = rows.get(contact_id)
            if row is None:
                raise ContactNotFound(f"No such contact: {contact_id}")
            if row.merged_into_id is not None:
                raise ContactMerged(row.merged_into_id)
        survivor = rows[survivor_id]
        absorbed = [rows[contact_id] for contact_id in request.absorb]
        plan = _plan(survivor, absorbed, request.fields)
        if request.dry_run:
            return schemas.MergeResult(
                contact=self._preview(survivor, plan),
                absorbed=request.absorb,
                dry_run=True,
                merge_id=None,
            )

        snapshots = [contact_service.to_schema(c).model_dump(mode="json") for c in absorbed]
        survivor_before = contact_service.to_schema(survivor).model_dump(mode="json")
        kept = plan["external_ids"]
        for person in absorbed:
            # Unique e-mails and partner keys move to the survivor: free them first. A key
            # the survivor already has a value for (same system) stays on the tombstone, so
            # a partner looking it up is told where the contact went.
            person.emails, person.phones = [], []
            person.external_ids = [k for k in person.external_ids if kept.get(k.system) != k.value]
            person.merged_into_id = survivor.id
        survivor.emails, survivor.phones, survivor.external_ids = [], [], []
        await session.flush()

        for name in schemas.MERGEABLE_FIELDS:
            setattr(survivor, name, plan[name])
        survivor.tags = plan["tags"]
        survivor.attributes = plan["attributes"]
        contact_service.replace_contact_points(
            survivor, plan["emails"], plan["phones"], plan["external_ids"]
        )
        contact_service.reindex(survivor)
        await session.flush()
        await session.refresh(survivor, ["updated_at", "version"])
        session.expire(survivor, ["search_text"])

        # Earlier merges into an absorbed contact now point at the survivor directly.
        await session.execute(
            text(
                "UPDATE contacts SET merged_into_id = :s WHERE workspace_id = :w "
                "AND merged_into_id = ANY(:a)"
            ),
            {"s": survivor.id, "w": auth.workspace_id, "a": list(request.absorb)},
        )
        await move_references(session, auth.workspace_id, survivor.id, request.absorb)
        record = ContactMerge(
            workspace_id=auth.workspace_id,
            id=uuid7(),
            survivor_id=survivor.id,
            absorbed_ids=list(request.absorb),
            field_choices={name: str(value) for name, value in request.fields.items()},
            snapshots=[{"survivor_before": survivor_before}, *snapshots],
            merged_by_id=auth.api_key_id,
        )
        session.add(record)
        await session.flush()
        result = contact_service.to_schema(survivor)
        await outbox.record(
            session,
            workspace_id=auth.workspace_id,
            type="contact.merged",
            aggregate_type="contact",
            aggregate_id=survivor.id,
            data={
                "contact": result.model_dump(mode="json"),
                "absorbed": [str(contact_id) for contact_id in request.absorb],
                "merge_id": str(record.id),
            },
        )
        return schemas.MergeResult(
            contact=result, absorbed=request.absorb, dry_run=False, merge_id=record.id
        )

    @staticmethod
    def _preview(survivor: Contact, plan: dict[str, Any]) -> schemas.Contact:
        current = contact_service.to_schema(survivor).model_dump()
        current.update({name: plan[name] for name in schemas.MERGEABLE_FIELDS})
        current.update(
            tags=plan["tags"],
            attributes=plan["attributes"],
            external_ids=plan["external_ids"],
            emails=[{"email": email, "primary": primary} for email, primary in plan["emails"]],
            phones=[
                {"number": n, "type": kind, "primary": primary}
                for n, kind, primary in plan["phones"]
            ],
        )
        return schemas.Contact.model_validate(current)

    async def duplicates(
        self, session: AsyncSession, auth: AuthContext, contact_id: uuid.UUID
    ) -> list[schemas.Duplicate]:
        """Likely duplicates of a contact: the same phone number, or a very similar name."""
        contact = await contact_service.get(session, auth, contact_id)
        repository = ContactRepository(session)
        by_phone = await repository.contacts_with_phones(
            auth.workspace_id, [number for number, _, _ in phones_of(contact)], exclude=contact.id
        )
        name_key = (
            await session.execute(select(func.crm_search_key(contact.display_name)))
        ).scalar_one()
        by_name = dict(
            await repository.similar_names(
                auth.workspace_id, name_key, exclude=contact.id, limit=_MAX_DUPLICATES
            )
        )
        scored: dict[uuid.UUID, tuple[float, list[str]]] = {}
        for candidate in set(by_phone) | set(by_name):
            reasons: list[str] = []
            score = 0.0
            if candidate in by_phone:
                reasons.append("same_phone")
                score = 0.85
            if candidate in by_name:
                reasons.append("similar_name")
                similarity = by_name[candidate]
                score = min(1.0, score + 0.15 * similarity) if score else 0.8 * similarity
            scored[candidate] = (round(score, 3), reasons)
        ranked = sorted(scored.items(), key=lambda item: (-item[1][0], item[0]))[:_MAX_DUPLICATES]
        found = await contact_service.get_many(session, auth, [cid for cid, _ in ranked])
        return [
            schemas.Duplicate(
                contact=contact_service.to_schema(found[cid]),
                score=score,
                reasons=reasons,  # type: ignore[arg-type]
            )
            for cid, (score, reasons) in ranked
            if cid in found
        ]


merge = MergeService()
