from __future__ import annotations

import uuid
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Literal

from pydantic import (
    BeforeValidator,
    Field,
    PlainSerializer,
    StringConstraints,
    field_validator,
    model_validator,
)

from app.kit.money import Currency, Money
from app.kit.schemas import InputSchema, PatchSchema, Schema, UTCDateTime

ClawbackPolicy = Literal["allow_negative", "cap_at_zero"]
TierBasis = Literal["points", "spend"]
EntryKind = Literal["earn", "redeem", "adjust", "expire", "reverse", "release"]
RedemptionStatus = Literal["completed", "reversed"]

MAX_POINTS = 1_000_000_000_000
MAX_RATES = 20
MAX_CATEGORIES = 100
MAX_TIERS = 20

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
PointName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50)]
TierName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Category = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
Reference = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
LongText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]
Points = Annotated[int, Field(gt=0, le=MAX_POINTS, strict=True)]


def _hundredths(value: Any) -> int:
    """A multiplier such as "1.5" as an integer number of hundredths (150), exactly."""
    if isinstance(value, bool) or not isinstance(value, (str, int, Decimal)):
        raise ValueError('a multiplier is a decimal string such as "1.5"')
    try:
        number = value if isinstance(value, Decimal) else Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError('a multiplier is a decimal string such as "1.5"') from None
    if not number.is_finite():
        raise ValueError("must be finite")
    scaled = number * 100
    if scaled != scaled.to_integral_value():
        raise ValueError("at most 2 decimal places")
    return int(scaled)


def _decimal_text(hundredths: int) -> str:
    return format((Decimal(hundredths) / 100).normalize(), "f")


# Input and output as a decimal string ("1.5"); held as hundredths (150) for exact integers.
Multiplier = Annotated[
    int,
    BeforeValidator(_hundredths),
    Field(ge=100, le=10_000, json_schema_extra={"type": "string", "examples": ["1.5"]}),
    PlainSerializer(_decimal_text, return_type=str, when_used="json"),
]
# Output: the stored hundredths shown as a decimal string.
MultiplierOut = Annotated[
    int,
    Field(json_schema_extra={"type": "string", "examples": ["1.5"]}),
    PlainSerializer(_decimal_text, return_type=str, when_used="json"),
]
CategoryMultiplier = Annotated[
    int,
    BeforeValidator(_hundredths),
    Field(ge=0, le=10_000, json_schema_extra={"type": "string", "examples": ["2"]}),
    PlainSerializer(_decimal_text, return_type=str, when_used="json"),
]


class EarnRate(InputSchema):
    """`points` for every `spend` (e.g. 1 point per 25.00 THB), rounded down per purchase."""

    spend: Money = Field(description="The spend that earns `points`, e.g. 25.00 THB.")
    points: Annotated[int, Field(gt=0, le=1_000_000, strict=True)] = 1
    min_spend: Money | None = Field(
        default=None, description="Purchases below this total (same currency) earn nothing."
    )

    @model_validator(mode="after")
    def _consistent(self) -> EarnRate:
        if self.spend.amount <= 0:
            raise ValueError("spend must be more than 0")
        if self.min_spend is not None:
            if self.min_spend.currency != self.spend.currency:
                raise ValueError("min_spend must be in the currency of spend")
            if self.min_spend.amount < 0:
                raise ValueError("min_spend must not be negative")
        return self


def _unique_currencies(rates: list[EarnRate]) -> list[EarnRate]:
    seen = [rate.spend.currency for rate in rates]
    if len(seen) != len(set(seen)):
        raise ValueError("one rate per currency")
    return rates


EarnRates = Annotated[list[EarnRate], Field(max_length=MAX_RATES)]
CategoryMultipliers = Annotated[
    dict[Category, CategoryMultiplier], Field(max_length=MAX_CATEGORIES)
]


class TierCreate(InputSchema):
    name: TierName
    threshold: Annotated[int, Field(ge=0, le=MAX_POINTS * 1000, strict=True)] = Field(
        description="Qualifying points (or spend in minor units of `tier_currency`) in the "
        "rolling window needed to reach the tier."
    )
    earn_multiplier: Multiplier = Field(default=100, description='e.g. "1.5": x1.5 points.')
    benefits: LongText | None = None


class TierUpdate(PatchSchema):
    not_nullable = frozenset({"name", "threshold", "earn_multiplier"})

    name: TierName | None = None
    threshold: Annotated[int, Field(ge=0, le=MAX_POINTS * 1000, strict=True)] | None = None
    earn_multiplier: Multiplier | None = None
    benefits: LongText | None = None


class Tier(Schema):
    id: uuid.UUID
    program_id: uuid.UUID
    name: str
    threshold: int
    earn_multiplier: MultiplierOut
    benefits: str | None
    created_at: UTCDateTime
    updated_at: UTCDateTime


class ProgramCreate(InputSchema):
    """A points programme: earn rules, pending period, expiry, clawback policy and tiers."""

    name: Name
    point_name: PointName = "points"
    earn_rates: EarnRates = Field(default_factory=list)
    category_multipliers: CategoryMultipliers = Field(
        default_factory=dict,
        description='Per item category, e.g. {"beverage": "2"}; "0" earns nothing.',
    )
    first_purchase_bonus: Annotated[int, Field(ge=0, le=MAX_POINTS, strict=True)] = 0
    birthday_multiplier: Multiplier = Field(
        default=100, description="Applied to purchases made in the member's birthday month."
    )
    pending_days: Annotated[int, Field(ge=0, le=3650, strict=True)] = Field(
        default=0, description="Points earned from purchases become available after this."
    )
    expiry_months: Annotated[int, Field(ge=1, le=1200, strict=True)] | None = Field(
        default=None, description="Points expire this long after they become available."
    )
    clawback_policy: ClawbackPolicy = Field(
        default="cap_at_zero",
        description="When a refund claws back points already spent: `allow_negative` lets "
        "the balance go below zero, `cap_at_zero` forgives the rest. Cannot change later.",
    )
    tier_basis: TierBasis = "points"
    tier_currency: Currency | None = Field(
        default=None, description="Required when `tier_basis` is `spend`."
    )
    tier_window_months: Annotated[int, Field(ge=1, le=120, strict=True)] = 12
    tiers: list[TierCreate] = Field(default_factory=list, max_length=MAX_TIERS)

    @field_validator("earn_rates")
    @classmethod
    def _rates(cls, value: list[EarnRate]) -> list[EarnRate]:
        return _unique_currencies(value)

    @model_validator(mode="after")
    def _tier_currency(self) -> ProgramCreate:
        if (self.tier_basis == "spend") != (self.tier_currency is not None):
            raise ValueError("tier_currency is required for spend tiers, and only for them")
        return self


class ProgramUpdate(PatchSchema):
    """Merge patch; the clawback policy and the tier basis cannot change."""

    not_nullable = frozenset(
        {"name", "point_name", "earn_rates", "category_multipliers", "first_purchase_bonus",
         "birthday_multiplier", "pending_days", "tier_window_months", "active"}
    )  # fmt: skip

    name: Name | None = None
    point_name: PointName | None = None
    earn_rates: EarnRates | None = None
    category_multipliers: CategoryMultipliers | None = None
    first_purchase_bonus: Annotated[int, Field(ge=0, le=MAX_POINTS, strict=True)] | None = None
    birthday_multiplier: Multiplier | None = None
    pending_days: Annotated[int, Field(ge=0, le=3650, strict=True)] | None = None
    expiry_months: Annotated[int, Field(ge=1, le=1200, strict=True)] | None = None
    tier_window_months: Annotated[int, Field(ge=1, le=120, strict=True)] | None = None
    active: bool | None = None

    @field_validator("earn_rates")
    @classmethod
    def _rates(cls, value: list[EarnRate] | None) -> list[EarnRate] | None:
        return None if value is None else _unique_currencies(value)


class Program(Schema):
    id: uuid.UUID
    name: str
    point_name: str
    earn_rates: list[EarnRate]
    category_multipliers: dict[str, MultiplierOut]
    first_purchase_bonus: int
    birthday_multiplier: MultiplierOut
    pending_days: int
    expiry_months: int | None
    clawback_policy: ClawbackPolicy
    tier_basis: TierBasis
    tier_currency: str | None
    tier_window_months: int
    active: bool
    tiers: list[Tier] = Field(description="Lowest threshold first.")
    created_at: UTCDateTime
    updated_at: UTCDateTime
    version: int


class AccountCreate(InputSchema):
    program_id: uuid.UUID
    contact_id: uuid.UUID


class TierRef(Schema):
    id: uuid.UUID
    name: str
    threshold: int


class Progress(Schema):
    basis: TierBasis
    window_months: int
    qualifying: int = Field(description="Points (or spend in minor units) in the window.")
    next_tier: TierRef | None
    needed: int | None = Field(description="What is missing to reach the next tier.")


class Expiring(Schema):
    """Points of the account's lots that expire within the next 30, 60 and 90 days."""

    days_30: int
    days_60: int
    days_90: int


class Account(Schema):
    id: uuid.UUID
    program_id: uuid.UUID
    contact_id: uuid.UUID
    available: int = Field(description="Spendable now (negative only under allow_negative).")
    pending: int = Field(description="Earned, not yet available.")
    balance: int = Field(description="available + pending = the sum of all entries.")
    lifetime_earned: int = Field(description="Earned, net of clawbacks.")
    redeemed: int = Field(description="Redeemed, net of reversed redemptions.")
    expired: int
    tier: TierRef | None
    progress: Progress
    expiring: Expiring
    created_at: UTCDateTime
    updated_at: UTCDateTime
    version: int


class EntryCreate(InputSchema):
    """A manual `earn` (points > 0) or an `adjust` (points either sign, reason required)."""

    kind: Literal["earn", "adjust"]
    points: Annotated[int, Field(ge=-MAX_POINTS, le=MAX_POINTS, strict=True)]
    reason: Reason | None = None
    reference: Reference | None = Field(
        default=None,
        description="Your id for this entry, unique in the programme forever: sending it "
        "again returns the recorded entry.",
    )

    @model_validator(mode="after")
    def _rules(self) -> EntryCreate:
        if self.points == 0:
            raise ValueError("points must not be 0")
        if self.kind == "earn" and self.points < 0:
            raise ValueError("an earn adds points; use an adjust to remove them")
        if self.kind == "adjust" and self.reason is None:
            raise ValueError("an adjust needs a reason")
        return self


class Entry(Schema):
    id: uuid.UUID
    account_id: uuid.UUID
    seq: int = Field(description="Position in the account's ledger: 2, 3, ...")
    kind: EntryKind
    amount: int = Field(description="Effect on the balance (available + pending).")
    available_change: int
    pending_change: int
    balance_after: int
    available_after: int
    pending_after: int
    reference: str | None
    reverses_entry_id: uuid.UUID | None
    clawback_of_entry_id: uuid.UUID | None
    redemption_id: uuid.UUID | None
    reason: str | None
    effective_at: UTCDateTime
    recorded_at: UTCDateTime
    api_key_id: uuid.UUID | None
    details: dict[str, Any]


class EntryResult(Schema):
    entry: Entry
    account: Account


class RedemptionCreate(InputSchema):
    """Spend `points`, or buy the reward `reward_id` at its cost."""

    points: Points | None = None
    reward_id: uuid.UUID | None = None
    reason: Reason | None = None
    reference: Reference | None = Field(
        default=None, description="Your id for the redemption, unique in the programme."
    )

    @model_validator(mode="after")
    def _one(self) -> RedemptionCreate:
        if (self.points is None) == (self.reward_id is None):
            raise ValueError("give either points or reward_id")
        return self


class RedemptionReverse(InputSchema):
    reason: Reason | None = None


class Redemption(Schema):
    id: uuid.UUID
    account_id: uuid.UUID
    reward_id: uuid.UUID | None
    points: int
    status: RedemptionStatus
    entry_id: uuid.UUID
    reversal_entry_id: uuid.UUID | None
    reference: str | None
    reason: str | None
    created_at: UTCDateTime
    reversed_at: UTCDateTime | None


class RedemptionResult(Redemption):
    account: Account


class RewardCreate(InputSchema):
    program_id: uuid.UUID
    name: Name
    description: LongText | None = None
    cost_points: Points
    stock: Annotated[int, Field(ge=0, le=MAX_POINTS, strict=True)] | None = Field(
        default=None, description="Units left; null is unlimited."
    )
    valid_from: UTCDateTime | None = None
    valid_to: UTCDateTime | None = None
    min_tier_id: uuid.UUID | None = None
    active: bool = True

    @model_validator(mode="after")
    def _window(self) -> RewardCreate:
        if self.valid_from and self.valid_to and self.valid_from >= self.valid_to:
            raise ValueError("valid_from must be before valid_to")
        return self


class RewardUpdate(PatchSchema):
    not_nullable = frozenset({"name", "cost_points", "active"})

    name: Name | None = None
    description: LongText | None = None
    cost_points: Points | None = None
    stock: Annotated[int, Field(ge=0, le=MAX_POINTS, strict=True)] | None = None
    valid_from: UTCDateTime | None = None
    valid_to: UTCDateTime | None = None
    min_tier_id: uuid.UUID | None = None
    active: bool | None = None


class Reward(Schema):
    id: uuid.UUID
    program_id: uuid.UUID
    name: str
    description: str | None
    cost_points: int
    stock: int | None
    valid_from: UTCDateTime | None
    valid_to: UTCDateTime | None
    min_tier_id: uuid.UUID | None
    active: bool
    created_at: UTCDateTime
    updated_at: UTCDateTime
    version: int


class SweepResult(Schema):
    accounts: int = Field(description="Accounts whose lots or tier changed.")
