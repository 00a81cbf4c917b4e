"""Routing rules: conditions, order, fixed and round-robin assignment, routing on demand."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.case.helpers import created, events, new_case, new_contact, post
from tests.conftest import WorkspaceHandle
from tests.test_conventions import assert_problem


async def setup_rules(client: httpx.AsyncClient, ws: WorkspaceHandle) -> dict[str, Any]:
    queues = {
        name: await created(client, ws, "/v1/case-queues", {"name": name, "members": members})
        for name, members in (
            ("Billing", ["bill"]), ("Support", ["ann", "ben"]), ("VIP", ["vip1", "vip2"]),
        )
    }  # fmt: skip
    rules = {}
    for name, position, body in (
        ("everything (off)", 0, {"active": False, "queue_id": queues["VIP"]["id"]}),
        ("refunds", 10, {"subject_keywords": ["refund", "คืนเงิน"], "queue_id":
                         queues["Billing"]["id"], "assign_mode": "fixed", "assignee": "bill"}),
        ("distributors", 20, {"account_types": ["distributor"], "queue_id": queues["VIP"]["id"],
                              "assign_mode": "round_robin"}),
        ("urgent calls", 30, {"priorities": ["urgent"], "channels": ["phone"],
                              "queue_id": queues["Support"]["id"], "assign_mode": "round_robin"}),
        ("churned", 40, {"lifecycle_stages": ["churned"], "queue_id": queues["Support"]["id"]}),
        ("warranty", 50, {"categories": ["warranty"], "queue_id": queues["Support"]["id"]}),
    ):  # fmt: skip
        rules[name] = await created(
            client, ws, "/v1/case-routing-rules", {"name": name, "position": position, **body}
        )
    return {"queues": queues, "rules": rules}


async def test_rules_route_by_their_conditions(
    client: httpx.AsyncClient, workspace: WorkspaceHandle
) -> None:
    setup = await setup_rules(client, workspace)
    queues, rules = setup["queues"], setup["rules"]
    contact_id = await new_contact(client, workspace)

    refund = await new_case(client, workspace, contact_id, subject="Please REFUND my order")
    assert (refund["queue_id"], refund["assignee"], refund["routing_rule_id"]) == (
        queues["Billing"]["id"], "bill", rules["refunds"]["id"],
    )  # fmt: skip
    thai = await new_case(client, workspace, contact_id, subject="ขอคืนเงินค่ะ")
    assert thai["queue_id"] == queues["Billing"]["id"]

    account = await created(
        client, workspace, "/v1/accounts", {"name": "Siam Traders", "type": "distributor"}
    )
    dealer = await new_contact(client, workspace, "Dealer", account_id=account["id"])
    vip = await new_case(client, workspace, dealer, subject="Late shipment")
    assert vip["queue_id"] == queues["VIP"]["id"]
    assert vip["account_id"] == account["id"]
    assert vip["assignee"] == "vip1"

    churned = await new_contact(client, workspace, "Gone", lifecycle_stage="churned")
    lost = await new_case(client, workspace, churned, subject="Cancel everything")
    assert (lost["queue_id"], lost["assignee"]) == (queues["Support"]["id"], None)

    nothing = await new_case(client, workspace, contact_id, subject="Hello", priority="urgent")
    assert (nothing["queue_id"], nothing["routing_rule_id"]) == (None, None)

    chosen = await new_case(
        client, workspace, contact_id, subject="refund", queue_id=queues["VIP"]["id"]
    )
    assert (chosen["queue_id"], chosen["routing_rule_id"]) == (queues["VIP"]["id"], None)


async def test_round_robin_takes_turns_under_concurrency(
    client: httpx.AsyncClient, workspace: WorkspaceHandle
) -> None:
    await setup_rules(client, workspace)
    contact_id = await new_contact(client, workspace)
    first = [
        (await new_case(client, workspace, contact_id, priority="urgent", channel="phone"))[
            "assignee"
        ]
        for _ in range(3)
    ]
    assert first == ["ann", "ben", "ann"]
    responses = await asyncio.gather(
        *(post(client, workspace, "/v1/cases", {"contact_id": contact_id, "subject": "Down",
                                                 "priority": "urgent", "channel": "phone"})
          for _ in range(6))
    )  # fmt: skip
    assert all(r.status_code == 201 for r in responses)
    assert Counter(r.json()["assignee"] for r in responses) == {"ann": 3, "ben": 3}


async def test_route_on_demand(
    client: httpx.AsyncClient, workspace: WorkspaceHandle, owner_engine: AsyncEngine
) -> None:
    setup = await setup_rules(client, workspace)
    case = await new_case(client, workspace, await new_contact(client, workspace), subject="Hi")
    assert case["queue_id"] is None
    changed = await client.patch(
        f"/v1/cases/{case['id']}", headers=workspace.headers, json={"category": "warranty"}
    )
    assert changed.json()["queue_id"] is None
    routed = await client.post(f"/v1/cases/{case['id']}/route", headers=workspace.headers)
    assert routed.status_code == 200, routed.text
    body = routed.json()
    assert body["queue_id"] == setup["queues"]["Support"]["id"]
    assert body["routing_rule_id"] == setup["rules"]["warranty"]["id"]
    history = await client.get(f"/v1/cases/{case['id']}/history", headers=workspace.headers)
    assert [(r["field"], r["to_value"]) for r in history.json()["data"]][-1] == (
        "queue", setup["queues"]["Support"]["id"],
    )  # fmt: skip
    assigned = await events(owner_engine, workspace, "case.assigned")
    assert [str(e.aggregate_id) for e in assigned] == [case["id"]]


async def test_rule_and_queue_validation(
    client: httpx.AsyncClient, workspace: WorkspaceHandle
) -> None:
    queue = await created(client, workspace, "/v1/case-queues", {"name": "Q"})
    base = {"name": "r", "position": 1, "queue_id": queue["id"]}
    bad = [
        ({"assign_mode": "fixed"}, "body"),
        ({"assign_mode": "round_robin", "assignee": "x"}, "body"),
        ({"queue_id": "01a203ac-1022-7102-9d8c-88190aa27e2e"}, "queue_id"),
        ({"channels": ["pigeon"]}, "channels.0"),
        ({"position": -1}, "position"),
        ({"priorities": ["soon"]}, "priorities.0"),
    ]
    for change, field in bad:
        problem = assert_problem(
            await post(client, workspace, "/v1/case-routing-rules", {**base, **change}),
            422, "validation_error",
        )  # fmt: skip
        fields = [e["field"] for e in problem["errors"]]
        assert any(f.startswith(field) for f in fields), (change, fields)
    rule = await created(client, workspace, "/v1/case-routing-rules", base)
    switched = await client.patch(
        f"/v1/case-routing-rules/{rule['id']}", headers=workspace.headers,
        json={"assign_mode": "fixed"},
    )  # fmt: skip
    assert_problem(switched, 422, "validation_error")
    fixed = await client.patch(
        f"/v1/case-routing-rules/{rule['id']}", headers=workspace.headers,
        json={"assign_mode": "fixed", "assignee": "nok"},
    )  # fmt: skip
    assert fixed.status_code == 200, fixed.text
    back = await client.patch(
        f"/v1/case-routing-rules/{rule['id']}", headers=workspace.headers,
        json={"assign_mode": "none"},
    )  # fmt: skip
    assert back.json()["assignee"] is None
    dup = await post(client, workspace, "/v1/case-queues", {"name": "Q"})
    assert_problem(dup, 409, "duplicate")
    members = await post(client, workspace, "/v1/case-queues", {"name": "Z", "members": [""]})
    assert_problem(members, 422, "validation_error")
    listed = await client.get("/v1/case-routing-rules", headers=workspace.headers)
    assert [r["id"] for r in listed.json()["data"]] == [rule["id"]]
    deleted = await client.delete(f"/v1/case-queues/{queue['id']}", headers=workspace.headers)
    assert deleted.status_code == 204
    gone = await client.get(f"/v1/case-routing-rules/{rule['id']}", headers=workspace.headers)
    assert gone.status_code == 404
