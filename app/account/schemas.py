from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import idna
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from app.kit.errors import Problem
from app.kit.schemas import InputSchema, PatchSchema, Schema, UTCDateTime
from app.kit.validators import (
    Attributes,
    ExternalIds,
    ExternalIdValue,
    ShortText,
    SystemName,
)

AccountType = Literal["customer", "prospect", "partner", "distributor", "retailer", "supplier"]
AccountSize = Literal["micro", "small", "medium", "large", "enterprise"]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]
Industry = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]

MAX_BATCH_ITEMS = 1000


def normalize_domain(raw: str) -> str:
    """``https://WWW.Example.co.th:8443/about`` -> ``example.co.th``; raises ValueError.

    Internationalised names are kept in their Unicode form (``ไทย.ไทย``), whichever form they
    were sent in, so the punycode and Unicode spellings of one domain are the same value.
    """
    text = raw.strip()
    invalid = ValueError("not a domain name such as example.co.th")
    try:
        # A pasted URL (or host:port) keeps only its host; userinfo and port are dropped.
        host = urlsplit(text if "//" in text else f"//{text}").hostname
    except ValueError:
        raise invalid from None
    if not host:
        raise invalid
    try:
        # UTS 46 maps case and full-width letters before the IDNA 2008 checks.
        unicode_form: str = idna.decode(idna.encode(host.removesuffix("."), uts46=True))
    except (idna.IDNAError, UnicodeError, ValueError):
        raise invalid from None
    labels = unicode_form.split(".")
    if len(labels) < 2 or labels[-1].isdigit():
        raise invalid  # a bare host name or an IPv4 address
    while labels[0] == "www" and len(labels) > 2:
        labels = labels[1:]
    return ".".join(labels)


Domain = Annotated[
    str,
    Field(
        min_length=1,
        max_length=2048,
        description="A domain or a URL; stored as the bare domain, lower-case, without scheme, "
        "path, port or a leading `www.` (`https://www.Example.co.th/about` -> `example.co.th`). "
        "Unique within the workspace.",
    ),
    AfterValidator(normalize_domain),
]


class AccountCreate(InputSchema):
    name: Name
    type: AccountType = "customer"
    domain: Domain | None = None
    industry: Industry | None = None
    size: AccountSize | None = None
    parent_account_id: uuid.UUID | None = Field(
        default=None, description="The account this one belongs to (a subsidiary, a branch)."
    )
    owner_id: ShortText | None = Field(default=None, description="The user who owns it.")
    attributes: Attributes = Field(default_factory=dict)
    external_ids: ExternalIds = Field(default_factory=dict)


class AccountUpdate(PatchSchema):
    """Merge patch: ``attributes`` and ``external_ids`` are merged key by key, a ``null`` value
    removing the key; ``null`` for the whole member empties it."""

    not_nullable = frozenset({"name", "type"})

    name: Name | None = None
    type: AccountType | None = None
    domain: Domain | None = None
    industry: Industry | None = None
    size: AccountSize | None = None
    parent_account_id: uuid.UUID | None = None
    owner_id: ShortText | None = None
    attributes: dict[str, Any] | None = None
    external_ids: dict[SystemName, ExternalIdValue | None] | None = None


class Account(Schema):
    """An organisation: a customer, or an intermediary such as a distributor or retailer."""

    id: uuid.UUID
    name: str
    type: AccountType
    domain: str | None
    industry: str | None
    size: AccountSize | None
    parent_account_id: uuid.UUID | None
    owner_id: str | None
    attributes: dict[str, Any]
    external_ids: dict[str, str]
    created_at: UTCDateTime
    updated_at: UTCDateTime
    version: int


# -- batch upsert ----------------------------------------------------------------------------


class ExternalIdMatch(InputSchema):
    system: SystemName
    value: ExternalIdValue


class AccountBatchItem(AccountCreate):
    name: Name | None = Field(  # type: ignore[assignment]
        default=None, description="Needed when the item creates an account."
    )
    match: ExternalIdMatch | None = Field(
        default=None,
        description="The partner key that identifies the account; added to a created account.",
    )


class AccountBatchUpsert(BaseModel):
    # Not an InputSchema: items are validated one by one, so that a bad item (a NUL character
    # included) is an error of that item rather than of the whole batch.
    model_config = ConfigDict(extra="forbid")

    items: Annotated[
        list[dict[str, Any]],
        Field(
            min_length=1,
            max_length=MAX_BATCH_ITEMS,
            description="Up to 1,000 accounts, each with the fields of `AccountCreate` and an "
            "optional `match: {system, value}`. An item updates the account found by `match`, "
            "else by one of its `external_ids`, else by its `domain`; otherwise it creates "
            "one (and then needs a `name`). An update changes only the fields the item has "
            "(`attributes` and `external_ids` are merged, as with PATCH). Each item is "
            "validated on its own: an invalid one is an error of that item.",
        ),
    ]
    all_or_none: bool = Field(
        default=False,
        description="When true, any failed item rolls the whole batch back (a 422 whose "
        "`results` lists every item); when false, each item succeeds or fails on its own.",
    )


class AccountBatchItemProblem(Problem):
    """The problem the item alone would have had; ``errors`` name fields of the item."""

    existing_id: uuid.UUID | None = Field(
        default=None, description="For `duplicate`: the account that already has the value."
    )


class AccountBatchItemResult(Schema):
    index: int = Field(description="Position of the item in the request.")
    status: Literal["created", "updated", "error", "rolled_back"] = Field(
        description="`rolled_back` only in the 422 of an `all_or_none` batch: the item was "
        "valid, but nothing was written."
    )
    id: uuid.UUID | None = Field(default=None, description="The account created or updated.")
    error: AccountBatchItemProblem | None = None


class AccountBatchResult(Schema):
    results: list[AccountBatchItemResult]
    created: int
    updated: int
    errors: int = Field(description="How many items failed.")


class AccountBatchProblem(Problem):
    """A 422. For an `all_or_none` batch with a failed item, `results` holds every item's
    result and `errors` each failed field as `items.<index>.<field>`."""

    results: list[AccountBatchItemResult] = Field(default_factory=list)
