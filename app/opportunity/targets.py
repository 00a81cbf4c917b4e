"""Sales targets with their attainment, commission rules, and commission statements.

Won amounts count opportunities won by the owner, in the target's currency, closed (in the
workspace's time zone) within the period. Nothing is converted between currencies.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date
from fractions import Fraction
from math import floor
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.dependencies import AuthContext
from app.db.locking import lock_keys
from app.events import outbox
from app.kit.errors import FieldError, ValidationFailed
from app.kit.etag import check_if_match
from app.kit.ids import uuid7
from app.kit.money import Money
from app.kit.pagination import Keyset, Sort, SortField, parse_datetime, parse_sort
from app.models import CommissionRule, SalesTarget
from app.opportunity import schemas
from app.opportunity.analytics import ratio
from app.opportunity.exceptions import (
    CommissionRuleNotFound,
    DuplicateCommissionRule,
    DuplicateSalesTarget,
    PipelineNotFound,
    SalesTargetNotFound,
)
from app.opportunity.repository import PipelineRepository
from app.opportunity.service import MAX_MINOR


def _parse_date(value: Any) -> date:
    if not isinstance(value, str):
        raise ValueError("expected a date")
    return date.fromisoformat(value)


TARGET_SORTS = {
    "period_start": SortField(SalesTarget.period_start, _parse_date),
    "created_at": SortField(SalesTarget.created_at, parse_datetime),
}
RULE_SORTS = {"created_at": SortField(CommissionRule.created_at, parse_datetime)}
RULES_OLDEST_FIRST = Sort(name="created_at", descending=False)
_CLOSED_DAY = "CAST(timezone(:tz, o.closed_at) AS date)"


def _positive_minor(money: Money, field_name: str) -> int:
    minor = money.to_minor_units()
    if not 0 < minor <= MAX_MINOR:
        raise ValidationFailed(
            "A target is a positive amount",
            errors=[FieldError(field=f"{field_name}.amount", message="must be more than 0")],
        )
    return minor


def _half_up(value: Fraction) -> int:
    return floor(value + Fraction(1, 2))


class SalesTargetService:
    async def find(
        self,
        session: AsyncSession,
        auth: AuthContext,
        *,
        owner: str | None,
        from_date: date | None,
        to_date: date | None,
        limit: int,
        cursor: str | None,
        sort: str | None,
    ) -> tuple[list[schemas.SalesTarget], str | None]:
        """Targets (with attainment) whose period overlaps the range, by period start."""
        keyset = Keyset.build(
            sort=parse_sort(sort, TARGET_SORTS, "period_start"),
            allowed=TARGET_SORTS,
            id_column=SalesTarget.id,
            limit=limit,
            cursor=cursor,
        )
        statement = select(SalesTarget).where(SalesTarget.workspace_id == auth.workspace_id)
        if owner is not None:
            statement = statement.where(SalesTarget.owner == owner)
        if from_date is not None:
            statement = statement.where(SalesTarget.period_end >= from_date)
        if to_date is not None:
            statement = statement.where(SalesTarget.period_start <= to_date)
        rows = list((await session.execute(keyset.apply(statement))).scalars().all())
        column = keyset.field.column.key
        page, next_cursor = keyset.page(rows, lambda row: (getattr(row, column), row.id))
        return await self.with_attainment(session, auth, page), next_cursor

    async def get(
        self, session: AsyncSession, auth: AuthContext, target_id: uuid.UUID
    ) -> tuple[SalesTarget, schemas.SalesTarget]:
        """Raises: SalesTargetNotFound."""
        row = await self._row(session, auth, target_id)
        return row, (await self.with_attainment(session, auth, [row]))[0]

    async def with_attainment(
        self, session: AsyncSession, auth: AuthContext, rows: list[SalesTarget]
    ) -> list[schemas.SalesTarget]:
        """The targets with what their owners won in each period, in one statement."""
        if not rows:
            return []
        tz = await PipelineRepository(session).workspace_timezone(auth.workspace_id)
        result = await session.execute(
            text(
                "SELECT t.id, COALESCE(sum(o.amount_minor), 0) AS won FROM sales_targets t "
                "LEFT JOIN opportunities o ON o.workspace_id = t.workspace_id "
                "AND o.owner = t.owner AND o.currency = t.currency AND o.status = 'won' "
                f"AND {_CLOSED_DAY} BETWEEN t.period_start AND t.period_end "
                "WHERE t.workspace_id = :w AND t.id = ANY(:ids) GROUP BY t.id"
            ),
            {"w": auth.workspace_id, "ids": [row.id for row in rows], "tz": tz},
        )
        won = {row.id: int(row.won) for row in result}
        return [self._schema(row, won.get(row.id, 0)) for row in rows]

    async def create(
        self, session: AsyncSession, auth: AuthContext, data: schemas.SalesTargetCreate
    ) -> tuple[SalesTarget, schemas.SalesTarget]:
        """Raises: DuplicateSalesTarget: same owner, period and currency."""
        amount = _positive_minor(data.amount, "amount")
        target = SalesTarget(
            workspace_id=auth.workspace_id,
            id=uuid7(),
            owner=data.owner,
            period_start=data.period_start,
            period_end=data.period_end,
            currency=data.amount.currency,
            amount_minor=amount,
            version=1,
        )
        await self._check_free(session, auth, target)
        session.add(target)
        await session.flush()
        await session.refresh(target, ["created_at", "updated_at"])
        body = (await self.with_attainment(session, auth, [target]))[0]
        await self._record(session, auth, "sales_target.created", target, body)
        return target, body

    async def update(
        self,
        session: AsyncSession,
        auth: AuthContext,
        target_id: uuid.UUID,
        patch: schemas.SalesTargetUpdate,
        *,
        if_match: str | None = None,
    ) -> tuple[SalesTarget, schemas.SalesTarget]:
        """Raises: SalesTargetNotFound, PreconditionFailed, DuplicateSalesTarget,
        ValidationFailed (the period ends before it starts)."""
        target = await self._row(session, auth, target_id, for_update=True)
        check_if_match(if_match, target.version)
        changes = patch.changes()
        for name in ("owner", "period_start", "period_end"):
            if name in changes:
                setattr(target, name, changes[name])
        if patch.amount is not None:
            target.amount_minor = _positive_minor(patch.amount, "amount")
            target.currency = patch.amount.currency
        if target.period_end < target.period_start:
            raise ValidationFailed(
                "The period ends before it starts",
                errors=[FieldError(field="period_end", message="before period_start")],
            )
        if session.is_modified(target):
            await self._check_free(session, auth, target)
            target.updated_at = func.now()
            await session.flush()
            await session.refresh(target, ["updated_at"])
            body = (await self.with_attainment(session, auth, [target]))[0]
            await self._record(session, auth, "sales_target.updated", target, body)
            return target, body
        return target, (await self.with_attainment(session, auth, [target]))[0]

    async def delete(
        self,
        session: AsyncSession,
        auth: AuthContext,
        target_id: uuid.UUID,
        *,
        if_match: str | None = None,
    ) -> None:
        """Raises: SalesTargetNotFound, PreconditionFailed."""
        target = await self._row(session, auth, target_id, for_update=True)
        check_if_match(if_match, target.version)
        await session.delete(target)
        await session.flush()
        await outbox.record(
            session,
            workspace_id=auth.workspace_id,
            type="sales_target.deleted",
            aggregate_type="sales_target",
            aggregate_id=target_id,
            data={"id": str(target_id)},
        )

    # -- helpers -----------------------------------------------------------------------------
    @staticmethod
    def _schema(target: SalesTarget, won: int) -> schemas.SalesTarget:
        return schemas.SalesTarget(
            id=target.id,
            owner=target.owner,
            period_start=target.period_start,
            period_end=target.period_end,
            amount=Money.from_minor_units(target.amount_minor, target.currency),
            won=Money.from_minor_units(won, target.currency),
            attainment=ratio(won, target.amount_minor) or "0.0000",
            created_at=target.created_at,
            updated_at=target.updated_at,
            version=target.version,
        )

    @staticmethod
    async def _row(
        session: AsyncSession, auth: AuthContext, target_id: uuid.UUID, *, for_update: bool = False
    ) -> SalesTarget:
        statement = select(SalesTarget).where(
            SalesTarget.workspace_id == auth.workspace_id, SalesTarget.id == target_id
        )
        if for_update:
            statement = statement.with_for_update().execution_options(populate_existing=True)
        found = (await session.execute(statement)).scalars().one_or_none()
        if found is None:
            raise SalesTargetNotFound()
        return found

    @staticmethod
    async def _check_free(session: AsyncSession, auth: AuthContext, target: SalesTarget) -> None:
        key = (
            f"sales_target:{target.owner}:{target.currency}:"
            f"{target.period_start}:{target.period_end}"
        )
        await lock_keys(session, auth.workspace_id, [key])
        taken = await session.execute(
            select(SalesTarget.id).where(
                SalesTarget.workspace_id == auth.workspace_id,
                SalesTarget.owner == target.owner,
                SalesTarget.currency == target.currency,
                SalesTarget.period_start == target.period_start,
                SalesTarget.period_end == target.period_end,
                SalesTarget.id != target.id,
            )
        )
        existing = taken.scalar_one_or_none()
        if existing is not None:
            raise DuplicateSalesTarget(
                "The owner already has a target for this period and currency",
                errors=[FieldError(field="owner", message="target exists for the period")],
                extra={"existing_id": str(existing)},
            )

    @staticmethod
    async def _record(
        session: AsyncSession,
        auth: AuthContext,
        type: str,
        target: SalesTarget,
        body: schemas.SalesTarget,
    ) -> None:
        await outbox.record(
            session,
            workspace_id=auth.workspace_id,
            type=type,
            aggregate_type="sales_target",
            aggregate_id=target.id,
            data=body,
        )


@dataclass
class _Statement:
    owner: str
    currency: str
    target_minor: int | None
    won_minor: int = 0
    commission_minor: int = 0
    deals: list[schemas.CommissionDeal] = field(default_factory=list)


class CommissionService:
    # -- rules -------------------------------------------------------------------------------
    async def page(
        self, session: AsyncSession, auth: AuthContext, *, limit: int, cursor: str | None
    ) -> tuple[list[CommissionRule], str | None]:
        """A page of rules, oldest first."""
        keyset = Keyset.build(
            sort=RULES_OLDEST_FIRST,
            allowed=RULE_SORTS,
            id_column=CommissionRule.id,
            limit=limit,
            cursor=cursor,
        )
        statement = keyset.apply(
            select(CommissionRule).where(CommissionRule.workspace_id == auth.workspace_id)
        )
        rows = list((await session.execute(statement)).scalars().all())
        return keyset.page(rows, lambda row: (row.created_at, row.id))

    async def rules(self, session: AsyncSession, auth: AuthContext) -> list[CommissionRule]:
        result = await session.execute(
            select(CommissionRule)
            .where(CommissionRule.workspace_id == auth.workspace_id)
            .order_by(CommissionRule.created_at, CommissionRule.id)
        )
        return list(result.scalars().all())

    async def get_rule(
        self,
        session: AsyncSession,
        auth: AuthContext,
        rule_id: uuid.UUID,
        *,
        for_update: bool = False,
    ) -> CommissionRule:
        """Raises: CommissionRuleNotFound."""
        statement = select(CommissionRule).where(
            CommissionRule.workspace_id == auth.workspace_id, CommissionRule.id == rule_id
        )
        if for_update:
            statement = statement.with_for_update().execution_options(populate_existing=True)
        found = (await session.execute(statement)).scalars().one_or_none()
        if found is None:
            raise CommissionRuleNotFound()
        return found

    async def create_rule(
        self, session: AsyncSession, auth: AuthContext, data: schemas.CommissionRuleCreate
    ) -> CommissionRule:
        """Raises: PipelineNotFound, DuplicateCommissionRule."""
        rule = CommissionRule(
            workspace_id=auth.workspace_id,
            id=uuid7(),
            name=data.name,
            pipeline_id=data.pipeline_id,
            owner=data.owner,
            rate_bp=data.rate_bp,
            tiers=[tier.model_dump() for tier in data.tiers],
            version=1,
        )
        await self._check_scope(session, auth, rule)
        session.add(rule)
        await session.flush()
        await session.refresh(rule, ["created_at", "updated_at"])
        await self._record(session, auth, "commission_rule.created", rule)
        return rule

    async def update_rule(
        self,
        session: AsyncSession,
        auth: AuthContext,
        rule_id: uuid.UUID,
        patch: schemas.CommissionRuleUpdate,
        *,
        if_match: str | None = None,
    ) -> CommissionRule:
        """Raises: CommissionRuleNotFound, PreconditionFailed, PipelineNotFound,
        DuplicateCommissionRule."""
        rule = await self.get_rule(session, auth, rule_id, for_update=True)
        check_if_match(if_match, rule.version)
        changes = patch.changes()
        for name in ("name", "pipeline_id", "owner", "rate_bp"):
            if name in changes and getattr(rule, name) != changes[name]:
                setattr(rule, name, changes[name])
        if patch.tiers is not None:
            tiers = [tier.model_dump() for tier in patch.tiers]
            if tiers != rule.tiers:
                rule.tiers = tiers
        if session.is_modified(rule):
            await self._check_scope(session, auth, rule)
            rule.updated_at = func.now()
            await session.flush()
            await session.refresh(rule, ["updated_at"])
            await self._record(session, auth, "commission_rule.updated", rule)
        return rule

    async def delete_rule(
        self,
        session: AsyncSession,
        auth: AuthContext,
        rule_id: uuid.UUID,
        *,
        if_match: str | None = None,
    ) -> None:
        """Raises: CommissionRuleNotFound, PreconditionFailed."""
        rule = await self.get_rule(session, auth, rule_id, for_update=True)
        check_if_match(if_match, rule.version)
        await session.delete(rule)
        await session.flush()
        await outbox.record(
            session,
            workspace_id=auth.workspace_id,
            type="commission_rule.deleted",
            aggregate_type="commission_rule",
            aggregate_id=rule_id,
            data={"id": str(rule_id)},
        )

    def rule_to_schema(self, rule: CommissionRule) -> schemas.CommissionRule:
        return schemas.CommissionRule(
            id=rule.id,
            name=rule.name,
            pipeline_id=rule.pipeline_id,
            owner=rule.owner,
            rate_bp=rule.rate_bp,
            tiers=[schemas.TierOut(**tier) for tier in rule.tiers],
            created_at=rule.created_at,
            updated_at=rule.updated_at,
            version=rule.version,
        )

    # -- statements --------------------------------------------------------------------------
    async def statements(
        self,
        session: AsyncSession,
        auth: AuthContext,
        *,
        owner: str | None,
        from_date: date,
        to_date: date,
    ) -> schemas.Commissions:
        """Commission per owner and currency on the deals won (closed) in the range.

        Each deal takes the most specific rule: pipeline and owner, then owner, then
        pipeline, then the workspace-wide rule; a deal no rule covers earns nothing but is
        listed. The owner's won amount accumulates in order of closing; the part of a deal
        above a tier's share of the owner's target (the targets in the currency lying within
        the range) earns the tier's rate, the rest the rule's base rate. Each deal's
        commission is rounded half up to the minor unit.

        Raises:
            ValidationFailed: ``to_date`` before ``from_date``.
        """
        if to_date < from_date:
            raise ValidationFailed(
                "The range ends before it starts",
                errors=[FieldError(field="query.to", message="before `from`")],
            )
        tz = await PipelineRepository(session).workspace_timezone(auth.workspace_id)
        params: dict[str, Any] = {
            "w": auth.workspace_id,
            "owner": owner,
            "from": from_date,
            "to": to_date,
            "tz": tz,
        }
        deals = await session.execute(
            text(
                "SELECT o.id, o.name, o.pipeline_id, o.owner, o.currency, o.amount_minor, "
                "o.closed_at FROM opportunities o WHERE o.workspace_id = :w "
                "AND o.status = 'won' AND o.owner IS NOT NULL "
                "AND (CAST(:owner AS text) IS NULL OR o.owner = :owner) "
                f"AND {_CLOSED_DAY} BETWEEN :from AND :to "
                "ORDER BY o.owner, o.currency, o.closed_at, o.id"
            ),
            params,
        )
        targets = await session.execute(
            text(
                "SELECT owner, currency, sum(amount_minor) AS amount FROM sales_targets "
                "WHERE workspace_id = :w AND (CAST(:owner AS text) IS NULL OR owner = :owner) "
                "AND period_start >= :from AND period_end <= :to GROUP BY owner, currency"
            ),
            params,
        )
        target_of = {(row.owner, row.currency): int(row.amount) for row in targets}
        rules = await self.rules(session, auth)
        statements: dict[tuple[str, str], _Statement] = {}
        for deal in deals:
            key = (deal.owner, deal.currency)
            statement = statements.get(key)
            if statement is None:
                statement = statements[key] = _Statement(
                    owner=deal.owner, currency=deal.currency, target_minor=target_of.get(key)
                )
            rule = _rule_for(rules, deal.pipeline_id, deal.owner)
            amount = int(deal.amount_minor)
            earned = (
                _half_up(_earned(rule, statement.won_minor, amount, statement.target_minor))
                if rule is not None
                else 0
            )
            statement.won_minor += amount
            statement.commission_minor += earned
            statement.deals.append(
                schemas.CommissionDeal(
                    opportunity_id=deal.id,
                    name=deal.name,
                    pipeline_id=deal.pipeline_id,
                    closed_at=deal.closed_at,
                    amount=Money.from_minor_units(amount, deal.currency),
                    rule_id=rule.id if rule is not None else None,
                    commission=Money.from_minor_units(earned, deal.currency),
                )
            )

        def money(minor: int, currency: str) -> Money:
            return Money.from_minor_units(minor, currency)

        return schemas.Commissions(
            from_date=from_date,
            to_date=to_date,
            data=[
                schemas.CommissionStatement(
                    owner=s.owner,
                    currency=s.currency,
                    won_amount=money(s.won_minor, s.currency),
                    target=money(s.target_minor, s.currency) if s.target_minor else None,
                    commission=money(s.commission_minor, s.currency),
                    deals=s.deals,
                )
                for _, s in sorted(statements.items())
            ],
        )

    # -- helpers -----------------------------------------------------------------------------
    @staticmethod
    async def _check_scope(session: AsyncSession, auth: AuthContext, rule: CommissionRule) -> None:
        if rule.pipeline_id is not None:
            found = await PipelineRepository(session).get(auth.workspace_id, rule.pipeline_id)
            if found is None:
                raise PipelineNotFound(
                    errors=[FieldError(field="pipeline_id", message="no such pipeline")]
                )
        await lock_keys(
            session, auth.workspace_id, [f"commission_rule:{rule.pipeline_id}:{rule.owner}"]
        )
        statement = select(CommissionRule.id).where(
            CommissionRule.workspace_id == auth.workspace_id,
            CommissionRule.id != rule.id,
            CommissionRule.pipeline_id.is_(None)
            if rule.pipeline_id is None
            else CommissionRule.pipeline_id == rule.pipeline_id,
            CommissionRule.owner.is_(None)
            if rule.owner is None
            else CommissionRule.owner == rule.owner,
        )
        existing = (await session.execute(statement)).scalar_one_or_none()
        if existing is not None:
            raise DuplicateCommissionRule(
                "A rule for this pipeline and owner already exists",
                errors=[FieldError(field="owner", message="a rule covers this pipeline and owner")],
                extra={"existing_id": str(existing)},
            )

    async def _record(
        self, session: AsyncSession, auth: AuthContext, type: str, rule: CommissionRule
    ) -> None:
        await outbox.record(
            session,
            workspace_id=auth.workspace_id,
            type=type,
            aggregate_type="commission_rule",
            aggregate_id=rule.id,
            data=self.rule_to_schema(rule),
        )


def _rule_for(
    rules: list[CommissionRule], pipeline_id: uuid.UUID, owner: str
) -> CommissionRule | None:
    """The most specific rule: pipeline and owner, owner, pipeline, then the default."""
    ranked = {
        (rule.pipeline_id == pipeline_id, rule.owner == owner): rule
        for rule in rules
        if rule.pipeline_id in (None, pipeline_id) and rule.owner in (None, owner)
    }
    for key in ((True, True), (False, True), (True, False), (False, False)):
        if key in ranked:
            return ranked[key]
    return None


def _earned(rule: CommissionRule, before: int, amount: int, target: int | None) -> Fraction:
    """Commission, exact, on ``amount`` won after ``before`` was already won in the period."""
    bands: list[tuple[Fraction, int]] = [(Fraction(0), rule.rate_bp)]
    if target:
        bands += [
            (Fraction(target * tier["above_percent"], 100), tier["rate_bp"]) for tier in rule.tiers
        ]
    start, end = Fraction(before), Fraction(before + amount)
    total = Fraction(0)
    for index, (band_start, rate) in enumerate(bands):
        band_end = bands[index + 1][0] if index + 1 < len(bands) else None
        low = max(start, band_start)
        high = end if band_end is None else min(end, band_end)
        if high > low:
            total += (high - low) * rate
    return total / 10_000


sales_target = SalesTargetService()
commission = CommissionService()
