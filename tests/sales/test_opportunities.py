from __future__ import annotations

import asyncio

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import WorkspaceHandle
from tests.sales.helpers import (
    default_pipeline,
    events,
    fields_of,
    move,
    new_contact,
    new_opportunity,
    post_opportunity,
    stage_ids,
    thb,
)
from tests.test_conventions import assert_problem


async def test_a_new_workspace_has_a_default_pipeline(
    client: httpx.AsyncClient, workspace: WorkspaceHandle
) -> None:
    pipeline = await default_pipeline(client, workspace)
    assert [(s["name"], s["probability"], s["type"]) for s in pipeline["stages"]] == [
        ("Qualification", 10, "open"),
        ("Needs analysis", 25, "open"),
        ("Proposal", 50, "open"),
        ("Negotiation", 75, "open"),
        ("Closed won", 100, "won"),
        ("Closed lost", 0, "lost"),
    ]
    assert [s["position"] for s in pipeline["stages"]] == [0, 1, 2, 3, 4, 5]


async def test_create_read_and_first_history_entry(
    client: httpx.AsyncClient, workspace: WorkspaceHandle, owner_engine: AsyncEngine
) -> None:
    contact_id = await new_contact(client, workspace)
    pipeline = await default_pipeline(client, workspace)
    response = await post_opportunity(
        client,
        workspace,
        name="Office coffee machines",
        contact_id=contact_id,
        amount=thb("125000.50"),
        owner="sales.ploy",
        source="referral",
        next_step="Send the quote",
        competitors=[{"name": "Brew Co", "notes": "cheaper", "status": "active"}],
        attributes={"region": "BKK"},
        external_ids={"hubspot": "D-1"},
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert response.headers["location"] == f"/v1/opportunities/{body['id']}"
    assert response.headers["etag"] == '"1"'
    assert body["pipeline_id"] == pipeline["id"]
    assert body["stage_name"] == "Qualification"
    assert body["status"] == "open"
    assert body["probability"] == 10
    assert body["amount"] == thb("125000.50")
    # 125000.50 x 10% = 12500.05
    assert body["weighted_amount"] == thb("12500.05")
    assert body["competitors"] == [{"name": "Brew Co", "notes": "cheaper", "status": "active"}]
    assert body["closed_at"] is None
    fetched = await client.get(f"/v1/opportunities/{body['id']}", headers=workspace.headers)
    assert fetched.json() == body
    cached = await client.get(
        f"/v1/opportunities/{body['id']}", headers={**workspace.headers, "If-None-Match": '"1"'}
    )
    assert cached.status_code == 304
    by_key = await client.get(
        "/v1/opportunities/by-external-id/hubspot/D-1", headers=workspace.headers
    )
    assert by_key.json()["id"] == body["id"]
    history = await client.get(f"/v1/opportunities/{body['id']}/history", headers=workspace.headers)
    [first] = history.json()["data"]
    assert first["from_stage_id"] is None
    assert first["to_stage_name"] == "Qualification"
    assert first["seconds_in_previous_stage"] is None
    assert first["changed_by"] == str(workspace.admin_key_id)
    assert [row.type for row in await events(owner_engine, workspace, "opportunity")] == [
        "opportunity.created"
    ]


async def test_stage_moves_are_recorded_with_time_in_previous_stage(
    client: httpx.AsyncClient, workspace: WorkspaceHandle, owner_engine: AsyncEngine
) -> None:
    contact_id = await new_contact(client, workspace)
    stages = stage_ids(await default_pipeline(client, workspace))
    created = await new_opportunity(client, workspace, contact_id=contact_id)
    oid = created["id"]
    moved = await move(client, workspace, oid, stages["Proposal"], if_match='"1"')
    assert moved.status_code == 200, moved.text
    assert moved.json()["stage_name"] == "Proposal"
    assert moved.headers["etag"] == '"2"'
    lost = await move(client, workspace, oid, stages["Closed lost"])
    assert_problem(lost, 422, "validation_error")
    assert fields_of(lost.json()) == ["loss_reason"]
    lost = await move(client, workspace, oid, stages["Closed lost"], loss_reason="Price")
    assert lost.status_code == 200, lost.text
    assert lost.json()["status"] == "lost"
    assert lost.json()["loss_reason"] == "Price"
    assert lost.json()["closed_at"] is not None
    reopened = await move(client, workspace, oid, stages["Negotiation"])
    assert reopened.json()["status"] == "open"
    assert reopened.json()["closed_at"] is None
    assert reopened.json()["loss_reason"] is None
    won = await client.patch(
        f"/v1/opportunities/{oid}",
        headers=workspace.headers,
        json={"stage_id": stages["Closed won"]},
    )
    assert won.status_code == 200, won.text
    assert won.json()["status"] == "won"

    history = (
        await client.get(f"/v1/opportunities/{oid}/history", headers=workspace.headers)
    ).json()["data"]
    assert [(h["from_stage_name"], h["to_stage_name"]) for h in history] == [
        (None, "Qualification"),
        ("Qualification", "Proposal"),
        ("Proposal", "Closed lost"),
        ("Closed lost", "Negotiation"),
        ("Negotiation", "Closed won"),
    ]
    assert [h["to_status"] for h in history] == ["open", "open", "lost", "open", "won"]
    assert history[2]["loss_reason"] == "Price"
    assert all(h["seconds_in_previous_stage"] >= 0 for h in history[1:])
    types = [row.type for row in await events(owner_engine, workspace, "opportunity")]
    assert types == [
        "opportunity.created",
        "opportunity.stage_changed",
        "opportunity.stage_changed",
        "opportunity.lost",
        "opportunity.stage_changed",
        "opportunity.updated",
        "opportunity.stage_changed",
        "opportunity.won",
    ]


async def test_concurrent_moves_with_the_same_etag_one_wins(
    client: httpx.AsyncClient, workspace: WorkspaceHandle
) -> None:
    contact_id = await new_contact(client, workspace)
    stages = stage_ids(await default_pipeline(client, workspace))
    oid = (await new_opportunity(client, workspace, contact_id=contact_id))["id"]
    first, second = await asyncio.gather(
        move(client, workspace, oid, stages["Proposal"], if_match='"1"'),
        move(client, workspace, oid, stages["Negotiation"], if_match='"1"'),
    )
    assert sorted([first.status_code, second.status_code]) == [200, 412]
    loser = first if first.status_code == 412 else second
    assert_problem(loser, 412, "precondition_failed")
    history = (
        await client.get(f"/v1/opportunities/{oid}/history", headers=workspace.headers)
    ).json()["data"]
    assert len(history) == 2
    winner = first if first.status_code == 200 else second
    assert winner.json()["stage_id"] == history[1]["to_stage_id"]
