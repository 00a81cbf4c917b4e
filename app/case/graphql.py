"""Cases in GraphQL: the same service functions as REST, typed, with DataLoaders for nesting."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import date, datetime
from typing import TYPE_CHECKING, Annotated, Any, TypeVar, cast

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from app.auth.scopes import Scope
from app.case import schemas
from app.case.report import report as report_service
from app.case.service import SORTS, CaseQuery
from app.case.service import case as case_service
from app.case.setup import setup as setup_service
from app.case.setup import to_schema as setup_schema
from app.graphql.common import ExternalIdInput, ExternalIdType, external_ids_dict
from app.graphql.context import Context
from app.graphql.dataloaders.case_comments_by_case import case_comments_by_case
from app.graphql.dataloaders.case_history_by_case import case_history_by_case
from app.graphql.dataloaders.case_metrics_by_case import case_metrics_by_case
from app.graphql.dataloaders.cases_open_by_contact import cases_by_contact
from app.graphql.dataloaders.contact_by_id import contact_by_id
from app.graphql.relay import Connection, Edge, page_of, page_size
from app.kit.pagination import _encode, parse_sort
from app.kit.schemas import parse_input
from app.models import BusinessCalendar, CaseQueue, CaseRoutingRule, SlaPolicy

if TYPE_CHECKING:
    from app.contact.graphql import ContactType

T = TypeVar("T")


def _build(cls: type[T], data: Any, **overrides: Any) -> T:
    """A Strawberry type from a response schema with the same field names."""
    names = [field.name for field in dataclasses.fields(cls) if field.init]  # type: ignore[arg-type]
    values = {name: getattr(data, name) for name in names if name not in overrides}
    return cls(**values, **overrides)


@strawberry.type(name="SlaTarget")
class SlaTargetType:
    due_at: datetime | None
    completed_at: datetime | None
    met: bool | None
    breached: bool
    remaining_business_minutes: float | None


@strawberry.type(name="SlaStatus")
class SlaStatusType:
    policy_id: uuid.UUID | None
    calendar_id: uuid.UUID | None
    paused: bool
    paused_business_minutes: float
    first_response: SlaTargetType
    next_response: SlaTargetType
    resolution: SlaTargetType

    @classmethod
    def from_schema(cls, data: schemas.SlaStatus) -> SlaStatusType:
        return _build(
            cls,
            data,
            first_response=_build(SlaTargetType, data.first_response),
            next_response=_build(SlaTargetType, data.next_response),
            resolution=_build(SlaTargetType, data.resolution),
        )


@strawberry.type(name="CaseComment")
class CaseCommentType:
    id: uuid.UUID
    case_id: uuid.UUID
    body: str
    public: bool
    author: str | None
    api_key_id: uuid.UUID | None
    interaction_id: uuid.UUID | None
    created_at: datetime


@strawberry.type(name="CaseHistoryEntry")
class CaseHistoryEntryType:
    id: uuid.UUID
    case_id: uuid.UUID
    field: str
    from_value: str | None
    to_value: str | None
    reason: str | None
    api_key_id: uuid.UUID | None
    at: datetime


@strawberry.type(name="StatusTime")
class StatusTimeType:
    status: str
    seconds: float
    business_minutes: float | None


@strawberry.type(name="CaseMetrics")
class CaseMetricsType:
    case_id: uuid.UUID
    calendar_id: uuid.UUID | None
    time_in_status: list[StatusTimeType]
    first_response_seconds: float | None
    first_response_business_minutes: float | None
    resolution_seconds: float | None
    resolution_business_minutes: float | None
    reopen_count: int
    status_changes: int
    queue_changes: int
    assignee_changes: int

    @classmethod
    def from_schema(cls, data: schemas.Metrics) -> CaseMetricsType:
        return _build(
            cls, data, time_in_status=[_build(StatusTimeType, row) for row in data.time_in_status]
        )


@strawberry.type(name="Case")
class CaseType:
    id: uuid.UUID
    number: str
    subject: str
    description: str | None
    contact_id: uuid.UUID
    account_id: uuid.UUID | None
    channel: str
    category: str | None
    priority: str
    status: str
    pending_reason: str | None
    allowed_transitions: list[str]
    queue_id: uuid.UUID | None
    assignee: str | None
    routing_rule_id: uuid.UUID | None
    source_interaction_id: uuid.UUID | None
    attributes: JSON
    external_ids: list[ExternalIdType]
    first_response_at: datetime | None
    resolved_at: datetime | None
    closed_at: datetime | None
    reopen_count: int
    first_response_due_at: datetime | None
    resolution_due_at: datetime | None
    sla_status: SlaStatusType
    created_at: datetime
    updated_at: datetime
    version: int

    @strawberry.field(description="The customer (scope: contacts:read).")
    async def contact(
        self, info: Info[Context, None]
    ) -> Annotated[ContactType, strawberry.lazy("app.contact.graphql")] | None:
        from app.contact.graphql import ContactType

        info.context.require(Scope.contacts_read)
        record = await info.context.loaders.get(contact_by_id).load(self.contact_id)
        return ContactType.from_schema(record) if record is not None else None

    @strawberry.field(description="Comments, oldest first.")
    async def comments(self, info: Info[Context, None]) -> list[CaseCommentType]:
        rows = await info.context.loaders.get(case_comments_by_case).load(self.id)
        return [_build(CaseCommentType, row) for row in rows]

    @strawberry.field(description="Status, queue, assignee and priority changes, oldest first.")
    async def history(self, info: Info[Context, None]) -> list[CaseHistoryEntryType]:
        rows = await info.context.loaders.get(case_history_by_case).load(self.id)
        return [_build(CaseHistoryEntryType, row) for row in rows]

    @strawberry.field(description="Time in each status, first response and resolution times.")
    async def metrics(self, info: Info[Context, None]) -> CaseMetricsType | None:
        found = await info.context.loaders.get(case_metrics_by_case).load(self.id)
        return CaseMetricsType.from_schema(found) if found is not None else None

    @classmethod
    def from_schema(cls, data: schemas.Case) -> CaseType:
        return _build(
            cls,
            data,
            attributes=cast(JSON, data.attributes),
            external_ids=ExternalIdType.from_dict(data.external_ids),
            allowed_transitions=list(data.allowed_transitions),
            sla_status=SlaStatusType.from_schema(data.sla),
        )


@strawberry.type(name="CaseQueue")
class CaseQueueType:
    id: uuid.UUID
    name: str
    description: str | None
    members: list[str]
    created_at: datetime
    updated_at: datetime
    version: int


@strawberry.type(name="CaseRoutingRule")
class CaseRoutingRuleType:
    id: uuid.UUID
    name: str
    position: int
    active: bool
    categories: list[str]
    priorities: list[str]
    channels: list[str]
    account_types: list[str]
    lifecycle_stages: list[str]
    subject_keywords: list[str]
    queue_id: uuid.UUID
    assign_mode: str
    assignee: str | None
    created_at: datetime
    updated_at: datetime
    version: int


@strawberry.type(name="BusinessCalendar")
class BusinessCalendarType:
    id: uuid.UUID
    name: str
    time_zone: str
    hours: JSON = strawberry.field(description='{"mon": [["08:30", "12:00"], ...], ...}')
    holidays: list[date]
    created_at: datetime
    updated_at: datetime
    version: int


@strawberry.type(name="SlaPolicy")
class SlaPolicyType:
    id: uuid.UUID
    name: str
    priority: str
    category: str | None
    account_type: str | None
    calendar_id: uuid.UUID
    first_response_minutes: int
    next_response_minutes: int | None
    resolution_minutes: int
    warning_percent: int
    reopen_window_hours: int
    active: bool
    created_at: datetime
    updated_at: datetime
    version: int


@strawberry.type(name="CaseReportRow")
class CaseReportRowType:
    key: str | None
    label: str | None
    created: int
    resolved: int
    backlog: int
    median_first_response_seconds: float | None
    p90_first_response_seconds: float | None
    median_resolution_seconds: float | None
    p90_resolution_seconds: float | None
    sla_evaluated: int
    sla_met: int
    sla_met_rate: float | None
    median_backlog_age_seconds: float | None
    max_backlog_age_seconds: float | None


@strawberry.type(name="CaseReport")
class CaseReportType:
    period_start: datetime
    period_end: datetime
    group_by: str
    rows: list[CaseReportRowType]
    total: CaseReportRowType


_SETUP_TYPES: dict[type[Any], type[Any]] = {
    BusinessCalendar: BusinessCalendarType,
    SlaPolicy: SlaPolicyType,
    CaseQueue: CaseQueueType,
    CaseRoutingRule: CaseRoutingRuleType,
}


def _setup_type(record: Any) -> Any:
    data = setup_schema(record)
    cls = _SETUP_TYPES[type(record)]
    if cls is BusinessCalendarType:
        return _build(cls, data, hours=cast(JSON, {k: [list(s) for s in v]
                                                   for k, v in data.hours.items()}))  # fmt: skip
    return _build(cls, data)


# -- inputs ----------------------------------------------------------------------------------


@strawberry.input
class CaseFilter:
    contact_id: uuid.UUID | None = None
    statuses: list[str] | None = None
    priorities: list[str] | None = None
    queue_id: uuid.UUID | None = None
    assignee: str | None = None
    category: str | None = None
    channel: str | None = None
    breached: bool | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None


@strawberry.input(description="Field names and rules are those of the REST case.")
class CaseCreateInput:
    subject: str | None = strawberry.UNSET
    description: str | None = strawberry.UNSET
    contact_id: uuid.UUID | None = strawberry.UNSET
    account_id: uuid.UUID | None = strawberry.UNSET
    channel: str | None = strawberry.UNSET
    category: str | None = strawberry.UNSET
    priority: str | None = strawberry.UNSET
    queue_id: uuid.UUID | None = strawberry.UNSET
    assignee: str | None = strawberry.UNSET
    source_interaction_id: uuid.UUID | None = strawberry.UNSET
    attributes: JSON | None = strawberry.UNSET
    external_ids: list[ExternalIdInput] | None = strawberry.UNSET


@strawberry.input(description="Merge patch, as REST.")
class CaseUpdateInput:
    subject: str | None = strawberry.UNSET
    description: str | None = strawberry.UNSET
    account_id: uuid.UUID | None = strawberry.UNSET
    channel: str | None = strawberry.UNSET
    category: str | None = strawberry.UNSET
    priority: str | None = strawberry.UNSET
    queue_id: uuid.UUID | None = strawberry.UNSET
    assignee: str | None = strawberry.UNSET
    sla_policy_id: uuid.UUID | None = strawberry.UNSET
    attributes: JSON | None = strawberry.UNSET
    external_ids: list[ExternalIdInput] | None = strawberry.UNSET


@strawberry.input
class CaseTransitionInput:
    to: str
    reason: str | None = strawberry.UNSET
    note: str | None = strawberry.UNSET


@strawberry.input
class CaseCommentInput:
    body: str
    public: bool | None = strawberry.UNSET
    author: str | None = strawberry.UNSET


@strawberry.input(description="A queue, as REST.")
class CaseQueueInput:
    name: str | None = strawberry.UNSET
    description: str | None = strawberry.UNSET
    members: list[str] | None = strawberry.UNSET


@strawberry.input(description="A routing rule, as REST.")
class CaseRoutingRuleInput:
    name: str | None = strawberry.UNSET
    position: int | None = strawberry.UNSET
    active: bool | None = strawberry.UNSET
    categories: list[str] | None = strawberry.UNSET
    priorities: list[str] | None = strawberry.UNSET
    channels: list[str] | None = strawberry.UNSET
    account_types: list[str] | None = strawberry.UNSET
    lifecycle_stages: list[str] | None = strawberry.UNSET
    subject_keywords: list[str] | None = strawberry.UNSET
    queue_id: uuid.UUID | None = strawberry.UNSET
    assign_mode: str | None = strawberry.UNSET
    assignee: str | None = strawberry.UNSET


@strawberry.input(description="A business calendar, as REST.")
class BusinessCalendarInput:
    name: str | None = strawberry.UNSET
    time_zone: str | None = strawberry.UNSET
    hours: JSON | None = strawberry.UNSET
    holidays: list[date] | None = strawberry.UNSET


@strawberry.input(description="An SLA policy, as REST.")
class SlaPolicyInput:
    name: str | None = strawberry.UNSET
    priority: str | None = strawberry.UNSET
    category: str | None = strawberry.UNSET
    account_type: str | None = strawberry.UNSET
    calendar_id: uuid.UUID | None = strawberry.UNSET
    first_response_minutes: int | None = strawberry.UNSET
    next_response_minutes: int | None = strawberry.UNSET
    resolution_minutes: int | None = strawberry.UNSET
    warning_percent: int | None = strawberry.UNSET
    reopen_window_hours: int | None = strawberry.UNSET
    active: bool | None = strawberry.UNSET


def _as_dict(value: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        name: (item.isoformat() if isinstance(item, (date, datetime)) else item)
        for name, item in vars(value).items()
        if item is not strawberry.UNSET
    }
    if isinstance(data.get("holidays"), list):
        data["holidays"] = [
            day.isoformat() if isinstance(day, date) else day for day in data["holidays"]
        ]
    if "external_ids" in data:
        data["external_ids"] = external_ids_dict(data["external_ids"])
    return data


_SETUP: dict[str, tuple[type[Any], type[Any], type[Any]]] = {
    "queue": (CaseQueue, schemas.QueueCreate, schemas.QueueUpdate),
    "rule": (CaseRoutingRule, schemas.RoutingRuleCreate, schemas.RoutingRuleUpdate),
    "calendar": (BusinessCalendar, schemas.CalendarCreate, schemas.CalendarUpdate),
    "policy": (SlaPolicy, schemas.SlaPolicyCreate, schemas.SlaPolicyUpdate),
}


def cursor_of(data: schemas.Case, sort: str | None) -> str:
    order = parse_sort(sort, SORTS, "-created_at")
    value = getattr(data, SORTS[order.name].column.key)
    if order.name == "number":
        value = int(data.number.split("-")[1])
    elif isinstance(value, datetime):
        value = value.isoformat()
    return _encode([order.token, value, str(data.id)])


def connection(
    bodies: list[schemas.Case], next_cursor: str | None, sort: str | None
) -> Connection[CaseType]:
    edges = [Edge(node=CaseType.from_schema(b), cursor=cursor_of(b, sort)) for b in bodies]
    return page_of(edges, next_cursor)


async def contact_cases(
    root: ContactType,
    info: Info[Context, None],
    first: int = 20,
    statuses: list[str] | None = None,
) -> list[CaseType] | None:
    """Resolver of ``Contact.cases``: newest first, open ones (new, open, pending) unless
    ``statuses`` says otherwise; one batched query for a whole list of contacts."""
    info.context.require(Scope.cases_read)
    wanted = tuple(sorted(set(statuses))) if statuses else ("new", "open", "pending")
    size = min(max(first, 1), 100)
    rows = await info.context.loaders.get(cases_by_contact).load((root.id, size, wanted))
    return [CaseType.from_schema(row) for row in rows]


@strawberry.type
class CaseRootQuery:
    @strawberry.field(description="One case (scope: cases:read).")
    async def case(self, info: Info[Context, None], id: uuid.UUID) -> CaseType | None:
        auth = info.context.require(Scope.cases_read)

        async def work(session: Any) -> schemas.Case:
            record = await case_service.get(session, auth, id)
            return await case_service.schema_of(session, auth, record)

        return CaseType.from_schema(await info.context.read(work))

    @strawberry.field(description="A case by its number, e.g. CASE-000123.")
    async def case_by_number(self, info: Info[Context, None], number: str) -> CaseType | None:
        auth = info.context.require(Scope.cases_read)

        async def work(session: Any) -> schemas.Case:
            record = await case_service.get_by_number(session, auth, number)
            return await case_service.schema_of(session, auth, record)

        return CaseType.from_schema(await info.context.read(work))

    @strawberry.field(description="Cases, newest first (sort: created_at, updated_at, number).")
    async def cases(
        self,
        info: Info[Context, None],
        first: int | None = None,
        after: str | None = None,
        filter: CaseFilter | None = None,
        sort: str | None = None,
    ) -> Connection[CaseType] | None:
        auth = info.context.require(Scope.cases_read)
        criteria = filter or CaseFilter()
        query = CaseQuery(
            contact_id=criteria.contact_id,
            statuses=criteria.statuses or (),
            priorities=criteria.priorities or (),
            queue_id=criteria.queue_id,
            assignee=criteria.assignee,
            category=criteria.category,
            channel=criteria.channel,
            breached=criteria.breached,
            created_after=criteria.created_after,
            created_before=criteria.created_before,
        )
        limit = page_size(first)

        async def work(session: Any) -> tuple[list[schemas.Case], str | None]:
            rows, next_cursor = await case_service.find(
                session, auth, query, limit=limit, cursor=after, sort=sort
            )
            return await case_service.schemas_of(session, auth, rows), next_cursor

        bodies, next_cursor = await info.context.read(work)
        return connection(bodies, next_cursor, sort)

    @strawberry.field(description="Counts, percentiles, SLA met rate and backlog age.")
    async def case_report(
        self,
        info: Info[Context, None],
        from_: Annotated[datetime, strawberry.argument(name="from")],
        to: datetime,
        group_by: str = "queue",
    ) -> CaseReportType | None:
        auth = info.context.require(Scope.cases_read)
        if group_by not in ("queue", "priority", "category", "assignee"):
            from app.kit.errors import FieldError, ValidationFailed

            raise ValidationFailed(
                "Unknown grouping",
                errors=[FieldError(field="group_by", message="queue, priority, category "
                                                             "or assignee")],
            )  # fmt: skip
        data = await info.context.read(
            lambda session: report_service.build(session, auth, from_, to, group_by)
        )
        return _build(
            CaseReportType,
            data,
            rows=[_build(CaseReportRowType, row) for row in data.rows],
            total=_build(CaseReportRowType, data.total),
        )

    @strawberry.field(description="Case queues, oldest first.")
    async def case_queues(self, info: Info[Context, None]) -> list[CaseQueueType] | None:
        return await _all(info, CaseQueue)

    @strawberry.field(description="Routing rules in the order they run.")
    async def case_routing_rules(
        self, info: Info[Context, None]
    ) -> list[CaseRoutingRuleType] | None:
        return await _all(info, CaseRoutingRule)

    @strawberry.field(description="Business calendars.")
    async def business_calendars(
        self, info: Info[Context, None]
    ) -> list[BusinessCalendarType] | None:
        return await _all(info, BusinessCalendar)

    @strawberry.field(description="SLA policies.")
    async def sla_policies(self, info: Info[Context, None]) -> list[SlaPolicyType] | None:
        return await _all(info, SlaPolicy)


async def _all(info: Info[Context, None], model: type[Any]) -> list[Any]:
    """Every record of a setup kind (there are few): pages of 200 until the last."""
    auth = info.context.require(Scope.cases_read)
    found: list[Any] = []
    cursor: str | None = None
    while True:

        async def page(session: Any, after: str | None = cursor) -> tuple[list[Any], str | None]:
            return await setup_service.find(
                session, auth, model, limit=200, cursor=after, sort=None
            )

        rows, cursor = await info.context.read(page)
        found.extend(_setup_type(row) for row in rows)
        if cursor is None:
            return found


async def _case_write(info: Info[Context, None], work: Any) -> CaseType:
    auth = info.context.require(Scope.cases_write)

    async def run(session: Any) -> schemas.Case:
        record = await work(session, auth)
        return await case_service.schema_of(session, auth, record)

    return CaseType.from_schema(await info.context.write(run))


@strawberry.type
class CaseMutation:
    @strawberry.mutation(description="Open a case (routed unless a queue is given).")
    async def create_case(
        self, info: Info[Context, None], input: CaseCreateInput
    ) -> CaseType | None:
        data = parse_input(schemas.CaseCreate, _as_dict(input))
        return await _case_write(info, lambda s, a: case_service.create(s, a, data))

    @strawberry.mutation(description="Change a case (merge-patch semantics).")
    async def update_case(
        self,
        info: Info[Context, None],
        id: uuid.UUID,
        input: CaseUpdateInput,
        if_match: str | None = None,
    ) -> CaseType | None:
        patch = parse_input(schemas.CaseUpdate, _as_dict(input))
        return await _case_write(
            info, lambda s, a: case_service.update(s, a, id, patch, if_match=if_match)
        )

    @strawberry.mutation(description="Change a case's status (409 lists the allowed ones).")
    async def transition_case(
        self,
        info: Info[Context, None],
        id: uuid.UUID,
        input: CaseTransitionInput,
        if_match: str | None = None,
    ) -> CaseType | None:
        data = parse_input(schemas.TransitionCreate, _as_dict(input))
        return await _case_write(
            info, lambda s, a: case_service.transition(s, a, id, data, if_match=if_match)
        )

    @strawberry.mutation(description="Run the routing rules on a case now.")
    async def route_case(
        self, info: Info[Context, None], id: uuid.UUID, if_match: str | None = None
    ) -> CaseType | None:
        return await _case_write(info, lambda s, a: case_service.route(s, a, id, if_match=if_match))

    @strawberry.mutation(description="Comment on a case; public comments reach the customer.")
    async def comment_on_case(
        self, info: Info[Context, None], id: uuid.UUID, input: CaseCommentInput
    ) -> CaseCommentType | None:
        auth = info.context.require(Scope.cases_write)
        data = parse_input(schemas.CommentCreate, _as_dict(input))
        comment, _ = await info.context.write(
            lambda session: case_service.comment(session, auth, id, data)
        )
        return _build(CaseCommentType, comment)

    @strawberry.mutation(description="Delete a case with its comments and history.")
    async def delete_case(
        self, info: Info[Context, None], id: uuid.UUID, if_match: str | None = None
    ) -> uuid.UUID | None:
        auth = info.context.require(Scope.cases_write)
        await info.context.write(
            lambda session: case_service.delete(session, auth, id, if_match=if_match)
        )
        return id

    # -- queues, rules, calendars, policies ------------------------------------------------
    @strawberry.mutation(description="Create a case queue.")
    async def create_case_queue(
        self, info: Info[Context, None], input: CaseQueueInput
    ) -> CaseQueueType | None:
        return cast(CaseQueueType, await _setup_write(info, "queue", None, input, None))

    @strawberry.mutation(description="Change a case queue (merge patch).")
    async def update_case_queue(
        self, info: Info[Context, None], id: uuid.UUID, input: CaseQueueInput,
        if_match: str | None = None,
    ) -> CaseQueueType | None:  # fmt: skip
        return cast(CaseQueueType, await _setup_write(info, "queue", id, input, if_match))

    @strawberry.mutation(description="Delete a case queue.")
    async def delete_case_queue(
        self, info: Info[Context, None], id: uuid.UUID, if_match: str | None = None
    ) -> uuid.UUID | None:
        return await _setup_delete(info, "queue", id, if_match)

    @strawberry.mutation(description="Create a routing rule.")
    async def create_case_routing_rule(
        self, info: Info[Context, None], input: CaseRoutingRuleInput
    ) -> CaseRoutingRuleType | None:
        return cast(CaseRoutingRuleType, await _setup_write(info, "rule", None, input, None))

    @strawberry.mutation(description="Change a routing rule (merge patch).")
    async def update_case_routing_rule(
        self, info: Info[Context, None], id: uuid.UUID, input: CaseRoutingRuleInput,
        if_match: str | None = None,
    ) -> CaseRoutingRuleType | None:  # fmt: skip
        return cast(CaseRoutingRuleType, await _setup_write(info, "rule", id, input, if_match))

    @strawberry.mutation(description="Delete a routing rule.")
    async def delete_case_routing_rule(
        self, info: Info[Context, None], id: uuid.UUID, if_match: str | None = None
    ) -> uuid.UUID | None:
        return await _setup_delete(info, "rule", id, if_match)

    @strawberry.mutation(description="Create a business calendar.")
    async def create_business_calendar(
        self, info: Info[Context, None], input: BusinessCalendarInput
    ) -> BusinessCalendarType | None:
        return cast(BusinessCalendarType, await _setup_write(info, "calendar", None, input, None))

    @strawberry.mutation(description="Change a business calendar (merge patch).")
    async def update_business_calendar(
        self, info: Info[Context, None], id: uuid.UUID, input: BusinessCalendarInput,
        if_match: str | None = None,
    ) -> BusinessCalendarType | None:  # fmt: skip
        return cast(BusinessCalendarType, await _setup_write(info, "calendar", id, input, if_match))

    @strawberry.mutation(description="Delete a business calendar.")
    async def delete_business_calendar(
        self, info: Info[Context, None], id: uuid.UUID, if_match: str | None = None
    ) -> uuid.UUID | None:
        return await _setup_delete(info, "calendar", id, if_match)

    @strawberry.mutation(description="Create an SLA policy.")
    async def create_sla_policy(
        self, info: Info[Context, None], input: SlaPolicyInput
    ) -> SlaPolicyType | None:
        return cast(SlaPolicyType, await _setup_write(info, "policy", None, input, None))

    @strawberry.mutation(description="Change an SLA policy (merge patch).")
    async def update_sla_policy(
        self, info: Info[Context, None], id: uuid.UUID, input: SlaPolicyInput,
        if_match: str | None = None,
    ) -> SlaPolicyType | None:  # fmt: skip
        return cast(SlaPolicyType, await _setup_write(info, "policy", id, input, if_match))

    @strawberry.mutation(description="Delete an SLA policy.")
    async def delete_sla_policy(
        self, info: Info[Context, None], id: uuid.UUID, if_match: str | None = None
    ) -> uuid.UUID | None:
        return await _setup_delete(info, "policy", id, if_match)


async def _setup_write(
    info: Info[Context, None],
    kind: str,
    record_id: uuid.UUID | None,
    input: Any,
    if_match: str | None,
) -> Any:
    auth = info.context.require(Scope.cases_write)
    model, create_schema, update_schema = _SETUP[kind]
    if record_id is None:
        data = parse_input(create_schema, _as_dict(input))
        record = await info.context.write(
            lambda session: setup_service.create(session, auth, model, data)
        )
    else:
        patch = parse_input(update_schema, _as_dict(input))
        record = await info.context.write(
            lambda session: setup_service.update(
                session, auth, model, record_id, patch, if_match=if_match
            )
        )
    return _setup_type(record)


async def _setup_delete(
    info: Info[Context, None], kind: str, record_id: uuid.UUID, if_match: str | None
) -> uuid.UUID:
    auth = info.context.require(Scope.cases_write)
    model = _SETUP[kind][0]
    await info.context.write(
        lambda session: setup_service.delete(session, auth, model, record_id, if_match=if_match)
    )
    return record_id
