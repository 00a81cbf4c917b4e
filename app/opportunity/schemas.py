from __future__ import annotations

import re
import uuid
from datetime import date
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field, StringConstraints, model_validator

from app.kit.money import Currency, Money
from app.kit.schemas import InputSchema, PatchSchema, Schema, UTCDateTime
from app.kit.validators import Attributes, ExternalIds, ExternalIdValue, SystemName

StageType = Literal["open", "won", "lost"]
OpportunityStatus = Literal["open", "won", "lost"]
CompetitorStatus = Literal["active", "eliminated", "selected"]
ForecastGroup = Literal["owner", "stage", "month"]

MAX_STAGES = 30
MAX_COMPETITORS = 20

PipelineName = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)
]
StageName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
OpportunityName = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)
]
Owner = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Source = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
NextStep = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
CompetitorName = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)
]
Notes = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]
Probability = Annotated[int, Field(ge=0, le=100, strict=True)]
RateBp = Annotated[int, Field(ge=0, le=10_000, strict=True)]


def _iso_date(value: Any) -> Any:
    # Pydantic would also read a bare number as a Unix time, which the API does not offer.
    if isinstance(value, str) and not _ISO_DAY.match(value):
        raise ValueError("expected an ISO 8601 date, e.g. 2026-01-31")
    return value


_ISO_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# A day in a query string: YYYY-MM-DD, nothing else.
QueryDate = Annotated[date, BeforeValidator(_iso_date)]
# Dates the API accepts: a century either side is plenty for sales and keeps SQL in range.
SalesDate = Annotated[date, Field(ge=date(1970, 1, 1), le=date(2200, 12, 31))]


# -- pipelines -------------------------------------------------------------------------------


class StageInput(InputSchema):
    name: StageName
    probability: Probability | None = Field(
        default=None,
        description="Win probability in percent; `won` stages are 100 and `lost` stages 0 "
        "(the default for those types).",
    )
    type: StageType = "open"

    @model_validator(mode="after")
    def _probability_fits(self) -> StageInput:
        fixed = {"won": 100, "lost": 0}.get(self.type)
        if fixed is not None:
            if self.probability not in (None, fixed):
                raise ValueError(f"a {self.type} stage has probability {fixed}")
            self.probability = fixed
        elif self.probability is None:
            raise ValueError("an open stage needs a probability")
        return self


class StageCreate(StageInput):
    position: int | None = Field(
        default=None, ge=0, le=MAX_STAGES, strict=True,
        description="0-based place among the stages; default: last.",
    )  # fmt: skip


class StageUpdate(PatchSchema):
    """Rename, re-weigh or move a stage. Its type can change only while it holds no
    opportunities."""

    not_nullable = frozenset({"name", "probability", "type", "position"})

    name: StageName | None = None
    probability: Probability | None = None
    type: StageType | None = None
    position: int | None = Field(default=None, ge=0, le=MAX_STAGES, strict=True)


class StageOrder(InputSchema):
    stage_ids: list[uuid.UUID] = Field(
        min_length=1, max_length=MAX_STAGES, description="Every stage of the pipeline, in order."
    )


class PipelineCreate(InputSchema):
    name: PipelineName
    stages: list[StageInput] = Field(min_length=1, max_length=MAX_STAGES)
    is_default: bool = Field(default=False, description="Make it the workspace's default.")

    @model_validator(mode="after")
    def _has_open_stage(self) -> PipelineCreate:
        if not any(stage.type == "open" for stage in self.stages):
            raise ValueError("a pipeline needs at least one open stage")
        names = [stage.name.casefold() for stage in self.stages]
        if len(names) != len(set(names)):
            raise ValueError("stage names must be unique within the pipeline")
        return self


class PipelineUpdate(PatchSchema):
    not_nullable = frozenset({"name", "is_default"})

    name: PipelineName | None = None
    is_default: Literal[True] | None = Field(
        default=None, description="`true` makes it the default (the previous one stops being)."
    )


class Stage(Schema):
    id: uuid.UUID
    name: str
    position: int
    probability: int
    type: StageType


class Pipeline(Schema):
    id: uuid.UUID
    name: str
    is_default: bool
    stages: list[Stage] = Field(description="In order.")
    created_at: UTCDateTime
    updated_at: UTCDateTime
    version: int


# -- opportunities ---------------------------------------------------------------------------


class CompetitorInput(InputSchema):
    name: CompetitorName
    notes: Notes | None = None
    status: CompetitorStatus = Field(
        default="active",
        description="`active`, `eliminated` (out of the running) or `selected` (the customer "
        "chose them).",
    )


def _unique_competitors(items: list[CompetitorInput] | None) -> list[CompetitorInput] | None:
    if items is None:
        return None
    names = [item.name.casefold() for item in items]
    if len(names) != len(set(names)):
        raise ValueError("each competitor may appear once")
    return items


Competitors = Annotated[
    list[CompetitorInput],
    Field(max_length=MAX_COMPETITORS),
    AfterValidator(_unique_competitors),
]


class OpportunityCreate(InputSchema):
    name: OpportunityName
    contact_id: uuid.UUID | None = None
    account_id: uuid.UUID | None = None
    pipeline_id: uuid.UUID | None = Field(default=None, description="Default: the default one.")
    stage_id: uuid.UUID | None = Field(
        default=None, description="A stage of the pipeline; default: its first open stage."
    )
    amount: Money = Field(description="The deal's value; not negative.")
    expected_close_date: SalesDate = Field(
        description="Not before the day the opportunity is created while it is open."
    )
    owner: Owner | None = None
    source: Source | None = None
    next_step: NextStep | None = None
    loss_reason: Reason | None = Field(default=None, description="Required in a lost stage.")
    competitors: Competitors = Field(default_factory=list)
    attributes: Attributes = Field(default_factory=dict)
    external_ids: ExternalIds = Field(default_factory=dict)

    @model_validator(mode="after")
    def _checks(self) -> OpportunityCreate:
        if self.contact_id is None and self.account_id is None:
            raise ValueError("an opportunity needs a contact_id, an account_id or both")
        return self


class OpportunityUpdate(PatchSchema):
    """Merge patch. Changing ``stage_id`` is a stage move (recorded in the history, like
    ``POST /stage``); ``pipeline_id`` changes only together with a ``stage_id`` of it.
    ``competitors`` replaces the whole list."""

    not_nullable = frozenset(
        {"name", "pipeline_id", "stage_id", "amount", "expected_close_date", "competitors"}
    )

    name: OpportunityName | None = None
    contact_id: uuid.UUID | None = None
    account_id: uuid.UUID | None = None
    pipeline_id: uuid.UUID | None = None
    stage_id: uuid.UUID | None = None
    amount: Money | None = None
    expected_close_date: SalesDate | None = None
    owner: Owner | None = None
    source: Source | None = None
    next_step: NextStep | None = None
    loss_reason: Reason | None = None
    competitors: Competitors | None = None
    attributes: dict[str, Any] | None = None
    external_ids: dict[SystemName, ExternalIdValue | None] | None = None


class StageMove(InputSchema):
    stage_id: uuid.UUID = Field(description="A stage of the opportunity's pipeline.")
    loss_reason: Reason | None = Field(
        default=None, description="Why the deal was lost: required for a lost stage."
    )


class Competitor(Schema):
    name: str
    notes: str | None
    status: CompetitorStatus


class Opportunity(Schema):
    id: uuid.UUID
    name: str
    contact_id: uuid.UUID | None
    account_id: uuid.UUID | None
    pipeline_id: uuid.UUID
    stage_id: uuid.UUID
    stage_name: str
    probability: int = Field(description="The stage's win probability, in percent.")
    status: OpportunityStatus = Field(description="Follows the stage's type.")
    amount: Money
    weighted_amount: Money = Field(description="amount x probability, rounded half up.")
    expected_close_date: date
    owner: str | None
    source: str | None
    next_step: str | None
    loss_reason: str | None
    competitors: list[Competitor]
    closed_at: UTCDateTime | None = Field(description="When it was won or lost.")
    stage_entered_at: UTCDateTime
    attributes: dict[str, Any]
    external_ids: dict[str, str]
    created_at: UTCDateTime
    updated_at: UTCDateTime
    version: int


class StageChange(Schema):
    id: uuid.UUID
    opportunity_id: uuid.UUID
    from_stage_id: uuid.UUID | None = Field(description="Null for the stage it was created in.")
    from_stage_name: str | None
    from_status: OpportunityStatus | None
    to_stage_id: uuid.UUID | None = Field(description="Null once the stage was deleted.")
    to_stage_name: str
    to_status: OpportunityStatus
    changed_at: UTCDateTime
    changed_by: uuid.UUID | None = Field(description="The API key that made the change.")
    seconds_in_previous_stage: int | None
    loss_reason: str | None


# -- forecast --------------------------------------------------------------------------------


class ForecastFigures(Schema):
    currency: str
    open_count: int
    open_amount: Money = Field(description="Open deals expected to close in the range.")
    weighted_amount: Money = Field(description="Sum of amount x stage probability.")
    won_count: int
    won_amount: Money = Field(description="Deals won in the range.")
    lost_count: int
    lost_amount: Money


class ForecastGroupRow(Schema):
    key: str | None = Field(
        description="The owner, the stage id or the month (YYYY-MM); null for no owner, and "
        "for the single group when not grouped."
    )
    label: str | None = Field(description="The stage's name when grouped by stage.")
    by_currency: list[ForecastFigures] = Field(description="Never added across currencies.")


class Forecast(Schema):
    """Open and weighted pipeline by expected close date, won and lost by close date."""

    pipeline_id: uuid.UUID | None
    from_date: date | None
    to_date: date | None
    group_by: ForecastGroup | None
    groups: list[ForecastGroupRow]


# -- analytics -------------------------------------------------------------------------------


class StageAnalytics(Schema):
    stage_id: uuid.UUID
    name: str
    type: StageType
    position: int
    reached: int = Field(description="Opportunities that reached this stage or a later one.")
    conversion_to_next: str | None = Field(
        description="Share (0-1, 4 decimals) of those that reached the next open or won stage."
    )
    conversion_to_won: str | None = Field(description="Share (0-1) of those that were won.")
    average_seconds: int | None = Field(description="Average completed stay in the stage.")
    median_seconds: int | None


class Ranked(Schema):
    reason: str
    count: int


class CompetitorRecord(Schema):
    name: str
    won: int = Field(description="Deals won where the competitor took part.")
    lost: int
    open: int


class PipelineAnalytics(Schema):
    """Over the opportunities of the pipeline created in the range."""

    pipeline_id: uuid.UUID
    from_date: date | None
    to_date: date | None
    opportunities: int
    won: int
    lost: int
    win_rate: str | None = Field(description="won / (won + lost), 4 decimals.")
    stages: list[StageAnalytics]
    loss_reasons: list[Ranked] = Field(description="Most frequent first.")
    competitors: list[CompetitorRecord]


# -- targets and commission ------------------------------------------------------------------


class SalesTargetCreate(InputSchema):
    owner: Owner
    period_start: SalesDate
    period_end: SalesDate = Field(description="Inclusive.")
    amount: Money

    @model_validator(mode="after")
    def _period(self) -> SalesTargetCreate:
        if self.period_end < self.period_start:
            raise ValueError("period_end is before period_start")
        return self


class SalesTargetUpdate(PatchSchema):
    not_nullable = frozenset({"owner", "period_start", "period_end", "amount"})

    owner: Owner | None = None
    period_start: SalesDate | None = None
    period_end: SalesDate | None = None
    amount: Money | None = None


class SalesTarget(Schema):
    id: uuid.UUID
    owner: str
    period_start: date
    period_end: date
    amount: Money
    won: Money = Field(
        description="Won by the owner in the period, in the target's currency (close date in "
        "the workspace's time zone)."
    )
    attainment: str = Field(description="won / amount, 4 decimals (1.0000 = on target).")
    created_at: UTCDateTime
    updated_at: UTCDateTime
    version: int


class Tier(InputSchema):
    above_percent: int = Field(
        ge=1, le=1000, strict=True,
        description="From this share of the target (100 = the target itself).",
    )  # fmt: skip
    rate_bp: RateBp


def _tiers_ascending(tiers: list[Tier] | None) -> None:
    if tiers is None:
        return
    steps = [tier.above_percent for tier in tiers]
    if steps != sorted(set(steps)):
        raise ValueError("tiers must have distinct above_percent values in ascending order")


class CommissionRuleCreate(InputSchema):
    name: PipelineName
    pipeline_id: uuid.UUID | None = Field(default=None, description="Null: every pipeline.")
    owner: Owner | None = Field(default=None, description="Null: every owner.")
    rate_bp: RateBp = Field(description="Basis points of the won amount (500 = 5%).")
    tiers: list[Tier] = Field(default_factory=list, max_length=10)

    @model_validator(mode="after")
    def _checks(self) -> CommissionRuleCreate:
        _tiers_ascending(self.tiers)
        return self


class CommissionRuleUpdate(PatchSchema):
    not_nullable = frozenset({"name", "rate_bp", "tiers"})

    name: PipelineName | None = None
    pipeline_id: uuid.UUID | None = None
    owner: Owner | None = None
    rate_bp: RateBp | None = None
    tiers: list[Tier] | None = Field(default=None, max_length=10)

    @model_validator(mode="after")
    def _checks(self) -> CommissionRuleUpdate:
        _tiers_ascending(self.tiers)
        return self


class TierOut(Schema):
    above_percent: int
    rate_bp: int


class CommissionRule(Schema):
    id: uuid.UUID
    name: str
    pipeline_id: uuid.UUID | None
    owner: str | None
    rate_bp: int
    tiers: list[TierOut]
    created_at: UTCDateTime
    updated_at: UTCDateTime
    version: int


class CommissionDeal(Schema):
    opportunity_id: uuid.UUID
    name: str
    pipeline_id: uuid.UUID
    closed_at: UTCDateTime
    amount: Money
    rule_id: uuid.UUID | None = Field(description="Null: no rule applies, no commission.")
    commission: Money


class CommissionStatement(Schema):
    owner: str
    currency: str
    won_amount: Money
    target: Money | None = Field(
        description="The owner's targets in this currency lying within the range; tiers "
        "apply against it."
    )
    commission: Money
    deals: list[CommissionDeal] = Field(description="In order of closing.")


class Commissions(Schema):
    from_date: date
    to_date: date
    data: list[CommissionStatement] = Field(description="Per owner and currency.")


class AmountRange(InputSchema):
    """An amount range filter: amounts are compared within one currency only."""

    currency: Currency | None = None
    amount_min: Annotated[Decimal, Field(ge=0, lt=Decimal("1e15"))] | None = None
    amount_max: Annotated[Decimal, Field(ge=0, lt=Decimal("1e15"))] | None = None


class ForecastGrouping(InputSchema):
    group_by: ForecastGroup | None = None
