"""Leads: prospects before qualification, and their conversion into a contact, an account and
optionally an opportunity, all in one transaction."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncSession

from app.account.schemas import AccountCreate
from app.account.service import AccountQuery
from app.account.service import account as account_service
from app.auth.dependencies import AuthContext
from app.contact.references import column_mover, register_contact_reference
from app.contact.schemas import ContactCreate
from app.contact.service import ContactQuery
from app.contact.service import contact as contact_service
from app.events import outbox
from app.kit.changes import changed_fields
from app.kit.contact_points import normalize_phone
from app.kit.errors import FieldError, NotFound, ValidationFailed
from app.kit.etag import check_if_match
from app.kit.ids import uuid7
from app.kit.merge_patch import merge_patch
from app.kit.pagination import Keyset, SortField, parse_datetime, parse_sort
from app.kit.schemas import parse_input, validate_value
from app.kit.validators import Attributes
from app.lead import schemas
from app.lead.exceptions import LeadAlreadyConverted, LeadDisqualified, LeadNotFound
from app.lead.repository import LeadFilters, LeadRepository
from app.models import Lead
from app.opportunity.schemas import OpportunityCreate
from app.opportunity.service import opportunity as opportunity_service

SORTS = {
    "created_at": SortField(Lead.created_at, parse_datetime),
    "updated_at": SortField(Lead.updated_at, parse_datetime),
}
# Addresses there say nothing about the company someone works for.
PUBLIC_MAIL_DOMAINS = frozenset(
    {
        "gmail.com", "googlemail.com", "yahoo.com", "yahoo.co.th", "hotmail.com",
        "hotmail.co.th", "outlook.com", "live.com", "msn.com", "icloud.com", "me.com",
        "aol.com", "proton.me", "protonmail.com", "gmx.com", "mail.com", "yandex.com",
        "zoho.com",
    }
)  # fmt: skip

register_contact_reference("leads", column_mover("leads", "converted_contact_id"))


@dataclass(frozen=True)
class LeadQuery:
    statuses: Sequence[str] = ()
    owner: str | None = None
    source: str | None = None
    email: str | None = None


def company_domain(email: str | None) -> str | None:
    """The domain of a work address; None for public mail services."""
    if not email or "@" not in email:
        return None
    domain = email.rsplit("@", 1)[1].lower()
    return None if domain in PUBLIC_MAIL_DOMAINS else domain


class LeadService:
    async def get(self, session: AsyncSession, auth: AuthContext, lead_id: uuid.UUID) -> Lead:
        """Raises: LeadNotFound: no such lead in the caller's workspace."""
        found = await LeadRepository(session).get(auth.workspace_id, lead_id)
        if found is None:
            raise LeadNotFound()
        return found

    async def find(
        self,
        session: AsyncSession,
        auth: AuthContext,
        query: LeadQuery,
        *,
        limit: int,
        cursor: str | None,
        sort: str | None,
    ) -> tuple[list[Lead], str | None]:
        """A page of leads, newest first unless ``sort`` says otherwise."""
        keyset = Keyset.build(
            sort=parse_sort(sort, SORTS, "-created_at"),
            allowed=SORTS,
            id_column=Lead.id,
            limit=limit,
            cursor=cursor,
        )
        filters = LeadFilters(
            statuses=query.statuses, owner=query.owner, source=query.source, email=query.email
        )
        rows = await LeadRepository(session).find(auth.workspace_id, filters, keyset)
        column = keyset.field.column.key
        return keyset.page(rows, lambda row: (getattr(row, column), row.id))

    async def create(
        self, session: AsyncSession, auth: AuthContext, data: schemas.LeadCreate
    ) -> Lead:
        """Raises: ValidationFailed: an invalid phone number."""
        lead = Lead(
            workspace_id=auth.workspace_id,
            id=uuid7(),
            name=data.name,
            company=data.company,
            email=data.email,
            phone=await self._phone(session, auth, data.phone),
            source=data.source,
            status=data.status,
            disqualified_reason=data.disqualified_reason,
            score=data.score,
            owner=data.owner,
            attributes=data.attributes,
            version=1,
        )
        LeadRepository(session).add(lead)
        await session.flush()
        await session.refresh(lead, ["created_at", "updated_at"])
        await self._record(session, auth, "lead.created", lead)
        return lead

    async def update(
        self,
        session: AsyncSession,
        auth: AuthContext,
        lead_id: uuid.UUID,
        patch: schemas.LeadUpdate,
        *,
        if_match: str | None = None,
    ) -> Lead:
        """Apply a merge patch.

        Raises:
            LeadNotFound, PreconditionFailed,
            LeadAlreadyConverted: a converted lead is a record of the past.
            ValidationFailed: disqualifying without a reason, an invalid phone.
        """
        lead = await self._locked(session, auth, lead_id)
        check_if_match(if_match, lead.version)
        if lead.status == "converted":
            raise LeadAlreadyConverted()
        before = self.to_schema(lead).model_dump(mode="json")
        changes = patch.changes()
        for name in ("name", "company", "email", "source", "score", "owner"):
            if name in changes:
                setattr(lead, name, changes[name])
        if "phone" in changes:
            lead.phone = await self._phone(session, auth, changes["phone"])
        if "attributes" in changes:
            patched = merge_patch(lead.attributes, changes["attributes"]) or {}
            lead.attributes = validate_value(Attributes, patched, "attributes")
        status = changes.get("status") or lead.status
        reason = changes.get("disqualified_reason", lead.disqualified_reason)
        if status == "disqualified":
            if reason is None:
                raise ValidationFailed(
                    "A disqualified lead needs a reason",
                    errors=[FieldError(field="disqualified_reason", message="required")],
                )
        elif "disqualified_reason" in changes and changes["disqualified_reason"] is not None:
            raise ValidationFailed(
                "Only a disqualified lead has a disqualification reason",
                errors=[
                    FieldError(field="disqualified_reason", message="status is not disqualified")
                ],
            )
        else:
            reason = None
        lead.status, lead.disqualified_reason = status, reason
        after = self.to_schema(lead).model_dump(mode="json")
        changed = changed_fields(before, after)
        if not changed:
            return lead
        lead.updated_at = func.now()
        await session.flush()
        await session.refresh(lead, ["updated_at"])
        await self._record(session, auth, "lead.updated", lead, changed)
        return lead

    async def delete(
        self,
        session: AsyncSession,
        auth: AuthContext,
        lead_id: uuid.UUID,
        *,
        if_match: str | None = None,
    ) -> None:
        """Raises: LeadNotFound, PreconditionFailed."""
        lead = await self._locked(session, auth, lead_id)
        check_if_match(if_match, lead.version)
        await LeadRepository(session).delete(lead)
        session.expunge(lead)
        await outbox.record(
            session,
            workspace_id=auth.workspace_id,
            type="lead.deleted",
            aggregate_type="lead",
            aggregate_id=lead_id,
            data={"id": str(lead_id)},
        )

    async def convert(
        self,
        session: AsyncSession,
        auth: AuthContext,
        lead_id: uuid.UUID,
        data: schemas.LeadConvert,
        *,
        if_match: str | None = None,
    ) -> schemas.LeadConversion:
        """Turn the lead into a contact (matched by e-mail, else created), an account
        (matched by work domain or company name, else created when the lead names a
        company) and, when asked, an opportunity: all or nothing, in the caller's
        transaction. The lead row is locked, so converting twice, even concurrently, is a 409.

        Raises:
            LeadNotFound, PreconditionFailed,
            LeadAlreadyConverted, LeadDisqualified: 409s naming ``status``.
            ContactNotFound / NotFound: a given contact or account does not exist.
            ValidationFailed: see opportunity creation.
        """
        lead = await self._locked(session, auth, lead_id)
        check_if_match(if_match, lead.version)
        if lead.status == "converted":
            raise LeadAlreadyConverted()
        if lead.status == "disqualified":
            raise LeadDisqualified()

        account_id, account_created = await self._account(session, auth, lead, data)
        contact_id, contact_created = await self._contact(session, auth, lead, data, account_id)
        opportunity_id = None
        if data.opportunity is not None:
            wanted = data.opportunity
            body: dict[str, Any] = {
                "name": wanted.name or lead.company or lead.name,
                "contact_id": str(contact_id),
                "amount": wanted.amount.model_dump(mode="json"),
                "expected_close_date": wanted.expected_close_date.isoformat(),
                "source": lead.source,
                "owner": wanted.owner or lead.owner,
            }
            if account_id is not None:
                body["account_id"] = str(account_id)
            if wanted.pipeline_id is not None:
                body["pipeline_id"] = str(wanted.pipeline_id)
            if wanted.stage_id is not None:
                body["stage_id"] = str(wanted.stage_id)
            created = await opportunity_service.create(
                session,
                auth,
                parse_input(OpportunityCreate, {k: v for k, v in body.items() if v is not None}),
            )
            opportunity_id = created.id

        lead.status = "converted"
        lead.converted_at = func.now()
        lead.converted_contact_id = contact_id
        lead.converted_account_id = account_id
        lead.converted_opportunity_id = opportunity_id
        lead.updated_at = func.now()
        await session.flush()
        await session.refresh(lead, ["updated_at", "converted_at"])
        result = schemas.LeadConversion(
            lead=self.to_schema(lead),
            contact_id=contact_id,
            contact_created=contact_created,
            account_id=account_id,
            account_created=account_created,
            opportunity_id=opportunity_id,
        )
        await outbox.record(
            session,
            workspace_id=auth.workspace_id,
            type="lead.converted",
            aggregate_type="lead",
            aggregate_id=lead.id,
            data=result,
        )
        return result

    def to_schema(self, lead: Lead) -> schemas.Lead:
        return schemas.Lead.model_validate(lead)

    # -- helpers -----------------------------------------------------------------------------
    async def _locked(self, session: AsyncSession, auth: AuthContext, lead_id: uuid.UUID) -> Lead:
        found = await LeadRepository(session).get(auth.workspace_id, lead_id, for_update=True)
        if found is None:
            raise LeadNotFound()
        return found

    async def _phone(self, session: AsyncSession, auth: AuthContext, raw: str | None) -> str | None:
        if raw is None:
            return None
        region = await contact_service.region(session, auth)
        try:
            return normalize_phone(raw, region)
        except ValueError as exc:
            raise ValidationFailed(
                "Invalid phone number", errors=[FieldError(field="phone", message=str(exc))]
            ) from None

    async def _account(
        self,
        session: AsyncSession,
        auth: AuthContext,
        lead: Lead,
        data: schemas.LeadConvert,
    ) -> tuple[uuid.UUID | None, bool]:
        if data.account_id is not None:
            if not await account_service.exists(session, auth, data.account_id):
                raise NotFound(
                    f"No account {data.account_id} in this workspace",
                    errors=[FieldError(field="account_id", message="no such account")],
                )
            return data.account_id, False
        domain = company_domain(lead.email)
        if domain is not None:
            found, _ = await account_service.find(
                session, auth, AccountQuery(domain=domain), limit=1, cursor=None, sort=None
            )
            if found:
                return found[0].id, False
        if lead.company is None:
            return None, False
        candidates, _ = await account_service.find(
            session, auth, AccountQuery(q=lead.company), limit=20, cursor=None, sort=None
        )
        for candidate in candidates:
            if candidate.name.casefold() == lead.company.casefold():
                return candidate.id, False
        body: dict[str, Any] = {"name": lead.company, "type": "prospect"}
        if domain is not None:
            body["domain"] = domain
        if lead.owner is not None:
            body["owner_id"] = lead.owner
        created = await account_service.create(session, auth, parse_input(AccountCreate, body))
        return created.id, True

    async def _contact(
        self,
        session: AsyncSession,
        auth: AuthContext,
        lead: Lead,
        data: schemas.LeadConvert,
        account_id: uuid.UUID | None,
    ) -> tuple[uuid.UUID, bool]:
        if data.contact_id is not None:
            await contact_service.require_live(session, auth, data.contact_id)
            return data.contact_id, False
        if lead.email is not None:
            found, _ = await contact_service.find(
                session, auth, ContactQuery(email=lead.email), limit=1, cursor=None, sort=None
            )
            if found:
                return found[0].id, False
        body: dict[str, Any] = {"display_name": lead.name, "lifecycle_stage": "prospect"}
        if lead.email is not None:
            body["emails"] = [{"email": lead.email, "primary": True}]
        if lead.phone is not None:
            body["phones"] = [{"number": lead.phone}]
        if account_id is not None:
            body["account_id"] = str(account_id)
        if lead.owner is not None:
            body["owner_id"] = lead.owner
        if lead.source is not None:
            body["acquisition_source"] = lead.source
        created = await contact_service.create(session, auth, parse_input(ContactCreate, body))
        return created.id, True

    async def _record(
        self,
        session: AsyncSession,
        auth: AuthContext,
        type: str,
        lead: Lead,
        changed: Sequence[str] = (),
    ) -> None:
        await outbox.record(
            session,
            workspace_id=auth.workspace_id,
            type=type,
            aggregate_type="lead",
            aggregate_id=lead.id,
            data=self.to_schema(lead),
            changed_fields=changed,
        )


lead = LeadService()
