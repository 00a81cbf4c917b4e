"""Sales in GraphQL: pipelines, opportunities (with history and competitors), leads,
targets, commission, forecast and analytics; the same services as REST."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import date, datetime
from typing import TYPE_CHECKING, Annotated, Any, cast

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from app.auth.scopes import Scope
from app.graphql.common import ExternalIdInput, ExternalIdType, MoneyInput, MoneyType
from app.graphql.context import Context
from app.graphql.dataloaders.account_by_id import account_by_id
from app.graphql.dataloaders.contact_by_id import contact_by_id
from app.graphql.dataloaders.opportunity_history_by_opportunity import (
    opportunity_history_by_opportunity,
)
from app.graphql.relay import Connection, Edge, page_of, page_size
from app.kit.pagination import _encode
from app.kit.schemas import parse_input
from app.lead import schemas as lead_schemas
from app.lead.service import LeadQuery
from app.lead.service import lead as lead_service
from app.models import Lead, Opportunity, OpportunityStageChange, Pipeline
from app.opportunity import schemas
from app.opportunity.analytics import analytics as sales_analytics
from app.opportunity.pipelines import pipeline as pipeline_service
from app.opportunity.service import OpportunityQuery
from app.opportunity.service import opportunity as opportunity_service
from app.opportunity.targets import commission as commission_service
from app.opportunity.targets import sales_target as target_service

if TYPE_CHECKING:
    from app.account.graphql import AccountType
    from app.contact.graphql import ContactType


def _money(value: Any) -> MoneyType:
    return MoneyType.from_money(value)


# -- output types ----------------------------------------------------------------------------


@strawberry.type(name="PipelineStage")
class StageType:
    id: uuid.UUID
    name: str
    position: int
    probability: int
    type: str


@strawberry.type(name="Pipeline")
class PipelineType:
    id: uuid.UUID
    name: str
    is_default: bool
    stages: list[StageType]
    created_at: datetime
    updated_at: datetime
    version: int

    @classmethod
    def from_model(cls, record: Pipeline) -> PipelineType:
        data = pipeline_service.to_schema(record)
        return cls(
            id=data.id,
            name=data.name,
            is_default=data.is_default,
            stages=[StageType(**stage.model_dump()) for stage in data.stages],
            created_at=data.created_at,
            updated_at=data.updated_at,
            version=data.version,
        )


@strawberry.type(name="Competitor")
class CompetitorType:
    name: str
    notes: str | None
    status: str


@strawberry.type(name="StageChange")
class StageChangeType:
    id: uuid.UUID
    opportunity_id: uuid.UUID
    from_stage_id: uuid.UUID | None
    from_stage_name: str | None
    from_status: str | None
    to_stage_id: uuid.UUID | None
    to_stage_name: str
    to_status: str
    changed_at: datetime
    changed_by: uuid.UUID | None
    seconds_in_previous_stage: int | None
    loss_reason: str | None

    @classmethod
    def from_model(cls, record: OpportunityStageChange) -> StageChangeType:
        return cls(**opportunity_service.change_to_schema(record).model_dump())


@strawberry.type(name="Opportunity")
class OpportunityType:
    id: uuid.UUID
    name: str
    contact_id: uuid.UUID | None
    account_id: uuid.UUID | None
    pipeline_id: uuid.UUID
    stage_id: uuid.UUID
    stage_name: str
    probability: int
    status: str
    amount: MoneyType
    weighted_amount: MoneyType
    expected_close_date: date
    owner: str | None
    source: str | None
    next_step: str | None
    loss_reason: str | None
    competitors: list[CompetitorType]
    closed_at: datetime | None
    stage_entered_at: datetime
    attributes: JSON
    external_ids: list[ExternalIdType]
    created_at: datetime
    updated_at: datetime
    version: int

    @strawberry.field(description="Stage changes, oldest first (the first is its creation).")
    async def history(self, info: Info[Context, None]) -> list[StageChangeType]:
        rows = await info.context.loaders.get(opportunity_history_by_opportunity).load(self.id)
        return [StageChangeType.from_model(row) for row in rows]

    @strawberry.field(description="The contact, if any.")
    async def contact(
        self, info: Info[Context, None]
    ) -> Annotated[ContactType, strawberry.lazy("app.contact.graphql")] | None:
        from app.contact.graphql import ContactType

        if self.contact_id is None:
            return None
        record = await info.context.loaders.get(contact_by_id).load(self.contact_id)
        return ContactType.from_schema(record) if record is not None else None

    @strawberry.field(description="The account, if any.")
    async def account(
        self, info: Info[Context, None]
    ) -> Annotated[AccountType, strawberry.lazy("app.account.graphql")] | None:
        from app.account.graphql import AccountType

        if self.account_id is None:
            return None
        record = await info.context.loaders.get(account_by_id).load(self.account_id)
        return AccountType.from_model(record) if record is not None else None

    @classmethod
    def from_model(cls, record: Opportunity) -> OpportunityType:
        data = opportunity_service.to_schema(record)
        fields = data.model_dump(
            exclude={"amount", "weighted_amount", "competitors", "attributes", "external_ids"}
        )
        return cls(
            **fields,
            amount=_money(data.amount),
            weighted_amount=_money(data.weighted_amount),
            competitors=[CompetitorType(**c.model_dump()) for c in data.competitors],
            attributes=cast(JSON, data.attributes),
            external_ids=ExternalIdType.from_dict(data.external_ids),
        )


@strawberry.type(name="Lead")
class LeadType:
    id: uuid.UUID
    name: str
    company: str | None
    email: str | None
    phone: str | None
    source: str | None
    status: str
    disqualified_reason: str | None
    score: int | None
    owner: str | None
    attributes: JSON
    converted_at: datetime | None
    converted_contact_id: uuid.UUID | None
    converted_account_id: uuid.UUID | None
    converted_opportunity_id: uuid.UUID | None
    created_at: datetime
    updated_at: datetime
    version: int

    @classmethod
    def from_schema(cls, data: lead_schemas.Lead) -> LeadType:
        fields = data.model_dump(exclude={"attributes"})
        return cls(**fields, attributes=cast(JSON, data.attributes))

    @classmethod
    def from_model(cls, record: Lead) -> LeadType:
        return cls.from_schema(lead_service.to_schema(record))


@strawberry.type(name="LeadConversion")
class LeadConversionType:
    lead: LeadType
    contact_id: uuid.UUID
    contact_created: bool
    account_id: uuid.UUID | None
    account_created: bool
    opportunity_id: uuid.UUID | None


@strawberry.type(name="SalesTarget")
class SalesTargetType:
    id: uuid.UUID
    owner: str
    period_start: date
    period_end: date
    amount: MoneyType
    won: MoneyType
    attainment: str = strawberry.field(description="won / amount, 4 decimals.")
    created_at: datetime
    updated_at: datetime
    version: int

    @classmethod
    def from_schema(cls, data: schemas.SalesTarget) -> SalesTargetType:
        fields = data.model_dump(exclude={"amount", "won"})
        return cls(**fields, amount=_money(data.amount), won=_money(data.won))


@strawberry.type(name="CommissionTier")
class TierType:
    above_percent: int
    rate_bp: int


@strawberry.type(name="CommissionRule")
class CommissionRuleType:
    id: uuid.UUID
    name: str
    pipeline_id: uuid.UUID | None
    owner: str | None
    rate_bp: int
    tiers: list[TierType]
    created_at: datetime
    updated_at: datetime
    version: int

    @classmethod
    def from_schema(cls, data: schemas.CommissionRule) -> CommissionRuleType:
        fields = data.model_dump(exclude={"tiers"})
        return cls(**fields, tiers=[TierType(**tier.model_dump()) for tier in data.tiers])


@strawberry.type(name="CommissionDeal")
class CommissionDealType:
    opportunity_id: uuid.UUID
    name: str
    pipeline_id: uuid.UUID
    closed_at: datetime
    amount: MoneyType
    rule_id: uuid.UUID | None
    commission: MoneyType


@strawberry.type(name="CommissionStatement")
class CommissionStatementType:
    owner: str
    currency: str
    won_amount: MoneyType
    target: MoneyType | None
    commission: MoneyType
    deals: list[CommissionDealType]

    @classmethod
    def from_schema(cls, data: schemas.CommissionStatement) -> CommissionStatementType:
        return cls(
            owner=data.owner,
            currency=data.currency,
            won_amount=_money(data.won_amount),
            target=_money(data.target) if data.target is not None else None,
            commission=_money(data.commission),
            deals=[
                CommissionDealType(
                    **deal.model_dump(exclude={"amount", "commission"}),
                    amount=_money(deal.amount),
                    commission=_money(deal.commission),
                )
                for deal in data.deals
            ],
        )


@strawberry.type(name="ForecastFigures")
class ForecastFiguresType:
    currency: str
    open_count: int
    open_amount: MoneyType
    weighted_amount: MoneyType
    won_count: int
    won_amount: MoneyType
    lost_count: int
    lost_amount: MoneyType


@strawberry.type(name="ForecastGroup")
class ForecastGroupType:
    key: str | None
    label: str | None
    by_currency: list[ForecastFiguresType]


@strawberry.type(name="Forecast")
class ForecastType:
    groups: list[ForecastGroupType]

    @classmethod
    def from_schema(cls, data: schemas.Forecast) -> ForecastType:
        return cls(
            groups=[
                ForecastGroupType(
                    key=group.key,
                    label=group.label,
                    by_currency=[
                        ForecastFiguresType(
                            currency=item.currency,
                            open_count=item.open_count,
                            open_amount=_money(item.open_amount),
                            weighted_amount=_money(item.weighted_amount),
                            won_count=item.won_count,
                            won_amount=_money(item.won_amount),
                            lost_count=item.lost_count,
                            lost_amount=_money(item.lost_amount),
                        )
                        for item in group.by_currency
                    ],
                )
                for group in data.groups
            ]
        )


@strawberry.type(name="StageAnalytics")
class StageAnalyticsType:
    stage_id: uuid.UUID
    name: str
    type: str
    position: int
    reached: int
    conversion_to_next: str | None
    conversion_to_won: str | None
    average_seconds: int | None
    median_seconds: int | None


@strawberry.type(name="LossReasonCount")
class RankedType:
    reason: str
    count: int


@strawberry.type(name="CompetitorRecord")
class CompetitorRecordType:
    name: str
    won: int
    lost: int
    open: int


@strawberry.type(name="PipelineAnalytics")
class PipelineAnalyticsType:
    pipeline_id: uuid.UUID
    opportunities: int
    won: int
    lost: int
    win_rate: str | None
    stages: list[StageAnalyticsType]
    loss_reasons: list[RankedType]
    competitors: list[CompetitorRecordType]

    @classmethod
    def from_schema(cls, data: schemas.PipelineAnalytics) -> PipelineAnalyticsType:
        return cls(
            pipeline_id=data.pipeline_id,
            opportunities=data.opportunities,
            won=data.won,
            lost=data.lost,
            win_rate=data.win_rate,
            stages=[StageAnalyticsType(**stage.model_dump()) for stage in data.stages],
            loss_reasons=[RankedType(**item.model_dump()) for item in data.loss_reasons],
            competitors=[CompetitorRecordType(**item.model_dump()) for item in data.competitors],
        )


# -- inputs ----------------------------------------------------------------------------------


@strawberry.input
class StageInput:
    name: str
    probability: int | None = strawberry.UNSET
    type: str | None = strawberry.UNSET


@strawberry.input
class PipelineCreateInput:
    name: str
    stages: list[StageInput]
    is_default: bool | None = strawberry.UNSET


@strawberry.input
class PipelineUpdateInput:
    name: str | None = strawberry.UNSET
    is_default: bool | None = strawberry.UNSET


@strawberry.input
class StageCreateInput:
    name: str
    probability: int | None = strawberry.UNSET
    type: str | None = strawberry.UNSET
    position: int | None = strawberry.UNSET


@strawberry.input
class StageUpdateInput:
    name: str | None = strawberry.UNSET
    probability: int | None = strawberry.UNSET
    type: str | None = strawberry.UNSET
    position: int | None = strawberry.UNSET


@strawberry.input
class CompetitorInput:
    name: str
    notes: str | None = strawberry.UNSET
    status: str | None = strawberry.UNSET


@strawberry.input(description="Field names and rules are those of the REST opportunity.")
class OpportunityCreateInput:
    name: str
    amount: MoneyInput
    expected_close_date: date
    contact_id: uuid.UUID | None = strawberry.UNSET
    account_id: uuid.UUID | None = strawberry.UNSET
    pipeline_id: uuid.UUID | None = strawberry.UNSET
    stage_id: uuid.UUID | None = strawberry.UNSET
    owner: str | None = strawberry.UNSET
    source: str | None = strawberry.UNSET
    next_step: str | None = strawberry.UNSET
    loss_reason: str | None = strawberry.UNSET
    competitors: list[CompetitorInput] | None = strawberry.UNSET
    attributes: JSON | None = strawberry.UNSET
    external_ids: list[ExternalIdInput] | None = strawberry.UNSET


@strawberry.input(description="Merge patch; a new stageId is a recorded stage move.")
class OpportunityUpdateInput:
    name: str | None = strawberry.UNSET
    amount: MoneyInput | None = strawberry.UNSET
    expected_close_date: date | None = strawberry.UNSET
    contact_id: uuid.UUID | None = strawberry.UNSET
    account_id: uuid.UUID | None = strawberry.UNSET
    pipeline_id: uuid.UUID | None = strawberry.UNSET
    stage_id: uuid.UUID | None = strawberry.UNSET
    owner: str | None = strawberry.UNSET
    source: str | None = strawberry.UNSET
    next_step: str | None = strawberry.UNSET
    loss_reason: str | None = strawberry.UNSET
    competitors: list[CompetitorInput] | None = strawberry.UNSET
    attributes: JSON | None = strawberry.UNSET
    external_ids: list[ExternalIdInput] | None = strawberry.UNSET


@strawberry.input
class OpportunityFilter:
    pipeline_id: uuid.UUID | None = None
    stage_ids: list[uuid.UUID] | None = None
    statuses: list[str] | None = None
    owner: str | None = None
    contact_id: uuid.UUID | None = None
    account_id: uuid.UUID | None = None
    currency: str | None = None
    amount_min: str | None = None
    amount_max: str | None = None
    close_from: date | None = None
    close_to: date | None = None


@strawberry.input
class LeadCreateInput:
    name: str
    company: str | None = strawberry.UNSET
    email: str | None = strawberry.UNSET
    phone: str | None = strawberry.UNSET
    source: str | None = strawberry.UNSET
    status: str | None = strawberry.UNSET
    disqualified_reason: str | None = strawberry.UNSET
    score: int | None = strawberry.UNSET
    owner: str | None = strawberry.UNSET
    attributes: JSON | None = strawberry.UNSET


@strawberry.input
class LeadUpdateInput:
    name: str | None = strawberry.UNSET
    company: str | None = strawberry.UNSET
    email: str | None = strawberry.UNSET
    phone: str | None = strawberry.UNSET
    source: str | None = strawberry.UNSET
    status: str | None = strawberry.UNSET
    disqualified_reason: str | None = strawberry.UNSET
    score: int | None = strawberry.UNSET
    owner: str | None = strawberry.UNSET
    attributes: JSON | None = strawberry.UNSET


@strawberry.input
class LeadOpportunityInput:
    amount: MoneyInput
    expected_close_date: date
    name: str | None = strawberry.UNSET
    pipeline_id: uuid.UUID | None = strawberry.UNSET
    stage_id: uuid.UUID | None = strawberry.UNSET
    owner: str | None = strawberry.UNSET


@strawberry.input
class LeadConvertInput:
    contact_id: uuid.UUID | None = strawberry.UNSET
    account_id: uuid.UUID | None = strawberry.UNSET
    opportunity: LeadOpportunityInput | None = strawberry.UNSET


@strawberry.input
class SalesTargetCreateInput:
    owner: str
    period_start: date
    period_end: date
    amount: MoneyInput


@strawberry.input
class SalesTargetUpdateInput:
    owner: str | None = strawberry.UNSET
    period_start: date | None = strawberry.UNSET
    period_end: date | None = strawberry.UNSET
    amount: MoneyInput | None = strawberry.UNSET


@strawberry.input
class TierInput:
    above_percent: int
    rate_bp: int


@strawberry.input
class CommissionRuleCreateInput:
    name: str
    rate_bp: int
    pipeline_id: uuid.UUID | None = strawberry.UNSET
    owner: str | None = strawberry.UNSET
    tiers: list[TierInput] | None = strawberry.UNSET


@strawberry.input
class CommissionRuleUpdateInput:
    name: str | None = strawberry.UNSET
    rate_bp: int | None = strawberry.UNSET
    pipeline_id: uuid.UUID | None = strawberry.UNSET
    owner: str | None = strawberry.UNSET
    tiers: list[TierInput] | None = strawberry.UNSET


def _plain(value: Any) -> Any:
    """A Strawberry input as the JSON the REST endpoint would take (UNSET members left out)."""
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        data = {
            name: _plain(item) for name, item in vars(value).items() if item is not strawberry.UNSET
        }
        if isinstance(value, (OpportunityCreateInput, OpportunityUpdateInput)) and isinstance(
            data.get("external_ids"), list
        ):
            data["external_ids"] = {item["system"]: item["value"] for item in data["external_ids"]}
        return data
    if isinstance(value, (date, uuid.UUID)):
        return str(value) if isinstance(value, uuid.UUID) else value.isoformat()
    return value


def _input(model: type[Any], value: Any) -> Any:
    return parse_input(model, _plain(value))


def _cursor(record: Opportunity, sort: str | None) -> str:
    return opportunity_service.cursor_of(record, sort)


def connection(
    rows: list[Opportunity], next_cursor: str | None, sort: str | None
) -> Connection[OpportunityType]:
    """A Relay connection of a page from ``OpportunityService.find``."""
    edges = [Edge(node=OpportunityType.from_model(row), cursor=_cursor(row, sort)) for row in rows]
    return page_of(edges, next_cursor)


# -- queries ---------------------------------------------------------------------------------


@strawberry.type
class SalesRootQuery:
    @strawberry.field(description="Every pipeline with its stages, the default first.")
    async def pipelines(self, info: Info[Context, None]) -> list[PipelineType] | None:
        auth = info.context.require(Scope.opportunities_read)
        rows = await info.context.read(lambda session: pipeline_service.list(session, auth))
        return [PipelineType.from_model(row) for row in rows]

    @strawberry.field(description="One pipeline.")
    async def pipeline(self, info: Info[Context, None], id: uuid.UUID) -> PipelineType | None:
        auth = info.context.require(Scope.opportunities_read)
        row = await info.context.read(lambda session: pipeline_service.get(session, auth, id))
        return PipelineType.from_model(row)

    @strawberry.field(description="One opportunity (scope: opportunities:read).")
    async def opportunity(self, info: Info[Context, None], id: uuid.UUID) -> OpportunityType | None:
        auth = info.context.require(Scope.opportunities_read)
        row = await info.context.read(lambda session: opportunity_service.get(session, auth, id))
        return OpportunityType.from_model(row)

    @strawberry.field(
        description="Opportunities, most recently updated first (sort: amount, "
        "expected_close_date, updated_at, created_at; `-` for descending)."
    )
    async def opportunities(
        self,
        info: Info[Context, None],
        first: int | None = None,
        after: str | None = None,
        filter: OpportunityFilter | None = None,
        sort: str | None = None,
    ) -> Connection[OpportunityType] | None:
        auth = info.context.require(Scope.opportunities_read)
        criteria = filter or OpportunityFilter()
        raw = {
            "currency": criteria.currency,
            "amount_min": criteria.amount_min,
            "amount_max": criteria.amount_max,
        }
        amounts = _input(schemas.AmountRange, {k: v for k, v in raw.items() if v is not None})
        query = OpportunityQuery(
            pipeline_id=criteria.pipeline_id,
            stage_ids=criteria.stage_ids or (),
            statuses=criteria.statuses or (),
            owner=criteria.owner,
            contact_id=criteria.contact_id,
            account_id=criteria.account_id,
            currency=amounts.currency,
            amount_min=amounts.amount_min,
            amount_max=amounts.amount_max,
            close_from=criteria.close_from,
            close_to=criteria.close_to,
        )
        limit = page_size(first)
        rows, next_cursor = await info.context.read(
            lambda session: opportunity_service.find(
                session, auth, query, limit=limit, cursor=after, sort=sort
            )
        )
        return connection(rows, next_cursor, sort)

    @strawberry.field(description="Forecast per group and currency, as REST's.")
    async def forecast(
        self,
        info: Info[Context, None],
        pipeline_id: uuid.UUID | None = None,
        from_date: date | None = None,
        to_date: date | None = None,
        group_by: str | None = None,
        owner: str | None = None,
    ) -> ForecastType | None:
        auth = info.context.require(Scope.opportunities_read)
        checked = _input(schemas.ForecastGrouping, {"group_by": group_by} if group_by else {})
        result = await info.context.read(
            lambda session: sales_analytics.forecast(
                session,
                auth,
                pipeline_id=pipeline_id,
                from_date=from_date,
                to_date=to_date,
                group_by=checked.group_by,
                owner=owner,
            )
        )
        return ForecastType.from_schema(result)

    @strawberry.field(description="Conversion, time in stage, win rate, loss reasons, rivals.")
    async def pipeline_analytics(
        self,
        info: Info[Context, None],
        pipeline_id: uuid.UUID,
        from_date: date | None = None,
        to_date: date | None = None,
    ) -> PipelineAnalyticsType | None:
        auth = info.context.require(Scope.opportunities_read)
        result = await info.context.read(
            lambda session: sales_analytics.pipeline_analytics(
                session, auth, pipeline_id, from_date=from_date, to_date=to_date
            )
        )
        return PipelineAnalyticsType.from_schema(result)

    @strawberry.field(description="One lead.")
    async def lead(self, info: Info[Context, None], id: uuid.UUID) -> LeadType | None:
        auth = info.context.require(Scope.opportunities_read)
        row = await info.context.read(lambda session: lead_service.get(session, auth, id))
        return LeadType.from_model(row)

    @strawberry.field(description="Leads, newest first.")
    async def leads(
        self,
        info: Info[Context, None],
        first: int | None = None,
        after: str | None = None,
        statuses: list[str] | None = None,
        owner: str | None = None,
    ) -> Connection[LeadType] | None:
        auth = info.context.require(Scope.opportunities_read)
        limit = page_size(first)
        query = LeadQuery(statuses=statuses or (), owner=owner)
        rows, next_cursor = await info.context.read(
            lambda session: lead_service.find(
                session, auth, query, limit=limit, cursor=after, sort=None
            )
        )
        edges = [Edge(node=LeadType.from_model(row), cursor=str(row.id)) for row in rows]
        return page_of(edges, next_cursor)

    @strawberry.field(description="Sales targets with attainment, by period.")
    async def sales_targets(
        self,
        info: Info[Context, None],
        owner: str | None = None,
        from_date: date | None = None,
        to_date: date | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[SalesTargetType] | None:
        auth = info.context.require(Scope.opportunities_read)
        limit = page_size(first)
        rows, next_cursor = await info.context.read(
            lambda session: target_service.find(
                session,
                auth,
                owner=owner,
                from_date=from_date,
                to_date=to_date,
                limit=limit,
                cursor=after,
                sort=None,
            )
        )
        edges = [
            Edge(
                node=SalesTargetType.from_schema(row),
                cursor=_encode(["period_start", row.period_start.isoformat(), str(row.id)]),
            )
            for row in rows
        ]
        return page_of(edges, next_cursor)

    @strawberry.field(description="Every commission rule.")
    async def commission_rules(self, info: Info[Context, None]) -> list[CommissionRuleType] | None:
        auth = info.context.require(Scope.opportunities_read)
        rows = await info.context.read(lambda session: commission_service.rules(session, auth))
        return [CommissionRuleType.from_schema(commission_service.rule_to_schema(r)) for r in rows]

    @strawberry.field(description="Commission per owner and currency, with the deals counted.")
    async def commissions(
        self,
        info: Info[Context, None],
        from_date: date,
        to_date: date,
        owner: str | None = None,
    ) -> list[CommissionStatementType] | None:
        auth = info.context.require(Scope.opportunities_read)
        result = await info.context.read(
            lambda session: commission_service.statements(
                session, auth, owner=owner, from_date=from_date, to_date=to_date
            )
        )
        return [CommissionStatementType.from_schema(item) for item in result.data]


@strawberry.type
class SalesMutation:
    # Nullable results: a failed mutation reports its error without nulling the others.
    @strawberry.mutation(description="Create a pipeline with its stages.")
    async def create_pipeline(
        self, info: Info[Context, None], input: PipelineCreateInput
    ) -> PipelineType | None:
        auth = info.context.require(Scope.opportunities_write)
        data = _input(schemas.PipelineCreate, input)
        row = await info.context.write(lambda s: pipeline_service.create(s, auth, data))
        return PipelineType.from_model(row)

    @strawberry.mutation(description="Rename a pipeline or make it the default.")
    async def update_pipeline(
        self,
        info: Info[Context, None],
        id: uuid.UUID,
        input: PipelineUpdateInput,
        if_match: str | None = None,
    ) -> PipelineType | None:
        auth = info.context.require(Scope.opportunities_write)
        patch = _input(schemas.PipelineUpdate, input)
        row = await info.context.write(
            lambda s: pipeline_service.update(s, auth, id, patch, if_match=if_match)
        )
        return PipelineType.from_model(row)

    @strawberry.mutation(description="Delete a pipeline without opportunities.")
    async def delete_pipeline(
        self, info: Info[Context, None], id: uuid.UUID, if_match: str | None = None
    ) -> uuid.UUID | None:
        auth = info.context.require(Scope.opportunities_write)
        await info.context.write(lambda s: pipeline_service.delete(s, auth, id, if_match=if_match))
        return id

    @strawberry.mutation(description="Add a stage to a pipeline.")
    async def add_pipeline_stage(
        self,
        info: Info[Context, None],
        pipeline_id: uuid.UUID,
        input: StageCreateInput,
        if_match: str | None = None,
    ) -> PipelineType | None:
        auth = info.context.require(Scope.opportunities_write)
        data = _input(schemas.StageCreate, input)
        row, _ = await info.context.write(
            lambda s: pipeline_service.add_stage(s, auth, pipeline_id, data, if_match=if_match)
        )
        return PipelineType.from_model(row)

    @strawberry.mutation(description="Rename, re-weigh, move or retype a stage.")
    async def update_pipeline_stage(
        self,
        info: Info[Context, None],
        pipeline_id: uuid.UUID,
        stage_id: uuid.UUID,
        input: StageUpdateInput,
        if_match: str | None = None,
    ) -> PipelineType | None:
        auth = info.context.require(Scope.opportunities_write)
        patch = _input(schemas.StageUpdate, input)
        row, _ = await info.context.write(
            lambda s: pipeline_service.update_stage(
                s, auth, pipeline_id, stage_id, patch, if_match=if_match
            )
        )
        return PipelineType.from_model(row)

    @strawberry.mutation(description="Put a pipeline's stages in a new order.")
    async def reorder_pipeline_stages(
        self,
        info: Info[Context, None],
        pipeline_id: uuid.UUID,
        stage_ids: list[uuid.UUID],
        if_match: str | None = None,
    ) -> PipelineType | None:
        auth = info.context.require(Scope.opportunities_write)
        order = _input(schemas.StageOrder, {"stage_ids": [str(i) for i in stage_ids]})
        row = await info.context.write(
            lambda s: pipeline_service.reorder(s, auth, pipeline_id, order, if_match=if_match)
        )
        return PipelineType.from_model(row)

    @strawberry.mutation(description="Delete a stage, moving its opportunities to moveTo.")
    async def delete_pipeline_stage(
        self,
        info: Info[Context, None],
        pipeline_id: uuid.UUID,
        stage_id: uuid.UUID,
        move_to: uuid.UUID | None = None,
        loss_reason: str | None = None,
        if_match: str | None = None,
    ) -> PipelineType | None:
        auth = info.context.require(Scope.opportunities_write)
        row = await info.context.write(
            lambda s: pipeline_service.delete_stage(
                s,
                auth,
                pipeline_id,
                stage_id,
                move_to=move_to,
                loss_reason=loss_reason,
                if_match=if_match,
            )
        )
        return PipelineType.from_model(row)

    @strawberry.mutation(description="Create an opportunity.")
    async def create_opportunity(
        self, info: Info[Context, None], input: OpportunityCreateInput
    ) -> OpportunityType | None:
        auth = info.context.require(Scope.opportunities_write)
        data = _input(schemas.OpportunityCreate, input)
        row = await info.context.write(lambda s: opportunity_service.create(s, auth, data))
        return OpportunityType.from_model(row)

    @strawberry.mutation(description="Change an opportunity (merge-patch semantics).")
    async def update_opportunity(
        self,
        info: Info[Context, None],
        id: uuid.UUID,
        input: OpportunityUpdateInput,
        if_match: str | None = None,
    ) -> OpportunityType | None:
        auth = info.context.require(Scope.opportunities_write)
        patch = _input(schemas.OpportunityUpdate, input)
        row = await info.context.write(
            lambda s: opportunity_service.update(s, auth, id, patch, if_match=if_match)
        )
        return OpportunityType.from_model(row)

    @strawberry.mutation(description="Move an opportunity to another stage (recorded).")
    async def move_opportunity_stage(
        self,
        info: Info[Context, None],
        id: uuid.UUID,
        stage_id: uuid.UUID,
        loss_reason: str | None = None,
        if_match: str | None = None,
    ) -> OpportunityType | None:
        auth = info.context.require(Scope.opportunities_write)
        body: dict[str, Any] = {"stage_id": str(stage_id)}
        if loss_reason is not None:
            body["loss_reason"] = loss_reason
        data = parse_input(schemas.StageMove, body)
        row, _ = await info.context.write(
            lambda s: opportunity_service.move_stage(s, auth, id, data, if_match=if_match)
        )
        return OpportunityType.from_model(row)

    @strawberry.mutation(description="Delete an opportunity with its history.")
    async def delete_opportunity(
        self, info: Info[Context, None], id: uuid.UUID, if_match: str | None = None
    ) -> uuid.UUID | None:
        auth = info.context.require(Scope.opportunities_write)
        await info.context.write(
            lambda s: opportunity_service.delete(s, auth, id, if_match=if_match)
        )
        return id

    @strawberry.mutation(description="Record a lead.")
    async def create_lead(
        self, info: Info[Context, None], input: LeadCreateInput
    ) -> LeadType | None:
        auth = info.context.require(Scope.opportunities_write)
        data = _input(lead_schemas.LeadCreate, input)
        row = await info.context.write(lambda s: lead_service.create(s, auth, data))
        return LeadType.from_model(row)

    @strawberry.mutation(description="Change a lead (merge-patch semantics).")
    async def update_lead(
        self,
        info: Info[Context, None],
        id: uuid.UUID,
        input: LeadUpdateInput,
        if_match: str | None = None,
    ) -> LeadType | None:
        auth = info.context.require(Scope.opportunities_write)
        patch = _input(lead_schemas.LeadUpdate, input)
        row = await info.context.write(
            lambda s: lead_service.update(s, auth, id, patch, if_match=if_match)
        )
        return LeadType.from_model(row)

    @strawberry.mutation(description="Delete a lead.")
    async def delete_lead(
        self, info: Info[Context, None], id: uuid.UUID, if_match: str | None = None
    ) -> uuid.UUID | None:
        auth = info.context.require(Scope.opportunities_write)
        await info.context.write(lambda s: lead_service.delete(s, auth, id, if_match=if_match))
        return id

    @strawberry.mutation(description="Convert a lead into a contact, account and opportunity.")
    async def convert_lead(
        self,
        info: Info[Context, None],
        id: uuid.UUID,
        input: LeadConvertInput | None = None,
        if_match: str | None = None,
    ) -> LeadConversionType | None:
        auth = info.context.require(Scope.opportunities_write)
        data = _input(lead_schemas.LeadConvert, input if input is not None else {})
        result = await info.context.write(
            lambda s: lead_service.convert(s, auth, id, data, if_match=if_match)
        )
        return LeadConversionType(
            lead=LeadType.from_schema(result.lead),
            contact_id=result.contact_id,
            contact_created=result.contact_created,
            account_id=result.account_id,
            account_created=result.account_created,
            opportunity_id=result.opportunity_id,
        )

    @strawberry.mutation(description="Set an owner's target for a period.")
    async def create_sales_target(
        self, info: Info[Context, None], input: SalesTargetCreateInput
    ) -> SalesTargetType | None:
        auth = info.context.require(Scope.opportunities_write)
        data = _input(schemas.SalesTargetCreate, input)
        _, body = await info.context.write(lambda s: target_service.create(s, auth, data))
        return SalesTargetType.from_schema(body)

    @strawberry.mutation(description="Change a target (merge-patch semantics).")
    async def update_sales_target(
        self,
        info: Info[Context, None],
        id: uuid.UUID,
        input: SalesTargetUpdateInput,
        if_match: str | None = None,
    ) -> SalesTargetType | None:
        auth = info.context.require(Scope.opportunities_write)
        patch = _input(schemas.SalesTargetUpdate, input)
        _, body = await info.context.write(
            lambda s: target_service.update(s, auth, id, patch, if_match=if_match)
        )
        return SalesTargetType.from_schema(body)

    @strawberry.mutation(description="Delete a target.")
    async def delete_sales_target(
        self, info: Info[Context, None], id: uuid.UUID, if_match: str | None = None
    ) -> uuid.UUID | None:
        auth = info.context.require(Scope.opportunities_write)
        await info.context.write(lambda s: target_service.delete(s, auth, id, if_match=if_match))
        return id

    @strawberry.mutation(description="Add a commission rule.")
    async def create_commission_rule(
        self, info: Info[Context, None], input: CommissionRuleCreateInput
    ) -> CommissionRuleType | None:
        auth = info.context.require(Scope.opportunities_write)
        data = _input(schemas.CommissionRuleCreate, input)
        row = await info.context.write(lambda s: commission_service.create_rule(s, auth, data))
        return CommissionRuleType.from_schema(commission_service.rule_to_schema(row))

    @strawberry.mutation(description="Change a commission rule (merge-patch semantics).")
    async def update_commission_rule(
        self,
        info: Info[Context, None],
        id: uuid.UUID,
        input: CommissionRuleUpdateInput,
        if_match: str | None = None,
    ) -> CommissionRuleType | None:
        auth = info.context.require(Scope.opportunities_write)
        patch = _input(schemas.CommissionRuleUpdate, input)
        row = await info.context.write(
            lambda s: commission_service.update_rule(s, auth, id, patch, if_match=if_match)
        )
        return CommissionRuleType.from_schema(commission_service.rule_to_schema(row))

    @strawberry.mutation(description="Delete a commission rule.")
    async def delete_commission_rule(
        self, info: Info[Context, None], id: uuid.UUID, if_match: str | None = None
    ) -> uuid.UUID | None:
        auth = info.context.require(Scope.opportunities_write)
        await info.context.write(
            lambda s: commission_service.delete_rule(s, auth, id, if_match=if_match)
        )
        return id


async def contact_opportunities(
    root: ContactType,
    info: Info[Context, None],
    first: int | None = None,
    after: str | None = None,
    statuses: list[str] | None = None,
) -> Connection[OpportunityType] | None:
    """``Contact.opportunities``: the first page comes from a DataLoader (one statement for a
    whole list of contacts); later pages are one query per contact."""
    from app.graphql.dataloaders.opportunities_recent_by_contact import (
        opportunities_recent_by_contact,
    )
    from app.opportunity.service import MAX_RECENT

    auth = info.context.require(Scope.opportunities_read)
    size = page_size(first)
    wanted = tuple(sorted(set(statuses or ())))
    if after is None and size < MAX_RECENT:
        rows = await info.context.loaders.get(opportunities_recent_by_contact).load(
            (root.id, size + 1, wanted)
        )
        page, more = rows[:size], len(rows) > size
        next_cursor = _cursor(page[-1], None) if more else None
    else:
        query = OpportunityQuery(contact_id=root.id, statuses=wanted)
        page, next_cursor = await info.context.read(
            lambda session: opportunity_service.find(
                session, auth, query, limit=size, cursor=after, sort=None
            )
        )
    return connection(page, next_cursor, None)
