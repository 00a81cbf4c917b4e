"""Case reporting: counts, response and resolution percentiles, SLA met rate, backlog age."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.dependencies import AuthContext
from app.case import schemas
from app.case.repository import CaseRepository
from app.kit.errors import FieldError, ValidationFailed


def _row(values: Any) -> schemas.ReportRow:
    def number(value: Any) -> float | None:
        return round(float(value), 3) if value is not None else None

    evaluated, met = int(values.sla_evaluated), int(values.sla_met)
    return schemas.ReportRow(
        key=values.key,
        label=values.label if values.label is not None else values.key,
        created=int(values.created),
        resolved=int(values.resolved),
        backlog=int(values.backlog),
        median_first_response_seconds=number(values.fr_p50),
        p90_first_response_seconds=number(values.fr_p90),
        median_resolution_seconds=number(values.res_p50),
        p90_resolution_seconds=number(values.res_p90),
        sla_evaluated=evaluated,
        sla_met=met,
        sla_met_rate=round(met / evaluated, 4) if evaluated else None,
        median_backlog_age_seconds=number(values.age_p50),
        max_backlog_age_seconds=number(values.age_max),
    )


class ReportService:
    async def build(
        self,
        session: AsyncSession,
        auth: AuthContext,
        start: datetime,
        end: datetime,
        group_by: str,
    ) -> schemas.Report:
        """Cases created in ``[start, end)`` grouped by ``group_by``, with a total row.

        Percentiles are continuous (``percentile_cont``) over wall-clock seconds; cases
        without a first response or resolution are left out of those figures.

        Raises:
            ValidationFailed: ``start`` is not before ``end``.
        """
        if start >= end:
            raise ValidationFailed(
                "`from` must be before `to`",
                errors=[FieldError(field="query.from", message="must be before `to`")],
            )
        rows = await CaseRepository(session).report(auth.workspace_id, start, end, group_by)
        groups = [_row(row) for row in rows if not row.is_total]
        totals = [_row(row) for row in rows if row.is_total]
        total = totals[0] if totals else _row(_EMPTY)
        return schemas.Report(
            period_start=start, period_end=end, group_by=group_by,  # type: ignore[arg-type]
            rows=groups, total=total,
        )  # fmt: skip


class _Empty:
    key = label = None
    created = resolved = backlog = sla_evaluated = sla_met = 0
    fr_p50 = fr_p90 = res_p50 = res_p90 = age_p50 = age_max = None


_EMPTY = _Empty()
report = ReportService()
