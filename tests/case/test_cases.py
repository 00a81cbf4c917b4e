"""Cases over HTTP: creation, numbers, the status workflow, comments, notify-back, concurrency."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from app.auth.scopes import Scope
from tests.case.helpers import (
    created,
    events,
    get_case,
    new_case,
    new_contact,
    post,
    transition,
)
from tests.conftest import WorkspaceHandle
from tests.test_conventions import assert_problem

MISSING = "01a203ac-1022-7102-9d8c-88190aa27e2e"


async def history(client: httpx.AsyncClient, ws: WorkspaceHandle, case_id: str) -> list[Any]:
    response = await client.get(f"/v1/cases/{case_id}/history", headers=ws.headers)
    assert response.status_code == 200, response.text
    data: list[Any] = response.json()["data"]
    return data


async def interactions_of(
    client: httpx.AsyncClient, ws: WorkspaceHandle, case_id: str
) -> list[dict[str, Any]]:
    response = await client.get(
        "/v1/interactions", headers=ws.headers, params={"case_id": case_id, "sort": "created_at"}
    )
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


class TestCreate:
    async def test_numbers_status_history_and_etag(
        self, client: httpx.AsyncClient, workspace: WorkspaceHandle, owner_engine: AsyncEngine
    ) -> None:
        contact_id = await new_contact(client, workspace)
        response = await post(
            client, workspace, "/v1/cases",
            {"contact_id": contact_id, "subject": "Broken kettle", "channel": "phone",
             "priority": "high", "category": "product", "external_ids": {"zendesk": "T-1"}},
        )  # fmt: skip
        assert response.status_code == 201, response.text
        first = response.json()
        assert response.headers["location"] == f"/v1/cases/{first['id']}"
        assert response.headers["etag"] == f'"{first["version"]}"'
        assert first["number"] == "CASE-000001"
        assert first["status"] == "new"
        assert first["allowed_transitions"] == ["open", "pending", "resolved"]
        assert first["sla"]["policy_id"] is None
        assert first["sla"]["first_response"]["due_at"] is None
        second = await new_case(client, workspace, contact_id)
        assert second["number"] == "CASE-000002"

        by_number = await client.get("/v1/cases/by-number/case-000001", headers=workspace.headers)
        assert by_number.status_code == 200
        assert by_number.json()["id"] == first["id"]
        by_key = await client.get("/v1/cases/by-external-id/zendesk/T-1", headers=workspace.headers)
        assert by_key.json()["id"] == first["id"]
        rows = await history(client, workspace, first["id"])
        assert [(r["field"], r["from_value"], r["to_value"]) for r in rows] == [
            ("status", None, "new")
        ]
        assert rows[0]["api_key_id"] == str(workspace.admin_key_id)
        assert [e.type for e in await events(owner_engine, workspace, "case.created")] == [
            "case.created",
            "case.created",
        ]

    async def test_numbers_are_unique_under_concurrency(
        self, client: httpx.AsyncClient, workspace: WorkspaceHandle
    ) -> None:
        contact_id = await new_contact(client, workspace)
        responses = await asyncio.gather(
            *(post(client, workspace, "/v1/cases", {"contact_id": contact_id, "subject": f"S{i}"})
              for i in range(8))
        )  # fmt: skip
        assert all(r.status_code == 201 for r in responses), [r.text for r in responses]
        numbers = sorted(r.json()["number"] for r in responses)
        assert len(set(numbers)) == 8

    async def test_each_workspace_counts_on_its_own(
        self, client: httpx.AsyncClient, make_workspace: Any
    ) -> None:
        for _ in range(2):
            ws = await make_workspace()
            contact_id = await new_contact(client, ws)
            assert (await new_case(client, ws, contact_id))["number"] == "CASE-000001"

    async def test_bad_input_names_the_field(
        self, client: httpx.AsyncClient, workspace: WorkspaceHandle
    ) -> None:
        contact_id = await new_contact(client, workspace)
        cases = [
            ({"subject": "x"}, "contact_id"),
            ({"contact_id": contact_id}, "subject"),
            ({"contact_id": contact_id, "subject": "x", "priority": "asap"}, "priority"),
            ({"contact_id": contact_id, "subject": "x", "queue_id": MISSING}, "queue_id"),
            ({"contact_id": contact_id, "subject": "x", "account_id": MISSING}, "account_id"),
            ({"contact_id": contact_id, "subject": "x", "status": "open"}, "status"),
            ({"contact_id": contact_id, "subject": "x", "source_interaction_id": MISSING},
             "source_interaction_id"),
        ]  # fmt: skip
        for body, field in cases:
            problem = assert_problem(
                await post(client, workspace, "/v1/cases", body), 422, "validation_error"
            )
            assert field in [e["field"] for e in problem["errors"]], (body, problem)
        unknown = await post(
            client, workspace, "/v1/cases", {"contact_id": MISSING, "subject": "x"}
        )
        assert_problem(unknown, 404, "not_found")
        listed = await client.get("/v1/cases", headers=workspace.headers)
        assert listed.json()["data"] == []

    async def test_from_a_complaint_interaction(
        self, client: httpx.AsyncClient, workspace: WorkspaceHandle
    ) -> None:
        contact_id = await new_contact(client, workspace)
        complaint = await created(
            client, workspace, "/v1/interactions",
            {"contact_id": contact_id, "channel": "social", "direction": "inbound",
             "type": "complaint", "occurred_at": "2026-11-20T10:00:00+07:00",
             "subject": "Rude staff at Siam branch",
             "feedback": {"kind": "indirect", "sentiment": "negative"}},
        )  # fmt: skip
        case = await created(
            client, workspace, "/v1/cases", {"source_interaction_id": complaint["id"]}
        )
        assert case["contact_id"] == contact_id
        assert case["channel"] == "social"
        assert case["subject"] == "Rude staff at Siam branch"
        assert case["source_interaction_id"] == complaint["id"]
        linked = await client.get(f"/v1/interactions/{complaint['id']}", headers=workspace.headers)
        assert linked.json()["case_id"] == case["id"]

    async def test_scopes(self, client: httpx.AsyncClient, workspace: WorkspaceHandle) -> None:
        contact_id = await new_contact(client, workspace)
        case = await new_case(client, workspace, contact_id)
        reader = await workspace.key(Scope.cases_read)
        assert (await client.get(f"/v1/cases/{case['id']}", headers=reader)).status_code == 200
        refused = await client.post(
            "/v1/cases", headers=reader, json={"contact_id": contact_id, "subject": "x"}
        )
        assert_problem(refused, 403, "forbidden")
        other = await workspace.key(Scope.contacts_read)
        assert_problem(await client.get(f"/v1/cases/{case['id']}", headers=other), 403, "forbidden")

    async def test_another_workspace_sees_nothing(
        self, client: httpx.AsyncClient, make_workspace: Any
    ) -> None:
        ws, other = await make_workspace(), await make_workspace()
        case = await new_case(client, ws, await new_contact(client, ws))
        assert_problem(await client.get(f"/v1/cases/{case['id']}", headers=other.headers),
                       404, "not_found")  # fmt: skip
        assert_problem(await transition(client, other, case["id"], "open"), 404, "not_found")


class TestTransitions:
    async def test_full_workflow_with_history_and_events(
        self, client: httpx.AsyncClient, workspace: WorkspaceHandle, owner_engine: AsyncEngine
    ) -> None:
        contact_id = await new_contact(client, workspace)
        case = await new_case(client, workspace, contact_id)
        opened = await transition(client, workspace, case["id"], "open")
        assert opened.status_code == 200, opened.text
        assert opened.json()["status"] == "open"
        no_reason = await transition(client, workspace, case["id"], "pending")
        problem = assert_problem(no_reason, 422, "validation_error")
        assert "reason" in problem["errors"][0]["message"]
        pending = await transition(
            client, workspace, case["id"], "pending", reason="waiting_on_customer", note="asked"
        )
        assert pending.json()["pending_reason"] == "waiting_on_customer"
        assert pending.json()["sla"]["paused"] is True
        assert (await transition(client, workspace, case["id"], "open")).status_code == 200
        resolved = await transition(client, workspace, case["id"], "resolved", note="Replaced")
        assert resolved.json()["resolved_at"] is not None
        assert resolved.json()["allowed_transitions"] == ["open", "closed"]
        closed = await transition(client, workspace, case["id"], "closed")
        assert closed.json()["closed_at"] is not None

        rows = await history(client, workspace, case["id"])
        assert [(r["from_value"], r["to_value"]) for r in rows] == [
            (None, "new"), ("new", "open"), ("open", "pending"), ("pending", "open"),
            ("open", "resolved"), ("resolved", "closed"),
        ]  # fmt: skip
        assert rows[2]["reason"] == "asked"
        ats = [r["at"] for r in rows]
        assert ats == sorted(ats)
        changed = await events(owner_engine, workspace, "case.status_changed")
        assert [(e.data["from"], e.data["to"]) for e in changed][-1] == ("resolved", "closed")
        assert len(await events(owner_engine, workspace, "case.resolved")) == 1

    async def test_illegal_transition_lists_the_allowed_ones(
        self, client: httpx.AsyncClient, workspace: WorkspaceHandle
    ) -> None:
        case = await new_case(client, workspace, await new_contact(client, workspace))
        problem = assert_problem(
            await transition(client, workspace, case["id"], "closed"), 409, "illegal_transition"
        )
        assert problem["allowed"] == ["open", "pending", "resolved"]
        assert problem["current_status"] == "new"
        assert problem["errors"][0]["field"] == "to"
        await transition(client, workspace, case["id"], "resolved")
        await transition(client, workspace, case["id"], "closed")
        final = assert_problem(
            await transition(client, workspace, case["id"], "open"), 409, "illegal_transition"
        )
        assert final["allowed"] == []
        bad = await transition(client, workspace, case["id"], "archived")
        assert_problem(bad, 422, "validation_error")
        assert len(await history(client, workspace, case["id"])) == 3

    async def test_resolving_notifies_the_customer_on_the_channel_of_origin(
        self, client: httpx.AsyncClient, workspace: WorkspaceHandle, owner_engine: AsyncEngine
    ) -> None:
        contact_id = await new_contact(client, workspace)
        case = await new_case(client, workspace, contact_id, channel="sms")
        await transition(client, workspace, case["id"], "resolved", note="Refund sent")
        notes = await interactions_of(client, workspace, case["id"])
        assert len(notes) == 1
        note = notes[0]
        assert (note["type"], note["direction"], note["channel"]) == (
            "notification", "outbound", "sms",
        )  # fmt: skip
        assert note["contact_id"] == contact_id
        assert note["body"] == "Refund sent"
        assert "CASE-000001" in note["subject"]
        resolved = await events(owner_engine, workspace, "case.resolved")
        assert resolved[0].data["id"] == case["id"]
        assert resolved[0].data["status"] == "resolved"

    async def test_reopen_within_the_window_counts(
        self, client: httpx.AsyncClient, workspace: WorkspaceHandle, owner_engine: AsyncEngine
    ) -> None:
        case = await new_case(client, workspace, await new_contact(client, workspace))
        await transition(client, workspace, case["id"], "resolved")
        reopened = await transition(client, workspace, case["id"], "open")
        assert reopened.status_code == 200, reopened.text
        body = reopened.json()
        assert body["reopen_count"] == 1
        assert body["resolved_at"] is None
        assert len(await events(owner_engine, workspace, "case.reopened")) == 1

    async def test_reopen_after_the_window_is_refused(
        self, client: httpx.AsyncClient, workspace: WorkspaceHandle
    ) -> None:
        calendar = await created(
            client, workspace, "/v1/business-calendars",
            {"name": "Always", "time_zone": "UTC",
             "hours": {d: [["00:00", "24:00"]] for d in ("mon", "tue", "wed", "thu", "fri",
                                                         "sat", "sun")}},
        )  # fmt: skip
        await created(
            client, workspace, "/v1/sla-policies",
            {"name": "Normal", "priority": "normal", "calendar_id": calendar["id"],
             "first_response_minutes": 60, "resolution_minutes": 600, "reopen_window_hours": 0},
        )  # fmt: skip
        case = await new_case(client, workspace, await new_contact(client, workspace))
        await transition(client, workspace, case["id"], "resolved")
        problem = assert_problem(
            await transition(client, workspace, case["id"], "open"), 409, "reopen_window_closed"
        )
        assert problem["errors"][0]["field"] == "to"
        assert (await get_case(client, workspace, case["id"]))["status"] == "resolved"

    async def test_concurrent_transitions_one_wins(
        self, client: httpx.AsyncClient, workspace: WorkspaceHandle
    ) -> None:
        case = await new_case(client, workspace, await new_contact(client, workspace))
        opened = await transition(client, workspace, case["id"], "open")
        etag = opened.headers["etag"]
        attempts = await asyncio.gather(
            *(
                client.post(
                    f"/v1/cases/{case['id']}/transitions",
                    headers={**workspace.headers, "If-Match": etag},
                    json={
                        "to": to,
                        **({"reason": "waiting_on_customer"} if to == "pending" else {}),
                    },
                )
                for to in ["pending", "resolved"] * 4
            )
        )
        statuses = sorted(response.status_code for response in attempts)
        assert statuses == [200] + [412] * 7, [r.text for r in attempts]
        for response in attempts:
            if response.status_code == 412:
                assert_problem(response, 412, "precondition_failed")
        rows = await history(client, workspace, case["id"])
        assert [r["to_value"] for r in rows][:2] == ["new", "open"]
        assert len(rows) == 3
        winner = next(r for r in attempts if r.status_code == 200).json()
        assert rows[2]["to_value"] == winner["status"]
        assert rows[2]["from_value"] == "open"

    async def test_concurrent_transitions_without_if_match(
        self, client: httpx.AsyncClient, workspace: WorkspaceHandle
    ) -> None:
        case = await new_case(client, workspace, await new_contact(client, workspace))
        attempts = await asyncio.gather(
            *(transition(client, workspace, case["id"], "open") for _ in range(6))
        )
        statuses = sorted(r.status_code for r in attempts)
        assert statuses == [200] + [409] * 5
        rows = await history(client, workspace, case["id"])
        assert [(r["from_value"], r["to_value"]) for r in rows] == [(None, "new"), ("new", "open")]


class TestComments:
    async def test_internal_and_public_comments(
        self, client: httpx.AsyncClient, workspace: WorkspaceHandle, owner_engine: AsyncEngine
    ) -> None:
        contact_id = await new_contact(client, workspace)
        case = await new_case(client, workspace, contact_id, channel="chat")
        internal = await created(
            client, workspace, f"/v1/cases/{case['id']}/comments",
            {"body": "Check the courier", "author": "ploy"},
        )  # fmt: skip
        assert internal["public"] is False
        assert internal["interaction_id"] is None
        after_internal = await get_case(client, workspace, case["id"])
        assert after_internal["first_response_at"] is None
        assert after_internal["status"] == "new"

        public = await created(
            client, workspace, f"/v1/cases/{case['id']}/comments",
            {"body": "We are on it", "public": True, "author": "ploy"},
        )  # fmt: skip
        assert public["interaction_id"] is not None
        answered = await get_case(client, workspace, case["id"])
        assert answered["first_response_at"] == public["created_at"]
        assert answered["status"] == "open"
        sent = await interactions_of(client, workspace, case["id"])
        assert [(i["id"], i["direction"], i["channel"], i["body"]) for i in sent] == [
            (public["interaction_id"], "outbound", "chat", "We are on it")
        ]
        second = await created(
            client, workspace, f"/v1/cases/{case['id']}/comments",
            {"body": "Update: shipped", "public": True},
        )  # fmt: skip
        again = await get_case(client, workspace, case["id"])
        assert again["first_response_at"] == public["created_at"]
        listed = await client.get(f"/v1/cases/{case['id']}/comments", headers=workspace.headers)
        assert [c["id"] for c in listed.json()["data"]] == [
            internal["id"], public["id"], second["id"],
        ]  # fmt: skip
        only_public = await client.get(
            f"/v1/cases/{case['id']}/comments", headers=workspace.headers, params={"public": True}
        )
        assert len(only_public.json()["data"]) == 2
        assert len(await events(owner_engine, workspace, "case.commented")) == 2

    async def test_comment_on_a_closed_case_is_refused(
        self, client: httpx.AsyncClient, workspace: WorkspaceHandle
    ) -> None:
        case = await new_case(client, workspace, await new_contact(client, workspace))
        await transition(client, workspace, case["id"], "resolved")
        await transition(client, workspace, case["id"], "closed")
        refused = await post(
            client, workspace, f"/v1/cases/{case['id']}/comments", {"body": "hello"}
        )
        problem = assert_problem(refused, 409, "case_closed")
        assert problem["errors"][0]["field"] == "case_id"
        empty = await post(client, workspace, f"/v1/cases/{case['id']}/comments", {"body": " "})
        assert_problem(empty, 422, "validation_error")

    async def test_customer_reply_reopens_a_pending_case(
        self, client: httpx.AsyncClient, workspace: WorkspaceHandle
    ) -> None:
        contact_id = await new_contact(client, workspace)
        case = await new_case(client, workspace, contact_id)
        await transition(client, workspace, case["id"], "open")
        await transition(client, workspace, case["id"], "pending", reason="waiting_on_customer")
        # An outbound message on the case does not count as the customer's reply.
        await created(
            client, workspace, "/v1/interactions",
            {"contact_id": contact_id, "channel": "email", "direction": "outbound",
             "type": "email", "occurred_at": "2026-11-20T10:00:00+07:00", "case_id": case["id"]},
        )  # fmt: skip
        assert (await get_case(client, workspace, case["id"]))["status"] == "pending"
        reply = await post(
            client, workspace, "/v1/interactions/batch",
            {"items": [{"contact_id": contact_id, "channel": "email", "direction": "inbound",
                        "type": "email", "occurred_at": "2026-11-20T11:00:00+07:00",
                        "body": "Here is the photo", "case_id": case["id"]}]},
        )  # fmt: skip
        assert reply.status_code == 200, reply.text
        reopened = await get_case(client, workspace, case["id"])
        assert reopened["status"] == "open"
        assert reopened["pending_reason"] is None
        rows = await history(client, workspace, case["id"])
        assert (rows[-1]["from_value"], rows[-1]["to_value"], rows[-1]["reason"]) == (
            "pending", "open", "customer replied",
        )  # fmt: skip

    async def test_interactions_link_only_to_existing_cases(
        self, client: httpx.AsyncClient, workspace: WorkspaceHandle
    ) -> None:
        contact_id = await new_contact(client, workspace)
        body = {"contact_id": contact_id, "channel": "email", "type": "email",
                "occurred_at": "2026-11-20T10:00:00+07:00", "case_id": MISSING}  # fmt: skip
        problem = assert_problem(
            await post(client, workspace, "/v1/interactions", body), 422, "validation_error"
        )
        assert problem["errors"][0]["field"] == "case_id"


class TestUpdate:
    async def test_patch_records_queue_assignee_and_priority(
        self, client: httpx.AsyncClient, workspace: WorkspaceHandle, owner_engine: AsyncEngine
    ) -> None:
        queue = await created(client, workspace, "/v1/case-queues", {"name": "Billing"})
        case = await new_case(client, workspace, await new_contact(client, workspace))
        response = await client.patch(
            f"/v1/cases/{case['id']}",
            headers={**workspace.headers, "If-Match": f'"{case["version"]}"'},
            json={"queue_id": queue["id"], "assignee": "nok", "priority": "urgent",
                  "attributes": {"order": "A-1"}},
        )  # fmt: skip
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["version"] > case["version"]
        rows = await history(client, workspace, case["id"])
        assert {(r["field"], r["from_value"], r["to_value"]) for r in rows[1:]} == {
            ("queue", None, queue["id"]),
            ("assignee", None, "nok"),
            ("priority", "normal", "urgent"),
        }
        assert len(await events(owner_engine, workspace, "case.assigned")) == 1
        stale = await client.patch(
            f"/v1/cases/{case['id']}",
            headers={**workspace.headers, "If-Match": f'"{case["version"]}"'},
            json={"subject": "late"},
        )
        assert_problem(stale, 412, "precondition_failed")
        read_only = await client.patch(
            f"/v1/cases/{case['id']}", headers=workspace.headers, json={"status": "closed"}
        )
        assert_problem(read_only, 422, "validation_error")

    async def test_delete_unlinks_interactions(
        self, client: httpx.AsyncClient, workspace: WorkspaceHandle
    ) -> None:
        case = await new_case(client, workspace, await new_contact(client, workspace))
        comment = await created(
            client, workspace, f"/v1/cases/{case['id']}/comments", {"body": "Hi", "public": True}
        )
        deleted = await client.delete(f"/v1/cases/{case['id']}", headers=workspace.headers)
        assert deleted.status_code == 204
        assert (
            await client.get(f"/v1/cases/{case['id']}", headers=workspace.headers)
        ).status_code == 404
        kept = await client.get(
            f"/v1/interactions/{comment['interaction_id']}", headers=workspace.headers
        )
        assert kept.status_code == 200
        assert kept.json()["case_id"] is None

    async def test_list_filters(
        self, client: httpx.AsyncClient, workspace: WorkspaceHandle
    ) -> None:
        contact_id = await new_contact(client, workspace)
        first = await new_case(client, workspace, contact_id, priority="high")
        second = await new_case(client, workspace, contact_id, priority="low", category="billing")
        await transition(client, workspace, second["id"], "open")

        async def ids(**params: Any) -> list[str]:
            response = await client.get("/v1/cases", headers=workspace.headers, params=params)
            assert response.status_code == 200, response.text
            return [c["id"] for c in response.json()["data"]]

        assert await ids() == [second["id"], first["id"]]
        assert await ids(status="open") == [second["id"]]
        assert await ids(priority=["high", "urgent"]) == [first["id"]]
        assert await ids(category="billing") == [second["id"]]
        assert await ids(sort="number") == [first["id"], second["id"]]
        page = await client.get("/v1/cases", headers=workspace.headers, params={"limit": 1})
        assert page.json()["next_cursor"] is not None
        bad = await client.get("/v1/cases", headers=workspace.headers, params={"sort": "subject"})
        assert_problem(bad, 422, "validation_error")
