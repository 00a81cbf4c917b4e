from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints, field_validator, model_validator

from app.kit.contact_points import normalize_email
from app.kit.schemas import InputSchema, PatchSchema, Schema, UTCDateTime
from app.kit.validators import (
    Attributes,
    Country,
    ExternalIds,
    LocaleTag,
    ShortText,
    Tags,
    TimeZone,
)

LifecycleStage = Literal["lead", "prospect", "customer", "advocate", "ambassador", "churned"]
PhoneType = Literal["mobile", "home", "work", "other"]
AddressType = Literal["home", "work", "billing", "shipping", "other"]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
DisplayName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]
Line = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Area = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]

MAX_EMAILS = 10
MAX_PHONES = 10
MAX_ADDRESSES = 10


class EmailIn(InputSchema):
    email: Annotated[str, Field(min_length=3, max_length=320)]
    primary: bool = False

    @field_validator("email")
    @classmethod
    def _normalize(cls, value: str) -> str:
        return normalize_email(value)


class PhoneIn(InputSchema):
    number: Annotated[
        str,
        Field(
            min_length=1,
            max_length=64,
            description="Any common format; stored as E.164. Numbers without + are read in "
            "the workspace's default region.",
        ),
    ]
    type: PhoneType = "mobile"
    primary: bool = False


class Address(InputSchema):
    """A postal address, in the parts Thai and Vietnamese addresses use."""

    type: AddressType = "home"
    line1: Line | None = None
    line2: Line | None = None
    subdistrict: Area | None = Field(default=None, description="Tambon / khwaeng; phường / xã.")
    district: Area | None = Field(default=None, description="Amphoe / khet; quận / huyện.")
    province: Area | None = Field(default=None, description="Changwat; tỉnh / thành phố.")
    postal_code: (
        Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=20)] | None
    ) = None
    country: Country | None = None


def _one_primary(items: list[Any], what: str) -> list[Any]:
    if sum(1 for item in items if item.primary) > 1:
        raise ValueError(f"at most one {what} can be primary")
    return items


def _no_repeats(values: list[str], what: str) -> None:
    if len(set(values)) != len(values):
        raise ValueError(f"the same {what} is listed twice")


Emails = Annotated[list[EmailIn], Field(max_length=MAX_EMAILS)]
Phones = Annotated[list[PhoneIn], Field(max_length=MAX_PHONES)]
Addresses = Annotated[list[Address], Field(max_length=MAX_ADDRESSES)]
Birthday = Annotated[date, Field(ge=date(1900, 1, 1), le=date(2100, 1, 1))]


class _ContactFields(InputSchema):
    @field_validator("emails", check_fields=False)
    @classmethod
    def _emails(cls, value: list[EmailIn] | None) -> list[EmailIn] | None:
        if value is not None:
            _no_repeats([item.email for item in value], "e-mail")
            _one_primary(value, "e-mail")
        return value

    @field_validator("phones", check_fields=False)
    @classmethod
    def _phones(cls, value: list[PhoneIn] | None) -> list[PhoneIn] | None:
        if value is not None:
            _one_primary(value, "phone")
        return value


class ContactCreate(_ContactFields):
    given_name: Name | None = None
    family_name: Name | None = None
    display_name: DisplayName | None = Field(
        default=None, description="Derived from the names (or the e-mail) when left out."
    )
    emails: Emails = Field(default_factory=list)
    phones: Phones = Field(default_factory=list)
    locale: LocaleTag | None = None
    time_zone: TimeZone | None = None
    birthday: Birthday | None = None
    addresses: Addresses = Field(default_factory=list)
    lifecycle_stage: LifecycleStage = "lead"
    account_id: uuid.UUID | None = None
    owner_id: ShortText | None = Field(default=None, description="The user who owns it.")
    tags: Tags = Field(default_factory=list)
    attributes: Attributes = Field(default_factory=dict)
    external_ids: ExternalIds = Field(default_factory=dict)
    acquisition_source: (
        Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
        | None
    ) = None
    acquisition_channel: (
        Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50)] | None
    ) = None

    @model_validator(mode="after")
    def _identifiable(self) -> ContactCreate:
        if not (
            self.given_name
            or self.family_name
            or self.display_name
            or self.emails
            or self.phones
            or self.external_ids
        ):
            raise ValueError("a contact needs a name, an e-mail, a phone or an external id")
        return self


class ContactUpdate(_ContactFields, PatchSchema):
    """Merge patch: lists (e-mails, phones, tags, addresses) are replaced whole; ``attributes``
    and ``external_ids`` are merged key by key, a ``null`` value removing the key."""

    not_nullable = frozenset({"lifecycle_stage", "emails", "phones", "addresses", "tags"})

    given_name: Name | None = None
    family_name: Name | None = None
    display_name: DisplayName | None = Field(
        default=None, description="`null` derives it again from the names."
    )
    emails: Emails | None = None
    phones: Phones | None = None
    locale: LocaleTag | None = None
    time_zone: TimeZone | None = None
    birthday: Birthday | None = None
    addresses: Addresses | None = None
    lifecycle_stage: LifecycleStage | None = None
    account_id: uuid.UUID | None = None
    owner_id: ShortText | None = None
    tags: Tags | None = None
    attributes: dict[str, Any] | None = None
    external_ids: dict[str, str | None] | None = None
    acquisition_source: (
        Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
        | None
    ) = None
    acquisition_channel: (
        Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50)] | None
    ) = None


class Email(Schema):
    email: str
    primary: bool


class Phone(Schema):
    number: str = Field(description="E.164, e.g. +66812345678.")
    type: PhoneType
    primary: bool


class Contact(Schema):
    """A person: the customer profile."""

    id: uuid.UUID
    given_name: str | None
    family_name: str | None
    display_name: str
    emails: list[Email]
    phones: list[Phone]
    locale: str | None
    time_zone: str | None
    birthday: date | None
    addresses: list[dict[str, Any]]
    lifecycle_stage: LifecycleStage
    account_id: uuid.UUID | None
    owner_id: str | None
    tags: list[str]
    attributes: dict[str, Any]
    external_ids: dict[str, str]
    acquisition_source: str | None
    acquisition_channel: str | None
    created_at: UTCDateTime
    updated_at: UTCDateTime
    version: int


MERGEABLE_FIELDS = (
    "given_name",
    "family_name",
    "display_name",
    "locale",
    "time_zone",
    "birthday",
    "lifecycle_stage",
    "account_id",
    "owner_id",
    "acquisition_source",
    "acquisition_channel",
    "addresses",
)


class MergeRequest(InputSchema):
    absorb: Annotated[list[uuid.UUID], Field(min_length=1, max_length=10)] = Field(
        description="Contacts to absorb into this one; they then answer 404 with `merged_into`."
    )
    fields: dict[str, uuid.UUID] = Field(
        default_factory=dict,
        description="For a field, the id of the contact whose value to keep. Fields left out "
        "keep the survivor's value, or the first absorbed contact's where the survivor has "
        "none. E-mails, phones, tags, external ids and attributes are combined.",
    )
    dry_run: bool = Field(default=False, description="Preview the result; change nothing.")

    @field_validator("absorb")
    @classmethod
    def _distinct(cls, value: list[uuid.UUID]) -> list[uuid.UUID]:
        if len(set(value)) != len(value):
            raise ValueError("the same contact is listed twice")
        return value

    @field_validator("fields")
    @classmethod
    def _known_fields(cls, value: dict[str, uuid.UUID]) -> dict[str, uuid.UUID]:
        unknown = sorted(set(value) - set(MERGEABLE_FIELDS))
        if unknown:
            raise ValueError(f"not mergeable: {', '.join(unknown)}")
        return value


class MergeResult(Schema):
    contact: Contact
    absorbed: list[uuid.UUID]
    dry_run: bool
    merge_id: uuid.UUID | None = Field(description="The recorded merge; null on a dry run.")


class Duplicate(Schema):
    contact: Contact
    score: float = Field(description="0 to 1: how likely the two are the same person.")
    reasons: list[Literal["same_phone", "similar_name"]]


class BatchUpsert(InputSchema):
    items: Annotated[list[ContactCreate], Field(min_length=1, max_length=1000)] = Field(
        description="Contacts to create, or to update where one already has an item's "
        "external id (first) or e-mail. On update, given fields overwrite; e-mails, phones "
        "and tags are added to the contact's; external ids and attributes are merged."
    )
    all_or_none: bool = Field(
        default=False, description="Any item failing rolls the whole batch back (422)."
    )


class BatchItemResult(Schema):
    index: int
    status: Literal["created", "updated", "error"]
    id: uuid.UUID | None = None
    error: dict[str, Any] | None = Field(default=None, description="A problem document.")


class BatchResult(Schema):
    results: list[BatchItemResult]
    created: int
    updated: int
    errors: int
