"""Forecast and pipeline analytics, aggregated in SQL.

Figures are per currency and never converted: a group's amounts in THB and in VND are two
rows. Closing dates and the ``from``/``to`` ranges are days in the workspace's time zone.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.dependencies import AuthContext
from app.kit.errors import FieldError, ValidationFailed
from app.kit.money import Money
from app.opportunity import schemas
from app.opportunity.exceptions import PipelineNotFound
from app.opportunity.repository import PipelineRepository

FOUR_PLACES = Decimal("0.0001")


def ratio(numerator: int, denominator: int) -> str | None:
    """numerator / denominator as a 4-decimal string, rounded half up; None for 0/0."""
    if denominator == 0:
        return None
    value = (Decimal(numerator) / Decimal(denominator)).quantize(FOUR_PLACES, ROUND_HALF_UP)
    return format(value, "f")


def _check_range(from_date: date | None, to_date: date | None) -> None:
    if from_date is not None and to_date is not None and to_date < from_date:
        raise ValidationFailed(
            "The range ends before it starts",
            errors=[FieldError(field="query.to", message="before `from`")],
        )


_KEYS = {
    # (key of open deals, key of closed deals)
    None: ("NULL::text", "NULL::text"),
    "owner": ("o.owner", "o.owner"),
    "stage": ("o.stage_id::text", "o.stage_id::text"),
    "month": (
        "to_char(o.expected_close_date, 'YYYY-MM')",
        "to_char(timezone(:tz, o.closed_at), 'YYYY-MM')",
    ),
}


@dataclass
class _Figures:
    open_count: int = 0
    open_minor: int = 0
    weighted_x100: int = 0
    won_count: int = 0
    won_minor: int = 0
    lost_count: int = 0
    lost_minor: int = 0


class SalesAnalytics:
    async def forecast(
        self,
        session: AsyncSession,
        auth: AuthContext,
        *,
        pipeline_id: uuid.UUID | None,
        from_date: date | None,
        to_date: date | None,
        group_by: str | None,
        owner: str | None = None,
    ) -> schemas.Forecast:
        """Open pipeline (deals expected to close in the range), weighted pipeline (amount x
        stage probability, summed, then rounded half up once per group), and what was won and
        lost (closed in the range), per group and currency.

        Raises:
            PipelineNotFound: an unknown pipeline.
            ValidationFailed: ``to_date`` before ``from_date``.
        """
        _check_range(from_date, to_date)
        repository = PipelineRepository(session)
        if pipeline_id is not None and await repository.get(auth.workspace_id, pipeline_id) is None:
            raise PipelineNotFound(
                errors=[FieldError(field="query.pipeline_id", message="no such pipeline")]
            )
        tz = await repository.workspace_timezone(auth.workspace_id)
        params: dict[str, Any] = {
            "w": auth.workspace_id,
            "p": pipeline_id,
            "from": from_date,
            "to": to_date,
            "tz": tz,
            "owner": owner,
        }
        open_key, closed_key = _KEYS[group_by]
        scope = (
            "o.workspace_id = :w AND (CAST(:p AS uuid) IS NULL OR o.pipeline_id = :p) "
            "AND (CAST(:owner AS text) IS NULL OR o.owner = :owner)"
        )
        open_rows = await session.execute(
            text(
                f"SELECT {open_key} AS key, o.currency, count(*) AS n, "
                "sum(o.amount_minor) AS amount, "
                # numeric: amount x probability can exceed a bigint.
                "sum(CAST(o.amount_minor AS numeric) * s.probability) AS weighted "
                "FROM opportunities o JOIN pipeline_stages s "
                "ON s.workspace_id = o.workspace_id AND s.id = o.stage_id "
                f"WHERE {scope} AND o.status = 'open' "
                "AND (CAST(:from AS date) IS NULL OR o.expected_close_date >= :from) "
                "AND (CAST(:to AS date) IS NULL OR o.expected_close_date <= :to) "
                "GROUP BY 1, 2"
            ),
            params,
        )
        closed_day = "CAST(timezone(:tz, o.closed_at) AS date)"
        closed_rows = await session.execute(
            text(
                f"SELECT {closed_key} AS key, o.currency, o.status, count(*) AS n, "
                "sum(o.amount_minor) AS amount FROM opportunities o "
                f"WHERE {scope} AND o.status IN ('won', 'lost') "
                f"AND (CAST(:from AS date) IS NULL OR {closed_day} >= :from) "
                f"AND (CAST(:to AS date) IS NULL OR {closed_day} <= :to) "
                "GROUP BY 1, 2, 3"
            ),
            params,
        )
        groups: dict[str | None, dict[str, _Figures]] = {}
        for row in open_rows:
            figures = groups.setdefault(row.key, {}).setdefault(row.currency, _Figures())
            figures.open_count = int(row.n)
            figures.open_minor = int(row.amount)
            figures.weighted_x100 = int(row.weighted)
        for row in closed_rows:
            figures = groups.setdefault(row.key, {}).setdefault(row.currency, _Figures())
            if row.status == "won":
                figures.won_count, figures.won_minor = int(row.n), int(row.amount)
            else:
                figures.lost_count, figures.lost_minor = int(row.n), int(row.amount)
        labels: dict[str, str] = {}
        if group_by == "stage" and groups:
            found = await session.execute(
                text(
                    "SELECT id::text AS id, name FROM pipeline_stages "
                    "WHERE workspace_id = :w AND id::text = ANY(:ids)"
                ),
                {"w": auth.workspace_id, "ids": [key for key in groups if key is not None]},
            )
            labels = {row.id: row.name for row in found}

        def money(minor: int, currency: str) -> Money:
            return Money.from_minor_units(minor, currency)

        return schemas.Forecast(
            pipeline_id=pipeline_id,
            from_date=from_date,
            to_date=to_date,
            group_by=group_by,  # type: ignore[arg-type]
            groups=[
                schemas.ForecastGroupRow(
                    key=key,
                    label=labels.get(key) if key is not None else None,
                    by_currency=[
                        schemas.ForecastFigures(
                            currency=currency,
                            open_count=f.open_count,
                            open_amount=money(f.open_minor, currency),
                            weighted_amount=money((2 * f.weighted_x100 + 100) // 200, currency),
                            won_count=f.won_count,
                            won_amount=money(f.won_minor, currency),
                            lost_count=f.lost_count,
                            lost_amount=money(f.lost_minor, currency),
                        )
                        for currency, f in sorted(by_currency.items())
                    ],
                )
                for key, by_currency in sorted(groups.items(), key=lambda item: item[0] or "")
            ],
        )

    async def pipeline_analytics(
        self,
        session: AsyncSession,
        auth: AuthContext,
        pipeline_id: uuid.UUID,
        *,
        from_date: date | None,
        to_date: date | None,
    ) -> schemas.PipelineAnalytics:
        """How the pipeline's opportunities created in the range fared.

        An opportunity reached a stage when it entered it or any later open or won stage
        (funnel semantics: skipping a stage passes it). Conversion to the next stage is
        reached(next) / reached(stage); to won, the share of those reaching the stage that
        were won. Times in a stage are completed stays (left the stage), from the stage
        history. Win rate is won / (won + lost).

        Raises:
            PipelineNotFound: no such pipeline in the caller's workspace.
            ValidationFailed: ``to_date`` before ``from_date``.
        """
        _check_range(from_date, to_date)
        repository = PipelineRepository(session)
        pipeline = await repository.get(auth.workspace_id, pipeline_id)
        if pipeline is None:
            raise PipelineNotFound()
        tz = await repository.workspace_timezone(auth.workspace_id)
        params: dict[str, Any] = {
            "w": auth.workspace_id,
            "p": pipeline_id,
            "from": from_date,
            "to": to_date,
            "tz": tz,
        }
        cohort = (
            "WITH cohort AS (SELECT o.id, o.status, o.loss_reason FROM opportunities o "
            "WHERE o.workspace_id = :w AND o.pipeline_id = :p "
            "AND (CAST(:from AS date) IS NULL OR CAST(timezone(:tz, o.created_at) AS date) >= :from) "  # noqa: E501
            "AND (CAST(:to AS date) IS NULL OR CAST(timezone(:tz, o.created_at) AS date) <= :to)) "
        )
        totals = (
            await session.execute(
                text(
                    cohort + "SELECT count(*) AS n, count(*) FILTER (WHERE status = 'won') AS won, "
                    "count(*) FILTER (WHERE status = 'lost') AS lost FROM cohort"
                ),
                params,
            )
        ).one()
        reached_rows = await session.execute(
            text(
                cohort + ", furthest AS (SELECT c.id, c.status, max(s.position) AS position "
                "FROM cohort c JOIN opportunity_stage_changes h "
                "ON h.workspace_id = :w AND h.opportunity_id = c.id "
                "JOIN pipeline_stages s ON s.workspace_id = :w AND s.id = h.to_stage_id "
                "AND s.type IN ('open', 'won') GROUP BY c.id, c.status) "
                "SELECT s.id, count(f.id) AS reached, "
                "count(f.id) FILTER (WHERE f.status = 'won') AS won "
                "FROM pipeline_stages s LEFT JOIN furthest f ON f.position >= s.position "
                "WHERE s.workspace_id = :w AND s.pipeline_id = :p AND s.type IN ('open', 'won') "
                "GROUP BY s.id"
            ),
            params,
        )
        reached = {row.id: (int(row.reached), int(row.won)) for row in reached_rows}
        time_rows = await session.execute(
            text(
                cohort + "SELECT h.from_stage_id AS id, "
                "CAST(round(avg(h.seconds_in_previous_stage)) AS bigint) AS average, "
                "CAST(round(CAST(percentile_cont(0.5) WITHIN GROUP "
                "(ORDER BY h.seconds_in_previous_stage) AS numeric)) AS bigint) AS median "
                "FROM cohort c JOIN opportunity_stage_changes h "
                "ON h.workspace_id = :w AND h.opportunity_id = c.id "
                "WHERE h.from_stage_id IS NOT NULL GROUP BY h.from_stage_id"
            ),
            params,
        )
        times = {row.id: (int(row.average), int(row.median)) for row in time_rows}
        reasons = await session.execute(
            text(
                cohort + "SELECT loss_reason AS reason, count(*) AS n FROM cohort "
                "WHERE status = 'lost' GROUP BY loss_reason ORDER BY n DESC, reason"
            ),
            params,
        )
        rivals = await session.execute(
            text(
                cohort + "SELECT min(k.name) AS name, "
                "count(*) FILTER (WHERE c.status = 'won') AS won, "
                "count(*) FILTER (WHERE c.status = 'lost') AS lost, "
                "count(*) FILTER (WHERE c.status = 'open') AS open "
                "FROM cohort c JOIN opportunity_competitors k "
                "ON k.workspace_id = :w AND k.opportunity_id = c.id "
                "GROUP BY lower(k.name) ORDER BY count(*) DESC, lower(k.name)"
            ),
            params,
        )
        stages = sorted(pipeline.stages, key=lambda stage: stage.position)
        progress = [stage for stage in stages if stage.type != "lost"]
        rows: list[schemas.StageAnalytics] = []
        for stage in stages:
            average, median = times.get(stage.id, (None, None))
            if stage.type == "lost":
                count = int(totals.lost)
                to_next = to_won = None
            else:
                count, won = reached.get(stage.id, (0, 0))
                index = progress.index(stage)
                following = progress[index + 1] if index + 1 < len(progress) else None
                to_next = (
                    ratio(reached.get(following.id, (0, 0))[0], count)
                    if following is not None
                    else None
                )
                to_won = ratio(won, count)
            rows.append(
                schemas.StageAnalytics(
                    stage_id=stage.id,
                    name=stage.name,
                    type=stage.type,  # type: ignore[arg-type]
                    position=stage.position,
                    reached=count,
                    conversion_to_next=to_next,
                    conversion_to_won=to_won,
                    average_seconds=average,
                    median_seconds=median,
                )
            )
        return schemas.PipelineAnalytics(
            pipeline_id=pipeline_id,
            from_date=from_date,
            to_date=to_date,
            opportunities=int(totals.n),
            won=int(totals.won),
            lost=int(totals.lost),
            win_rate=ratio(int(totals.won), int(totals.won) + int(totals.lost)),
            stages=rows,
            loss_reasons=[schemas.Ranked(reason=row.reason, count=int(row.n)) for row in reasons],
            competitors=[
                schemas.CompetitorRecord(
                    name=row.name, won=int(row.won), lost=int(row.lost), open=int(row.open)
                )
                for row in rivals
            ],
        )


analytics = SalesAnalytics()
