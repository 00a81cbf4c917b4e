from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints, field_validator, model_validator

from app.kit.contact_points import normalize_email
from app.kit.money import Money
from app.kit.schemas import InputSchema, PatchSchema, Schema, UTCDateTime
from app.kit.validators import Attributes
from app.opportunity.schemas import OpportunityName, Owner, SalesDate, Source

LeadStatus = Literal["new", "working", "qualified", "disqualified", "converted"]
# ``converted`` is reached by converting, never set by hand.
SettableStatus = Literal["new", "working", "qualified", "disqualified"]

LeadName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Company = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]
Email = Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=320)]
Phone = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
Score = Annotated[int, Field(ge=0, le=100, strict=True)]


def _email(value: str | None) -> str | None:
    return normalize_email(value) if value is not None else None


class LeadCreate(InputSchema):
    name: LeadName = Field(description="The person's full name.")
    company: Company | None = None
    email: Email | None = Field(default=None, description="Stored lower-cased.")
    phone: Phone | None = Field(
        default=None, description="Any common format; stored as E.164 (workspace region)."
    )
    source: Source | None = None
    status: SettableStatus = "new"
    disqualified_reason: Reason | None = Field(
        default=None, description="Required with status `disqualified`, refused otherwise."
    )
    score: Score | None = None
    owner: Owner | None = None
    attributes: Attributes = Field(default_factory=dict)

    _normalize_email = field_validator("email")(_email)

    @model_validator(mode="after")
    def _reason_with_disqualified(self) -> LeadCreate:
        if (self.status == "disqualified") != (self.disqualified_reason is not None):
            raise ValueError("disqualified_reason goes with status disqualified, and only with it")
        return self


class LeadUpdate(PatchSchema):
    """Merge patch. Disqualifying needs ``disqualified_reason``; any other status clears it."""

    not_nullable = frozenset({"name", "status"})

    name: LeadName | None = None
    company: Company | None = None
    email: Email | None = None
    phone: Phone | None = None
    source: Source | None = None
    status: SettableStatus | None = None
    disqualified_reason: Reason | None = None
    score: Score | None = None
    owner: Owner | None = None
    attributes: dict[str, Any] | None = None

    _normalize_email = field_validator("email")(_email)


class LeadOpportunity(InputSchema):
    name: OpportunityName | None = Field(default=None, description="Default: the company's name.")
    amount: Money
    expected_close_date: SalesDate
    pipeline_id: uuid.UUID | None = None
    stage_id: uuid.UUID | None = None
    owner: Owner | None = Field(default=None, description="Default: the lead's owner.")


class LeadConvert(InputSchema):
    """What the conversion creates or links. By default the contact is matched by e-mail and
    the account by the e-mail's domain (unless a public mail service's) or the company name;
    what is not found is created."""

    contact_id: uuid.UUID | None = Field(default=None, description="Link this contact instead.")
    account_id: uuid.UUID | None = Field(default=None, description="Link this account instead.")
    opportunity: LeadOpportunity | None = Field(
        default=None, description="Also open an opportunity for the contact and account."
    )


class Lead(Schema):
    id: uuid.UUID
    name: str
    company: str | None
    email: str | None
    phone: str | None
    source: str | None
    status: LeadStatus
    disqualified_reason: str | None
    score: int | None
    owner: str | None
    attributes: dict[str, Any]
    converted_at: UTCDateTime | None
    converted_contact_id: uuid.UUID | None
    converted_account_id: uuid.UUID | None
    converted_opportunity_id: uuid.UUID | None
    created_at: UTCDateTime
    updated_at: UTCDateTime
    version: int


class LeadConversion(Schema):
    lead: Lead
    contact_id: uuid.UUID
    contact_created: bool
    account_id: uuid.UUID | None
    account_created: bool
    opportunity_id: uuid.UUID | None
