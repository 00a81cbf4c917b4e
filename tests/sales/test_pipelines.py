from __future__ import annotations

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import WorkspaceHandle
from tests.sales.helpers import (
    count_rows,
    default_pipeline,
    execute,
    fields_of,
    move,
    new_contact,
    new_opportunity,
    new_pipeline,
    stage_ids,
)
from tests.test_conventions import assert_problem


async def test_a_workspace_without_pipelines_gets_its_default_on_first_use(
    client: httpx.AsyncClient, workspace: WorkspaceHandle, owner_engine: AsyncEngine
) -> None:
    # As for workspaces created before pipelines existed.
    await execute(owner_engine, "DELETE FROM pipelines WHERE workspace_id = :w", w=workspace.id)
    pipeline = await default_pipeline(client, workspace)
    assert pipeline["name"] == "Sales"
    assert await count_rows(owner_engine, workspace, "pipelines") == 1


async def test_stages_are_added_renamed_reordered_and_versioned(
    client: httpx.AsyncClient, workspace: WorkspaceHandle
) -> None:
    pipeline = await new_pipeline(
        client,
        workspace,
        "Retail",
        [{"name": "New", "probability": 10}, {"name": "Won", "type": "won"}],
    )
    assert pipeline["version"] == 1
    base = f"/v1/pipelines/{pipeline['id']}"
    added = await client.post(
        f"{base}/stages",
        headers={**workspace.headers, "If-Match": '"1"'},
        json={"name": "Quote", "probability": 50, "position": 1},
    )
    assert added.status_code == 201, added.text
    assert [s["name"] for s in added.json()["stages"]] == ["New", "Quote", "Won"]
    assert added.headers["etag"] == '"2"'
    ids = stage_ids(added.json())
    renamed = await client.patch(
        f"{base}/stages/{ids['Quote']}",
        headers=workspace.headers,
        json={"name": "Quotation", "probability": 60, "position": 0},
    )
    assert renamed.status_code == 200, renamed.text
    assert [(s["name"], s["position"], s["probability"]) for s in renamed.json()["stages"]] == [
        ("Quotation", 0, 60),
        ("New", 1, 10),
        ("Won", 2, 100),
    ]
    reordered = await client.post(
        f"{base}/stages/reorder",
        headers=workspace.headers,
        json={"stage_ids": [ids["New"], ids["Quote"], ids["Won"]]},
    )
    assert [s["name"] for s in reordered.json()["stages"]] == ["New", "Quotation", "Won"]
    stale = await client.post(
        f"{base}/stages",
        headers={**workspace.headers, "If-Match": '"1"'},
        json={"name": "Late", "probability": 5},
    )
    assert_problem(stale, 412, "precondition_failed")
    incomplete = await client.post(
        f"{base}/stages/reorder", headers=workspace.headers, json={"stage_ids": [ids["New"]]}
    )
    assert fields_of(assert_problem(incomplete, 422, "validation_error")) == ["stage_ids"]  # type: ignore[arg-type]
    won_at_fifty = await client.patch(
        f"{base}/stages/{ids['Won']}", headers=workspace.headers, json={"probability": 50}
    )
    assert fields_of(assert_problem(won_at_fifty, 422, "validation_error")) == ["probability"]  # type: ignore[arg-type]
    same_name = await client.post(
        f"{base}/stages", headers=workspace.headers, json={"name": "new", "probability": 5}
    )
    assert fields_of(assert_problem(same_name, 422, "validation_error")) == ["name"]  # type: ignore[arg-type]


async def test_deleting_a_stage_with_opportunities_needs_a_target(
    client: httpx.AsyncClient, workspace: WorkspaceHandle, owner_engine: AsyncEngine
) -> None:
    pipeline = await default_pipeline(client, workspace)
    stages = stage_ids(pipeline)
    contact_id = await new_contact(client, workspace)
    deal = await new_opportunity(client, workspace, contact_id=contact_id)
    await move(client, workspace, deal["id"], stages["Needs analysis"])
    base = f"/v1/pipelines/{pipeline['id']}/stages/{stages['Needs analysis']}"
    refused = await client.delete(base, headers=workspace.headers)
    assert_problem(refused, 409, "conflict")
    assert (await client.get(f"/v1/opportunities/{deal['id']}", headers=workspace.headers)).json()[
        "stage_name"
    ] == "Needs analysis"
    other = await new_pipeline(client, workspace, "Other", [{"name": "Open", "probability": 5}])
    elsewhere = await client.delete(
        base, headers=workspace.headers, params={"move_to": other["stages"][0]["id"]}
    )
    assert fields_of(assert_problem(elsewhere, 422, "validation_error")) == ["query.move_to"]  # type: ignore[arg-type]
    to_lost = await client.delete(
        base, headers=workspace.headers, params={"move_to": stages["Closed lost"]}
    )
    assert fields_of(assert_problem(to_lost, 422, "validation_error")) == ["query.loss_reason"]  # type: ignore[arg-type]
    moved = await client.delete(
        base, headers=workspace.headers, params={"move_to": stages["Proposal"]}
    )
    assert moved.status_code == 200, moved.text
    assert "Needs analysis" not in [s["name"] for s in moved.json()["stages"]]
    assert [s["position"] for s in moved.json()["stages"]] == [0, 1, 2, 3, 4]
    after = (await client.get(f"/v1/opportunities/{deal['id']}", headers=workspace.headers)).json()
    assert after["stage_name"] == "Proposal"
    history = (
        await client.get(f"/v1/opportunities/{deal['id']}/history", headers=workspace.headers)
    ).json()["data"]
    # The deleted stage keeps its name in the history; its id is gone with it.
    assert [(h["from_stage_name"], h["to_stage_name"]) for h in history] == [
        (None, "Qualification"),
        ("Qualification", "Needs analysis"),
        ("Needs analysis", "Proposal"),
    ]
    assert history[1]["to_stage_id"] is None
    assert history[2]["from_stage_id"] is None
    assert await count_rows(owner_engine, workspace, "pipeline_stages") == 6 - 1 + 1


async def test_pipeline_rules(client: httpx.AsyncClient, workspace: WorkspaceHandle) -> None:
    default = await default_pipeline(client, workspace)
    no_open = await client.post(
        "/v1/pipelines",
        headers=workspace.headers,
        json={"name": "X", "stages": [{"name": "Won", "type": "won"}]},
    )
    assert_problem(no_open, 422, "validation_error")
    open_without_probability = await client.post(
        "/v1/pipelines", headers=workspace.headers, json={"name": "X", "stages": [{"name": "A"}]}
    )
    assert fields_of(assert_problem(open_without_probability, 422, "validation_error"))[
        0
    ].startswith(  # type: ignore[arg-type]
        "stages.0"
    )
    duplicate = await client.post(
        "/v1/pipelines",
        headers=workspace.headers,
        json={"name": "sales", "stages": [{"name": "A", "probability": 5}]},
    )
    assert_problem(duplicate, 409, "duplicate")
    second = await new_pipeline(client, workspace, "Online", [{"name": "A", "probability": 5}])
    made_default = await client.patch(
        f"/v1/pipelines/{second['id']}", headers=workspace.headers, json={"is_default": True}
    )
    assert made_default.json()["is_default"] is True
    listed = (await client.get("/v1/pipelines", headers=workspace.headers)).json()["data"]
    assert [(p["name"], p["is_default"]) for p in listed] == [("Sales", False), ("Online", True)]
    refused = await client.delete(f"/v1/pipelines/{second['id']}", headers=workspace.headers)
    assert_problem(refused, 409, "conflict")
    deleted = await client.delete(f"/v1/pipelines/{default['id']}", headers=workspace.headers)
    assert deleted.status_code == 204
    gone = await client.get(f"/v1/pipelines/{default['id']}", headers=workspace.headers)
    assert_problem(gone, 404, "not_found")


async def test_a_stage_holding_opportunities_keeps_its_type(
    client: httpx.AsyncClient, workspace: WorkspaceHandle
) -> None:
    pipeline = await default_pipeline(client, workspace)
    stages = stage_ids(pipeline)
    await new_opportunity(client, workspace, contact_id=await new_contact(client, workspace))
    response = await client.patch(
        f"/v1/pipelines/{pipeline['id']}/stages/{stages['Qualification']}",
        headers=workspace.headers,
        json={"type": "won"},
    )
    assert fields_of(assert_problem(response, 409, "conflict")) == ["type"]  # type: ignore[arg-type]
