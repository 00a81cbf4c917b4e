"""Cases in the contact's 360 view and on the timeline; cases follow a contact merge."""

from __future__ import annotations

import httpx

from app.auth.scopes import Scope
from tests.case.helpers import new_case, new_contact, transition
from tests.conftest import WorkspaceHandle


async def test_open_cases_in_the_360_view(
    client: httpx.AsyncClient, workspace: WorkspaceHandle
) -> None:
    contact_id = await new_contact(client, workspace)
    waiting = await new_case(client, workspace, contact_id, subject="Waiting")
    done = await new_case(client, workspace, contact_id, subject="Done")
    await transition(client, workspace, done["id"], "resolved")
    view = await client.get(f"/v1/contacts/{contact_id}/360", headers=workspace.headers)
    assert view.status_code == 200, view.text
    cases = view.json()["cases"]
    assert cases["open_count"] == 1
    assert [case["id"] for case in cases["open"]] == [waiting["id"]]
    assert cases["open"][0]["sla"]["paused"] is False

    without = await workspace.key(Scope.contacts_read)
    hidden = await client.get(f"/v1/contacts/{contact_id}/360", headers=without)
    assert hidden.json()["cases"] is None


async def test_cases_on_the_timeline(client: httpx.AsyncClient, workspace: WorkspaceHandle) -> None:
    contact_id = await new_contact(client, workspace)
    case = await new_case(client, workspace, contact_id, subject="Broken kettle")
    timeline = await client.get(
        f"/v1/contacts/{contact_id}/timeline", headers=workspace.headers,
        params={"kind": "case"},
    )  # fmt: skip
    assert timeline.status_code == 200, timeline.text
    entries = timeline.json()["data"]
    assert [(e["kind"], e["id"]) for e in entries] == [("case", case["id"])]
    assert entries[0]["summary"] == "CASE-000001 (new, normal): Broken kettle"
    assert entries[0]["data"]["number"] == "CASE-000001"
    await transition(client, workspace, case["id"], "resolved", note="Replaced")
    await transition(client, workspace, case["id"], "open")
    changes = await client.get(
        f"/v1/contacts/{contact_id}/timeline", headers=workspace.headers,
        params={"kind": "case_status"},
    )  # fmt: skip
    assert [e["summary"] for e in changes.json()["data"]] == [
        "CASE-000001 reopened: Broken kettle",
        "CASE-000001 resolved (Replaced): Broken kettle",
    ]
    assert changes.json()["data"][0]["data"]["to_value"] == "open"
    interactions_only = await workspace.key(Scope.contacts_read, Scope.interactions_read)
    hidden = await client.get(f"/v1/contacts/{contact_id}/timeline", headers=interactions_only)
    assert hidden.status_code == 200
    assert {entry["kind"] for entry in hidden.json()["data"]} == {"interaction"}


async def test_cases_follow_a_contact_merge(
    client: httpx.AsyncClient, workspace: WorkspaceHandle
) -> None:
    survivor = await new_contact(client, workspace, "Somchai")
    absorbed = await new_contact(client, workspace, "Somchai J")
    case = await new_case(client, workspace, absorbed)
    merged = await client.post(
        f"/v1/contacts/{survivor}/merge", headers=workspace.headers,
        json={"absorb": [absorbed]},
    )  # fmt: skip
    assert merged.status_code == 200, merged.text
    moved = await client.get(f"/v1/cases/{case['id']}", headers=workspace.headers)
    assert moved.json()["contact_id"] == survivor
    assert moved.json()["version"] > case["version"]
