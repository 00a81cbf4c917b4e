"""Time per status and the report, against hand-computed figures on a fixed data set."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.case.helpers import (
    created,
    new_case,
    new_contact,
    policy,
    rewrite_history,
    set_columns,
    thai_calendar,
)
from tests.conftest import WorkspaceHandle
from tests.test_conventions import assert_problem

BKK = ZoneInfo("Asia/Bangkok")


def bkk(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=BKK)  # type: ignore[misc]


async def test_time_in_each_status(
    client: httpx.AsyncClient, workspace: WorkspaceHandle, owner_engine: AsyncEngine
) -> None:
    calendar_id = await thai_calendar(client, workspace)
    await policy(client, workspace, calendar_id)
    case = await new_case(client, workspace, await new_contact(client, workspace), priority="high")
    await rewrite_history(
        owner_engine, workspace, case["id"], bkk(2026, 11, 13, 17, 0),
        [("new", bkk(2026, 11, 13, 17, 0)), ("pending", bkk(2026, 11, 16, 8, 45)),
         ("open", bkk(2026, 11, 16, 9, 45)), ("resolved", bkk(2026, 11, 17, 12, 0)),
         ("closed", bkk(2026, 11, 17, 13, 0))],
        status="closed", first_response_at=bkk(2026, 11, 16, 10, 0),
        resolved_at=bkk(2026, 11, 17, 12, 0), closed_at=bkk(2026, 11, 17, 13, 0),
        reopen_count=0,
    )  # fmt: skip
    response = await client.get(f"/v1/cases/{case['id']}/metrics", headers=workspace.headers)
    assert response.status_code == 200, response.text
    metrics = response.json()
    assert metrics["calendar_id"] == calendar_id
    assert {row["status"]: (row["seconds"], row["business_minutes"])
            for row in metrics["time_in_status"]} == {
        # Friday 17:00 -> Monday 08:45: 63 h 45 min; business 30 (Fri) + 15 (Mon).
        "new": (229_500, 45),
        "pending": (3_600, 60),
        # Monday 09:45 -> Tuesday 12:00: 26 h 15 min; business 135 + 270 (Mon) + 210 (Tue).
        "open": (94_500, 615),
        # Tuesday 12:00 -> 13:00 is the lunch break.
        "resolved": (3_600, 0),
        "closed": (0, 0),
    }  # fmt: skip
    # First response Monday 10:00: 65 h; business 30 + 90.
    assert metrics["first_response_seconds"] == 234_000
    assert metrics["first_response_business_minutes"] == 120
    # Resolved Tuesday 12:00: 91 h; business 30 + 480 + 210.
    assert metrics["resolution_seconds"] == 327_600
    assert metrics["resolution_business_minutes"] == 720
    assert metrics["status_changes"] == 4
    assert metrics["reopen_count"] == 0


async def test_metrics_of_a_current_status_count_to_now(
    client: httpx.AsyncClient, workspace: WorkspaceHandle
) -> None:
    case = await new_case(client, workspace, await new_contact(client, workspace))
    metrics = (await client.get(f"/v1/cases/{case['id']}/metrics",
                                headers=workspace.headers)).json()  # fmt: skip
    [new] = metrics["time_in_status"]
    assert new["status"] == "new"
    assert new["seconds"] >= 0
    assert new["business_minutes"] is None
    assert metrics["first_response_seconds"] is None


def at(base: datetime, seconds: int) -> datetime:
    return base + timedelta(seconds=seconds)


async def report(client: httpx.AsyncClient, ws: WorkspaceHandle, **params: str) -> httpx.Response:
    return await client.get("/v1/cases/report", headers=ws.headers, params=params)


async def test_report_figures(
    client: httpx.AsyncClient, workspace: WorkspaceHandle, owner_engine: AsyncEngine
) -> None:
    calendar_id = await thai_calendar(client, workspace)
    await policy(client, workspace, calendar_id)
    queue = await created(client, workspace, "/v1/case-queues", {"name": "Support"})
    contact_id = await new_contact(client, workspace)
    base = datetime(2026, 11, 16, 2, 0, tzinfo=UTC)
    # High: first response after 600/1200/3000 s, resolved after 3600/7200/36000 s; due
    # +1800 s for the response and +7200/+3600/+36000 s for resolution: only A meets both.
    for first, resolved, resolution_due in ((600, 3600, 7200), (1200, 7200, 3600),
                                            (3000, 36000, 36000)):  # fmt: skip
        case = await new_case(client, workspace, contact_id, priority="high",
                              queue_id=queue["id"])  # fmt: skip
        assert case["sla"]["policy_id"] is not None
        await set_columns(
            owner_engine, workspace, case["id"], created_at=base, status="resolved",
            first_response_at=at(base, first), resolved_at=at(base, resolved),
            first_response_due_at=at(base, 1800), resolution_due_at=at(base, resolution_due),
        )  # fmt: skip
    # Normal: two still waiting, created 1 and 11 days before the end of the period.
    end = datetime(2026, 11, 21, tzinfo=UTC)
    for created_at, status in ((end - timedelta(days=1), "open"),
                               (end - timedelta(days=11), "pending")):  # fmt: skip
        case = await new_case(client, workspace, contact_id)
        extra: dict[str, Any] = (
            {"pending_reason": "waiting_on_customer"} if status == "pending" else {}
        )
        await set_columns(owner_engine, workspace, case["id"], created_at=created_at,
                          status=status, **extra)  # fmt: skip
    outside = await new_case(client, workspace, contact_id)
    await set_columns(owner_engine, workspace, outside["id"],
                      created_at=datetime(2026, 10, 1, tzinfo=UTC))  # fmt: skip

    response = await report(client, workspace, **{"from": "2026-11-01T00:00:00Z",
                                                  "to": "2026-11-21T00:00:00Z",
                                                  "group_by": "priority"})  # fmt: skip
    assert response.status_code == 200, response.text
    body = response.json()
    rows = {row["key"]: row for row in body["rows"]}
    assert sorted(rows) == ["high", "normal"]
    high = rows["high"]
    assert (high["created"], high["resolved"], high["backlog"]) == (3, 3, 0)
    assert high["median_first_response_seconds"] == 1200
    # percentile_cont(0.9) of 600, 1200, 3000: 1200 + 0.8 x 1800.
    assert high["p90_first_response_seconds"] == 2640
    assert high["median_resolution_seconds"] == 7200
    assert high["p90_resolution_seconds"] == 7200 + 0.8 * 28_800
    assert (high["sla_evaluated"], high["sla_met"], high["sla_met_rate"]) == (3, 1, 0.3333)
    assert high["median_backlog_age_seconds"] is None
    normal = rows["normal"]
    assert (normal["created"], normal["resolved"], normal["backlog"]) == (2, 0, 2)
    assert normal["median_first_response_seconds"] is None
    assert normal["sla_met_rate"] is None
    # Ages at the end of the period: 1 and 11 days.
    assert normal["median_backlog_age_seconds"] == 6 * 86_400
    assert normal["max_backlog_age_seconds"] == 11 * 86_400
    total = body["total"]
    assert (total["created"], total["resolved"], total["backlog"]) == (5, 3, 2)
    assert total["median_first_response_seconds"] == 1200
    assert body["group_by"] == "priority"

    period = {"from": "2026-11-01T00:00:00Z", "to": "2026-11-21T00:00:00Z"}
    by_queue = (await report(client, workspace, **period)).json()
    labels = {row["key"]: (row["label"], row["created"]) for row in by_queue["rows"]}
    assert labels == {queue["id"]: ("Support", 3), None: (None, 2)}


async def test_report_input(client: httpx.AsyncClient, workspace: WorkspaceHandle) -> None:
    assert_problem(
        await report(client, workspace, **{"from": "2026-11-21T00:00:00Z",
                                           "to": "2026-11-01T00:00:00Z"}),
        422, "validation_error",
    )  # fmt: skip
    assert_problem(
        await report(client, workspace, **{"from": "2026-11-01T00:00:00Z",
                                           "to": "2026-11-21T00:00:00Z", "group_by": "mood"}),
        422, "validation_error",
    )  # fmt: skip
    assert_problem(await report(client, workspace, to="2026-11-21T00:00:00Z"), 422,
                   "validation_error")  # fmt: skip
    empty = await report(client, workspace, **{"from": "2026-11-01T00:00:00Z",
                                               "to": "2026-11-21T00:00:00Z"})  # fmt: skip
    assert empty.json()["rows"] == []
    assert empty.json()["total"]["created"] == 0
