"""Cases over GraphQL: mutations for every write, nested fields through DataLoaders."""

from __future__ import annotations

from typing import Any

import httpx

from app.auth.scopes import Scope
from app.db.session import Database
from tests.case.helpers import THAI_HOURS, new_case, new_contact
from tests.conftest import WorkspaceHandle
from tests.test_graphql import codes, count_statements, gql

CASE_FIELDS = """
  id number subject status priority channel queueId assignee allowedTransitions version
  routingRuleId firstResponseAt reopenCount externalIds { system value }
  slaStatus { policyId paused firstResponse { dueAt met breached remainingBusinessMinutes }
              resolution { dueAt } }
"""


async def test_setup_and_case_lifecycle(
    client: httpx.AsyncClient, workspace: WorkspaceHandle
) -> None:
    headers = workspace.headers
    calendar = await gql(
        client, headers,
        """mutation($input: BusinessCalendarInput!) {
             createBusinessCalendar(input: $input) { id timeZone hours holidays } }""",
        {"input": {"name": "BKK", "timeZone": "Asia/Bangkok", "hours": THAI_HOURS,
                   "holidays": ["2026-12-07"]}},
    )  # fmt: skip
    calendar_id = calendar["data"]["createBusinessCalendar"]["id"]
    assert calendar["data"]["createBusinessCalendar"]["holidays"] == ["2026-12-07"]
    bad = await gql(
        client, headers,
        """mutation($input: BusinessCalendarInput!) {
             createBusinessCalendar(input: $input) { id } }""",
        {"input": {"name": "X", "timeZone": "Mars/Base", "hours": THAI_HOURS}},
    )  # fmt: skip
    assert codes(bad) == ["validation_error"]
    policy = await gql(
        client, headers,
        """mutation($input: SlaPolicyInput!) { createSlaPolicy(input: $input) { id } }""",
        {"input": {"name": "High", "priority": "high", "calendarId": calendar_id,
                   "firstResponseMinutes": 60, "resolutionMinutes": 480}},
    )  # fmt: skip
    policy_id = policy["data"]["createSlaPolicy"]["id"]
    queue = await gql(
        client, headers,
        """mutation($input: CaseQueueInput!) { createCaseQueue(input: $input) { id members } }""",
        {"input": {"name": "Support", "members": ["ann", "ben"]}},
    )  # fmt: skip
    queue_id = queue["data"]["createCaseQueue"]["id"]
    rule = await gql(
        client, headers,
        """mutation($input: CaseRoutingRuleInput!) {
             createCaseRoutingRule(input: $input) { id assignMode } }""",
        {"input": {"name": "All high", "position": 1, "priorities": ["high"],
                   "queueId": queue_id, "assignMode": "round_robin"}},
    )  # fmt: skip
    rule_id = rule["data"]["createCaseRoutingRule"]["id"]

    contact_id = await new_contact(client, workspace)
    created = await gql(
        client, headers,
        f"""mutation($input: CaseCreateInput!) {{
              createCase(input: $input) {{ {CASE_FIELDS} }} }}""",
        {"input": {"contactId": contact_id, "subject": "Broken", "priority": "high",
                   "channel": "chat", "externalIds": [{"system": "zd", "value": "1"}]}},
    )  # fmt: skip
    case = created["data"]["createCase"]
    assert case["number"] == "CASE-000001"
    assert (case["queueId"], case["assignee"], case["routingRuleId"]) == (queue_id, "ann", rule_id)
    assert case["slaStatus"]["policyId"] == policy_id
    assert case["slaStatus"]["firstResponse"]["dueAt"] is not None

    illegal = await gql(
        client, headers,
        """mutation($id: UUID!) { transitionCase(id: $id, input: {to: "closed"}) { id } }""",
        {"id": case["id"]},
    )  # fmt: skip
    assert codes(illegal) == ["illegal_transition"]
    comment = await gql(
        client, headers,
        """mutation($id: UUID!) { commentOnCase(id: $id, input: {body: "On it", public: true}) {
             id public interactionId } }""",
        {"id": case["id"]},
    )  # fmt: skip
    assert comment["data"]["commentOnCase"]["interactionId"] is not None
    stale = await gql(
        client, headers,
        """mutation($id: UUID!) { transitionCase(id: $id, input: {to: "resolved"},
                                                 ifMatch: "\\"1\\"") { id } }""",
        {"id": case["id"]},
    )  # fmt: skip
    assert codes(stale) == ["precondition_failed"]
    pending = await gql(
        client, headers,
        """mutation($id: UUID!) { transitionCase(id: $id,
             input: {to: "pending", reason: "waiting_on_customer"}) {
               status slaStatus { paused } } }""",
        {"id": case["id"]},
    )  # fmt: skip
    assert pending["data"]["transitionCase"] == {"status": "pending", "slaStatus": {"paused": True}}
    updated = await gql(
        client, headers,
        """mutation($id: UUID!) { updateCase(id: $id, input: {assignee: "ben", category: "x"}) {
             assignee } }""",
        {"id": case["id"]},
    )  # fmt: skip
    assert updated["data"]["updateCase"]["assignee"] == "ben"
    routed = await gql(
        client, headers,
        """mutation($id: UUID!) { routeCase(id: $id) { assignee } }""", {"id": case["id"]},
    )  # fmt: skip
    assert routed["data"]["routeCase"]["assignee"] == "ben"

    read = await gql(
        client, headers,
        """query($id: UUID!) { case(id: $id) {
             number status comments { body public } history { field fromValue toValue }
             metrics { timeInStatus { status seconds } reopenCount firstResponseSeconds }
             contact { id } } }""",
        {"id": case["id"]},
    )  # fmt: skip
    data = read["data"]["case"]
    assert data["comments"] == [{"body": "On it", "public": True}]
    assert [(h["field"], h["toValue"]) for h in data["history"]] == [
        ("status", "new"), ("queue", queue_id), ("assignee", "ann"), ("status", "open"),
        ("status", "pending"), ("assignee", "ben"),
    ]  # fmt: skip
    assert [row["status"] for row in data["metrics"]["timeInStatus"]] == [
        "new", "open", "pending",
    ]  # fmt: skip
    assert data["metrics"]["firstResponseSeconds"] >= 0
    by_number = await gql(client, headers, '{ caseByNumber(number: "CASE-000001") { id } }')
    assert by_number["data"]["caseByNumber"]["id"] == case["id"]
    listed = await gql(
        client, headers,
        """{ cases(first: 5, filter: {statuses: ["pending"]}) { edges { node { id } }
             pageInfo { hasNextPage } } caseQueues { name } slaPolicies { id }
             businessCalendars { id } caseRoutingRules { id } }""",
    )  # fmt: skip
    assert [e["node"]["id"] for e in listed["data"]["cases"]["edges"]] == [case["id"]]
    assert listed["data"]["caseQueues"] == [{"name": "Support"}]

    report = await gql(
        client, headers,
        """{ caseReport(from: "2026-01-01T00:00:00Z", to: "2030-01-01T00:00:00Z",
                        groupBy: "priority") {
               rows { key created backlog } total { created } } }""",
    )  # fmt: skip
    assert report["data"]["caseReport"]["rows"] == [{"key": "high", "created": 1, "backlog": 1}]
    deleted = await gql(
        client, headers, """mutation($id: UUID!) { deleteCase(id: $id) }""", {"id": case["id"]}
    )
    assert deleted["data"]["deleteCase"] == case["id"]
    for name, record_id in (("deleteCaseRoutingRule", rule_id), ("deleteCaseQueue", queue_id),
                            ("deleteSlaPolicy", policy_id),
                            ("deleteBusinessCalendar", calendar_id)):  # fmt: skip
        result = await gql(
            client, headers, f"mutation($id: UUID!) {{ {name}(id: $id) }}", {"id": record_id}
        )
        assert result["data"][name] == record_id, result


async def test_contact_cases_cost_a_fixed_number_of_statements(
    client: httpx.AsyncClient, workspace: WorkspaceHandle, database: Database
) -> None:
    query = """{ contacts(first: 50) { edges { node { id
        cases { number comments { body } history { toValue } metrics { reopenCount }
                slaStatus { paused } } } } } }"""

    async def add(count: int) -> None:
        for index in range(count):
            contact_id = await new_contact(client, workspace, f"C{index}")
            for _ in range(2):
                case = await new_case(client, workspace, contact_id)
                await client.post(f"/v1/cases/{case['id']}/comments", headers=workspace.headers,
                                  json={"body": "note"})  # fmt: skip

    await add(2)
    with count_statements(database) as few:
        small = await gql(client, workspace.headers, query)
    await add(6)
    with count_statements(database) as many:
        large = await gql(client, workspace.headers, query)
    assert "errors" not in large, large
    assert len(small["data"]["contacts"]["edges"]) == 2
    nodes = large["data"]["contacts"]["edges"]
    assert len(nodes) == 8
    assert all(len(node["node"]["cases"]) == 2 for node in nodes)
    assert all(case["comments"] == [{"body": "note"}] for n in nodes for case in n["node"]["cases"])
    assert len(many) == len(few), (few, many)


async def test_scopes(client: httpx.AsyncClient, workspace: WorkspaceHandle) -> None:
    contact_id = await new_contact(client, workspace)
    await new_case(client, workspace, contact_id)
    contacts_only = await workspace.key(Scope.contacts_read)
    result: dict[str, Any] = await gql(
        client, contacts_only, "{ contacts(first: 5) { edges { node { id cases { id } } } } }"
    )
    assert codes(result) == ["forbidden"]
    assert codes(await gql(client, contacts_only, "{ cases { edges { node { id } } } }")) == [
        "forbidden"
    ]
    reader = await workspace.key(Scope.cases_read)
    refused = await gql(
        client, reader,
        """mutation($c: UUID!) { createCase(input: {contactId: $c, subject: "x"}) { id } }""",
        {"c": contact_id},
    )  # fmt: skip
    assert codes(refused) == ["forbidden"]
