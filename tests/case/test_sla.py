"""SLA clocks against hand-computed business times (Thai calendar: Mon-Fri 08:30-12:00 and
13:00-17:30, Asia/Bangkok, UTC+7), pauses, policy changes, and the sweep's events."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from app.case.business_time import business_minutes_between, calendar_from
from app.db.session import Database
from app.jobs.registry import periodic_job
from app.jobs.runner import run_in_workspace
from tests.case.helpers import (
    THAI_HOURS,
    created,
    events,
    get_case,
    new_case,
    new_contact,
    policy,
    post,
    rewrite_history,
    thai_calendar,
    transition,
)
from tests.conftest import WorkspaceHandle
from tests.test_conventions import assert_problem

BKK = ZoneInfo("Asia/Bangkok")


def bkk(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=BKK)  # type: ignore[misc]


async def patch(
    client: httpx.AsyncClient, ws: WorkspaceHandle, path: str, body: dict[str, Any]
) -> dict[str, Any]:
    response = await client.patch(path, headers=ws.headers, json=body)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def sweep(database: Database, ws: WorkspaceHandle) -> int | None:
    return await run_in_workspace(database, periodic_job("case-sla-sweep"), ws.id)


async def backdated_case(
    client: httpx.AsyncClient, ws: WorkspaceHandle, owner_engine: AsyncEngine
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A high-priority case created Friday 13 November 2026 17:00 in Bangkok, opened at 17:05,
    pending Monday 16th 08:45-09:45 (60 business minutes), open since. The policy's targets
    are then set to 60 / 480 minutes, which recomputes the due times."""
    calendar_id = await thai_calendar(client, ws)
    rule = await policy(client, ws, calendar_id, first_response_minutes=61,
                        resolution_minutes=481)  # fmt: skip
    contact_id = await new_contact(client, ws)
    case = await new_case(client, ws, contact_id, priority="high")
    assert case["sla"]["policy_id"] == rule["id"]
    await rewrite_history(
        owner_engine, ws, case["id"], bkk(2026, 11, 13, 17, 0),
        [("new", bkk(2026, 11, 13, 17, 0)), ("open", bkk(2026, 11, 13, 17, 5)),
         ("pending", bkk(2026, 11, 16, 8, 45)), ("open", bkk(2026, 11, 16, 9, 45))],
        status="open",
    )  # fmt: skip
    rule = await patch(
        client, ws, f"/v1/sla-policies/{rule['id']}",
        {"first_response_minutes": 60, "resolution_minutes": 480},
    )  # fmt: skip
    return await get_case(client, ws, case["id"]), rule


class TestDueTimes:
    async def test_due_times_skip_the_weekend_lunch_and_the_pause(
        self, client: httpx.AsyncClient, workspace: WorkspaceHandle, owner_engine: AsyncEngine
    ) -> None:
        case, _ = await backdated_case(client, workspace, owner_engine)
        sla = case["sla"]
        assert sla["paused"] is False
        assert sla["paused_business_minutes"] == 60
        # First response: 60 + 60 paused = 120 business minutes from Friday 17:00:
        # 30 on Friday, 90 from Monday 08:30 -> Monday 10:00 (03:00Z).
        assert sla["first_response"]["due_at"] == "2026-11-16T03:00:00Z"
        # Resolution: 480 + 60 = 540: 30 Friday, 480 Monday (08:30-12:00, 13:00-17:30),
        # 30 Tuesday from 08:30 -> Tuesday 09:00 (02:00Z).
        assert sla["resolution"]["due_at"] == "2026-11-17T02:00:00Z"
        assert case["first_response_due_at"] == "2026-11-16T03:00:00Z"
        assert case["resolution_due_at"] == "2026-11-17T02:00:00Z"
        for target in ("first_response", "resolution"):
            assert sla[target]["breached"] is True
            assert sla[target]["met"] is False
            assert sla[target]["remaining_business_minutes"] < 0

    async def test_policy_change_keeps_the_paused_time(
        self, client: httpx.AsyncClient, workspace: WorkspaceHandle, owner_engine: AsyncEngine
    ) -> None:
        case, rule = await backdated_case(client, workspace, owner_engine)
        urgent = await created(
            client, workspace, "/v1/sla-policies",
            {"name": "Urgent", "priority": "urgent", "calendar_id": rule["calendar_id"],
             "first_response_minutes": 30, "resolution_minutes": 240},
        )  # fmt: skip
        changed = await patch(client, workspace, f"/v1/cases/{case['id']}", {"priority": "urgent"})
        sla = changed["sla"]
        assert sla["policy_id"] == urgent["id"]
        assert sla["paused_business_minutes"] == 60
        # 30 + 60 = 90: 30 Friday, 60 Monday from 08:30 -> 09:30 (02:30Z).
        assert sla["first_response"]["due_at"] == "2026-11-16T02:30:00Z"
        # 240 + 60 = 300: 30 Friday, 210 Monday morning, 60 after lunch -> 14:00 (07:00Z).
        assert sla["resolution"]["due_at"] == "2026-11-16T07:00:00Z"

    async def test_calendar_change_recomputes_with_its_holidays(
        self, client: httpx.AsyncClient, workspace: WorkspaceHandle, owner_engine: AsyncEngine
    ) -> None:
        case, rule = await backdated_case(client, workspace, owner_engine)
        await patch(
            client, workspace, f"/v1/business-calendars/{rule['calendar_id']}",
            {"holidays": ["2026-11-16"]},
        )  # fmt: skip
        sla = (await get_case(client, workspace, case["id"]))["sla"]
        # Monday is now a holiday: the pause counts nothing, 60 minutes from Friday 17:00 is
        # 30 Friday + 30 Tuesday -> Tuesday 09:00 (02:00Z).
        assert sla["paused_business_minutes"] == 0
        assert sla["first_response"]["due_at"] == "2026-11-17T02:00:00Z"

    async def test_met_first_response(
        self, client: httpx.AsyncClient, workspace: WorkspaceHandle, owner_engine: AsyncEngine
    ) -> None:
        calendar_id = await thai_calendar(client, workspace)
        rule = await policy(client, workspace, calendar_id, first_response_minutes=61)
        case = await new_case(client, workspace, await new_contact(client, workspace),
                              priority="high")  # fmt: skip
        await rewrite_history(
            owner_engine, workspace, case["id"], bkk(2026, 11, 16, 10, 0),
            [("new", bkk(2026, 11, 16, 10, 0))],
        )  # fmt: skip
        await patch(client, workspace, f"/v1/sla-policies/{rule['id']}",
                    {"first_response_minutes": 60})  # fmt: skip
        due = (await get_case(client, workspace, case["id"]))["sla"]["first_response"]
        # Monday 10:00 + 60 business minutes = 11:00 (04:00Z).
        assert due["due_at"] == "2026-11-16T04:00:00Z"
        await rewrite_history(
            owner_engine, workspace, case["id"], bkk(2026, 11, 16, 10, 0),
            [("new", bkk(2026, 11, 16, 10, 0)), ("open", bkk(2026, 11, 16, 10, 30))],
            status="open", first_response_at=bkk(2026, 11, 16, 10, 30),
        )  # fmt: skip
        # A later policy change keeps the due time the response was measured against.
        await patch(client, workspace, f"/v1/sla-policies/{rule['id']}",
                    {"first_response_minutes": 15})  # fmt: skip
        first = (await get_case(client, workspace, case["id"]))["sla"]["first_response"]
        assert first["due_at"] == "2026-11-16T04:00:00Z"
        assert first["completed_at"] == "2026-11-16T03:30:00Z"
        assert (first["met"], first["breached"]) == (True, False)
        assert first["remaining_business_minutes"] is None

    async def test_resuming_adds_the_business_time_paused(
        self, client: httpx.AsyncClient, workspace: WorkspaceHandle, owner_engine: AsyncEngine
    ) -> None:
        calendar_id = await thai_calendar(client, workspace)
        rule = await policy(client, workspace, calendar_id, first_response_minutes=61)
        case = await new_case(client, workspace, await new_contact(client, workspace),
                              priority="high")  # fmt: skip
        paused_at = bkk(2026, 11, 16, 8, 45)
        await rewrite_history(
            owner_engine, workspace, case["id"], bkk(2026, 11, 13, 17, 0),
            [("new", bkk(2026, 11, 13, 17, 0)), ("pending", paused_at)],
            status="pending", pending_reason="waiting_on_customer", paused_since=paused_at,
        )  # fmt: skip
        await patch(client, workspace, f"/v1/sla-policies/{rule['id']}",
                    {"first_response_minutes": 60})  # fmt: skip
        waiting = await get_case(client, workspace, case["id"])
        assert waiting["sla"]["paused"] is True
        assert waiting["sla"]["first_response"]["due_at"] == "2026-11-16T02:00:00Z"
        # Frozen while paused: from the pause (Monday 08:45) to the due time (Monday 09:00).
        assert waiting["sla"]["first_response"]["remaining_business_minutes"] == 15
        resumed = await transition(client, workspace, case["id"], "open")
        assert resumed.status_code == 200, resumed.text
        rows = (await client.get(f"/v1/cases/{case['id']}/history",
                                 headers=workspace.headers)).json()["data"]  # fmt: skip
        resumed_at = datetime.fromisoformat(rows[-1]["at"])
        thai = calendar_from("Asia/Bangkok", THAI_HOURS, ["2026-12-07"])
        expected = business_minutes_between(thai, paused_at, resumed_at)
        sla = resumed.json()["sla"]
        assert sla["paused"] is False
        assert abs(sla["paused_business_minutes"] - expected) < 0.01
        assert expected > 60 * 8  # a week of working days since


class TestSweep:
    async def test_warning_and_breach_once_each(
        self,
        client: httpx.AsyncClient,
        workspace: WorkspaceHandle,
        owner_engine: AsyncEngine,
        database: Database,
    ) -> None:
        case, _ = await backdated_case(client, workspace, owner_engine)
        # A pending case's clock is stopped: the sweep leaves it alone.
        waiting = await new_case(client, workspace, case["contact_id"], priority="high")
        await transition(client, workspace, waiting["id"], "pending", reason="waiting_on_customer")

        results = await asyncio.gather(sweep(database, workspace), sweep(database, workspace))
        assert sum(result or 0 for result in results) == 4
        emitted = await events(owner_engine, workspace, "case.sla_warning", "case.sla_breached")
        assert sorted((e.type, e.data["target"]) for e in emitted) == [
            ("case.sla_breached", "first_response"),
            ("case.sla_breached", "resolution"),
            ("case.sla_warning", "first_response"),
            ("case.sla_warning", "resolution"),
        ]
        assert {str(e.aggregate_id) for e in emitted} == {case["id"]}
        breach = next(e for e in emitted if e.data["target"] == "first_response"
                      and e.type == "case.sla_breached")  # fmt: skip
        assert breach.data["at"] == "2026-11-16T03:00:00+00:00"

        assert await sweep(database, workspace) == 0
        again = await events(owner_engine, workspace, "case.sla_warning", "case.sla_breached")
        assert len(again) == 4

        breached = await client.get(
            "/v1/cases", headers=workspace.headers, params={"breached": True}
        )
        assert [c["id"] for c in breached.json()["data"]] == [case["id"]]


class TestValidation:
    async def test_calendars(self, client: httpx.AsyncClient, workspace: WorkspaceHandle) -> None:
        base = {"name": "Cal", "time_zone": "Asia/Ho_Chi_Minh", "hours": THAI_HOURS}
        bad = [
            ({"hours": {"mon": [["08:00", "12:00"], ["11:00", "13:00"]]}}, "hours.mon"),
            ({"hours": {"mon": [["12:00", "08:00"]]}}, "hours.mon"),
            ({"hours": {"mon": [["8am", "12:00"]]}}, "hours.mon.0.0"),
            ({"hours": {"funday": [["08:00", "12:00"]]}}, "hours.funday"),
            ({"hours": {}}, "hours"),
            ({"time_zone": "Mars/Olympus"}, "time_zone"),
            ({"time_zone": "+07:00"}, "time_zone"),
            ({"holidays": ["2026-02-30"]}, "holidays.0"),
            ({"name": ""}, "name"),
        ]
        for change, field in bad:
            problem = assert_problem(
                await post(client, workspace, "/v1/business-calendars", {**base, **change}),
                422, "validation_error",
            )  # fmt: skip
            fields = [error["field"] for error in problem["errors"]]
            assert any(f.startswith(field) for f in fields), (change, fields)
        made = await created(client, workspace, "/v1/business-calendars", base)
        assert made["hours"]["mon"] == [["08:30", "12:00"], ["13:00", "17:30"]]
        twin = await post(client, workspace, "/v1/business-calendars", base)
        assert_problem(twin, 409, "duplicate")

    async def test_policies(self, client: httpx.AsyncClient, workspace: WorkspaceHandle) -> None:
        calendar_id = await thai_calendar(client, workspace)
        base = {"name": "P", "priority": "high", "calendar_id": calendar_id,
                "first_response_minutes": 60, "resolution_minutes": 480}  # fmt: skip
        bad = [
            ({"first_response_minutes": -5}, "first_response_minutes"),
            ({"resolution_minutes": 0}, "resolution_minutes"),
            ({"next_response_minutes": -1}, "next_response_minutes"),
            ({"first_response_minutes": "60"}, "first_response_minutes"),
            ({"warning_percent": 100}, "warning_percent"),
            ({"priority": "critical"}, "priority"),
            ({"calendar_id": "01a203ac-1022-7102-9d8c-88190aa27e2e"}, "calendar_id"),
        ]
        for change, field in bad:
            problem = assert_problem(
                await post(client, workspace, "/v1/sla-policies", {**base, **change}),
                422, "validation_error",
            )  # fmt: skip
            assert field in [e["field"] for e in problem["errors"]], (change, problem)
        made = await created(client, workspace, "/v1/sla-policies", base)
        negative = await client.patch(
            f"/v1/sla-policies/{made['id']}", headers=workspace.headers,
            json={"resolution_minutes": -1},
        )  # fmt: skip
        assert_problem(negative, 422, "validation_error")
        # In use: the calendar by the policy, the policy by a case.
        in_use = await client.delete(f"/v1/business-calendars/{calendar_id}",
                                     headers=workspace.headers)  # fmt: skip
        assert_problem(in_use, 409, "in_use")
        await new_case(client, workspace, await new_contact(client, workspace), priority="high")
        used = await client.delete(f"/v1/sla-policies/{made['id']}", headers=workspace.headers)
        assert_problem(used, 409, "in_use")


async def test_next_response_starts_with_a_customer_reply(
    client: httpx.AsyncClient, workspace: WorkspaceHandle
) -> None:
    always = {
        day: [["00:00", "24:00"]] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
    }
    calendar = await created(
        client, workspace, "/v1/business-calendars",
        {"name": "24/7", "time_zone": "Europe/Berlin", "hours": always},
    )  # fmt: skip
    await policy(client, workspace, calendar["id"], priority="normal", next_response_minutes=30)
    contact_id = await new_contact(client, workspace)
    case = await new_case(client, workspace, contact_id)
    assert case["sla"]["next_response"]["due_at"] is None
    reply = await created(
        client, workspace, "/v1/interactions",
        {"contact_id": contact_id, "channel": "email", "direction": "inbound", "type": "email",
         "occurred_at": "2026-11-20T10:00:00+07:00", "case_id": case["id"]},
    )  # fmt: skip
    due = (await get_case(client, workspace, case["id"]))["sla"]["next_response"]["due_at"]
    # Every minute is a business minute: due 30 minutes after the reply was recorded (the
    # database clock moves on a little within the transaction).
    gap = datetime.fromisoformat(due) - datetime.fromisoformat(reply["created_at"])
    assert timedelta(minutes=30) <= gap < timedelta(minutes=31)
    await post(client, workspace, f"/v1/cases/{case['id']}/comments",
               {"body": "Answered", "public": True})  # fmt: skip
    answered = await get_case(client, workspace, case["id"])
    assert answered["sla"]["next_response"]["due_at"] is None


async def test_sweep_closes_resolved_cases_after_the_reopen_window(
    client: httpx.AsyncClient,
    workspace: WorkspaceHandle,
    owner_engine: AsyncEngine,
    database: Database,
) -> None:
    calendar_id = await thai_calendar(client, workspace)
    await policy(client, workspace, calendar_id, reopen_window_hours=0)
    contact_id = await new_contact(client, workspace)
    expired = await new_case(client, workspace, contact_id, priority="high")
    kept = await new_case(client, workspace, contact_id, priority="normal")  # 7 days, no policy
    for case in (expired, kept):
        assert (await transition(client, workspace, case["id"], "resolved")).status_code == 200
    await sweep(database, workspace)
    closed = await get_case(client, workspace, expired["id"])
    assert closed["status"] == "closed"
    assert closed["closed_at"] is not None
    assert (await get_case(client, workspace, kept["id"]))["status"] == "resolved"
    rows = (await client.get(f"/v1/cases/{expired['id']}/history",
                             headers=workspace.headers)).json()["data"]  # fmt: skip
    last = rows[-1]
    assert (last["from_value"], last["to_value"], last["reason"], last["api_key_id"]) == (
        "resolved", "closed", "reopen window passed", None,
    )  # fmt: skip
    changes = await events(owner_engine, workspace, "case.status_changed")
    assert [(e.data["from"], e.data["to"]) for e in changes][-1] == ("resolved", "closed")
    await sweep(database, workspace)
    assert len(await events(owner_engine, workspace, "case.status_changed")) == len(changes)
