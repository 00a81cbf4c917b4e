from __future__ import annotations

import asyncio
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from app.auth.scopes import Scope
from tests.conftest import WorkspaceHandle
from tests.sales.helpers import (
    MISSING,
    count_rows,
    default_pipeline,
    events,
    execute,
    fields_of,
    move,
    new_account,
    new_contact,
    new_opportunity,
    new_pipeline,
    post_opportunity,
    stage_ids,
    thb,
    vnd,
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


async def test_bad_input_names_the_field_and_writes_nothing(
    client: httpx.AsyncClient, workspace: WorkspaceHandle, owner_engine: AsyncEngine
) -> None:
    contact_id = await new_contact(client, workspace)
    other = await new_pipeline(client, workspace, "Other", [{"name": "Open", "probability": 5}])
    stages = stage_ids(await default_pipeline(client, workspace))
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"amount": thb("-1.00")}, 422, "amount.amount"),
        ({"amount": thb("1.001")}, 422, "amount"),
        ({"amount": vnd("10.5")}, 422, "amount"),
        ({"amount": {"amount": "1", "currency": "XYZ"}}, 422, "amount.currency"),
        ({"stage_id": other["stages"][0]["id"]}, 422, "stage_id"),
        ({"stage_id": stages["Closed lost"]}, 422, "loss_reason"),
        ({"loss_reason": "Price"}, 422, "loss_reason"),
        ({"expected_close_date": "2020-01-01"}, 422, "expected_close_date"),
        ({"expected_close_date": "next week"}, 422, "expected_close_date"),
        ({"contact_id": None}, 422, "body"),
        ({"contact_id": MISSING}, 404, "contact_id"),
        ({"account_id": MISSING}, 404, "account_id"),
        ({"pipeline_id": MISSING}, 404, "pipeline_id"),
        ({"name": "x" * 301}, 422, "name"),
        ({"owner": "x" * 201}, 422, "owner"),
        ({"status": "won"}, 422, "status"),
        ({"competitors": [{"name": "A"}, {"name": "a"}]}, 422, "competitors"),
    ]
    for overrides, status, field in cases:
        body = {"contact_id": contact_id, **overrides}
        response = await post_opportunity(client, workspace, **body)
        assert response.status_code == status, (overrides, response.text)
        assert any(f.endswith(field) or f.startswith(field) for f in fields_of(response.json())), (
            overrides,
            response.json(),
        )
    assert await count_rows(owner_engine, workspace, "opportunities") == 0
    # A deal recorded as already lost may close in the past.
    closed = await post_opportunity(
        client,
        workspace,
        contact_id=contact_id,
        stage_id=stages["Closed lost"],
        loss_reason="Went with a rival",
        expected_close_date="2020-01-01",
    )
    assert closed.status_code == 201, closed.text
    assert closed.json()["status"] == "lost"


async def test_patch_rules_and_stale_etags(
    client: httpx.AsyncClient, workspace: WorkspaceHandle, owner_engine: AsyncEngine
) -> None:
    contact_id = await new_contact(client, workspace)
    account_id = await new_account(client, workspace)
    other = await new_pipeline(client, workspace, "Other", [{"name": "Open", "probability": 5}])
    deal = await new_opportunity(client, workspace, contact_id=contact_id)
    url = f"/v1/opportunities/{deal['id']}"
    changed = await client.patch(
        url,
        headers={**workspace.headers, "If-Match": '"1"'},
        json={
            "account_id": account_id,
            "amount": vnd("2500000"),
            "next_step": "Demo on Friday",
            "competitors": [{"name": "Rival", "status": "eliminated"}],
            "external_ids": {"crm": "X-1"},
        },
    )
    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert body["amount"] == vnd("2500000")
    # 2500000 x 10% = 250000.
    assert body["weighted_amount"] == vnd("250000")
    assert body["version"] == 2
    stale = await client.patch(
        url, headers={**workspace.headers, "If-Match": '"1"'}, json={"name": "lost update"}
    )
    assert_problem(stale, 412, "precondition_failed")
    pipeline_only = await client.patch(
        url, headers=workspace.headers, json={"pipeline_id": other["id"]}
    )
    assert fields_of(assert_problem(pipeline_only, 422, "validation_error")) == ["stage_id"]  # type: ignore[arg-type]
    both_cleared = await client.patch(
        url, headers=workspace.headers, json={"contact_id": None, "account_id": None}
    )
    assert_problem(both_cleared, 422, "validation_error")
    moved = await client.patch(
        url,
        headers=workspace.headers,
        json={"pipeline_id": other["id"], "stage_id": other["stages"][0]["id"]},
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["pipeline_id"] == other["id"]
    unchanged = await client.patch(
        url, headers=workspace.headers, json={"next_step": "Demo on Friday"}
    )
    assert unchanged.json()["version"] == moved.json()["version"]
    read_only = await client.patch(url, headers=workspace.headers, json={"version": 9})
    assert_problem(read_only, 422, "validation_error")
    updates = [
        row
        for row in await events(owner_engine, workspace, "opportunity")
        if row.type == "opportunity.updated"
    ]
    assert updates[0].changed_fields == [
        "account_id", "amount_minor", "competitors", "currency", "external_ids", "next_step",
    ]  # fmt: skip
    deleted = await client.delete(url, headers=workspace.headers)
    assert deleted.status_code == 204
    assert_problem(await client.get(url, headers=workspace.headers), 404, "not_found")


async def test_filters_sorts_and_pages(
    client: httpx.AsyncClient, workspace: WorkspaceHandle
) -> None:
    contact_id = await new_contact(client, workspace)
    other_contact = await new_contact(client, workspace, "Lan")
    stages = stage_ids(await default_pipeline(client, workspace))
    made = {}
    for name, amount, close, owner, who in (
        ("small", thb("100.00"), "2099-03-01", "ploy", contact_id),
        ("big", thb("9000.00"), "2099-01-01", "ploy", contact_id),
        ("mid", thb("500.00"), "2099-02-01", "krit", other_contact),
        ("dong", vnd("700000"), "2099-04-01", "krit", contact_id),
    ):
        made[name] = await new_opportunity(
            client, workspace, name=name, amount=amount, expected_close_date=close,
            owner=owner, contact_id=who,
        )  # fmt: skip
    await move(client, workspace, made["mid"]["id"], stages["Closed won"])

    async def names(**params: Any) -> list[str]:
        response = await client.get("/v1/opportunities", headers=workspace.headers, params=params)
        assert response.status_code == 200, response.text
        return [item["name"] for item in response.json()["data"]]

    assert await names(sort="amount", currency="THB") == ["small", "mid", "big"]
    assert await names(sort="-expected_close_date") == ["dong", "small", "mid", "big"]
    assert await names(owner="krit", sort="amount") == ["mid", "dong"]
    assert await names(status="won") == ["mid"]
    assert await names(contact_id=other_contact) == ["mid"]
    assert await names(stage_id=stages["Qualification"], sort="-expected_close_date") == [
        "dong", "small", "big",
    ]  # fmt: skip
    assert await names(currency="THB", amount_min="200", amount_max="9000", sort="amount") == [
        "mid", "big",
    ]  # fmt: skip
    closing = await names(
        close_from="2099-02-01", close_to="2099-03-01", sort="expected_close_date"
    )
    assert closing == ["mid", "small"]
    no_currency = await client.get(
        "/v1/opportunities", headers=workspace.headers, params={"amount_min": "1"}
    )
    assert fields_of(assert_problem(no_currency, 422, "validation_error")) == ["query.currency"]  # type: ignore[arg-type]
    bad_sort = await client.get(
        "/v1/opportunities", headers=workspace.headers, params={"sort": "name"}
    )
    assert_problem(bad_sort, 422, "validation_error")
    first = await client.get(
        "/v1/opportunities", headers=workspace.headers, params={"limit": 2, "sort": "amount"}
    )
    page = first.json()
    rest = await client.get(
        "/v1/opportunities",
        headers=workspace.headers,
        params={"limit": 2, "sort": "amount", "cursor": page["next_cursor"]},
    )
    seen = [item["name"] for item in page["data"] + rest.json()["data"]]
    assert sorted(seen) == ["big", "dong", "mid", "small"]
    assert rest.json()["next_cursor"] is None


async def test_scopes_and_tenancy(client: httpx.AsyncClient, make_workspace: Any) -> None:
    first: WorkspaceHandle = await make_workspace()
    second: WorkspaceHandle = await make_workspace()
    deal = await new_opportunity(client, first, contact_id=await new_contact(client, first))
    reader = await first.key(Scope.opportunities_read)
    assert (await client.get(f"/v1/opportunities/{deal['id']}", headers=reader)).status_code == 200
    denied = await client.post("/v1/opportunities", headers=reader, json={})
    assert_problem(denied, 403, "forbidden")
    contacts_only = await first.key(Scope.contacts_read)
    assert_problem(await client.get("/v1/pipelines", headers=contacts_only), 403, "forbidden")
    other = await client.get(f"/v1/opportunities/{deal['id']}", headers=second.headers)
    assert_problem(other, 404, "not_found")
    stages = stage_ids(await default_pipeline(client, second))
    foreign_move = await move(client, second, deal["id"], stages["Proposal"])
    assert_problem(foreign_move, 404, "not_found")


async def test_contact_views_timeline_merge_and_interaction_links(
    client: httpx.AsyncClient, workspace: WorkspaceHandle
) -> None:
    contact_id = await new_contact(client, workspace)
    duplicate_id = await new_contact(client, workspace, "Somsri copy")
    stages = stage_ids(await default_pipeline(client, workspace))
    open_deal = await new_opportunity(client, workspace, name="Open deal", contact_id=contact_id)
    won_deal = await new_opportunity(client, workspace, name="Won deal", contact_id=contact_id)
    await move(client, workspace, won_deal["id"], stages["Closed won"])
    absorbed = await new_opportunity(client, workspace, name="Merged deal", contact_id=duplicate_id)

    view = (await client.get(f"/v1/contacts/{contact_id}/360", headers=workspace.headers)).json()
    assert [o["name"] for o in view["opportunities"]] == ["Open deal"]
    no_scope = await workspace.key(Scope.contacts_read)
    hidden = (await client.get(f"/v1/contacts/{contact_id}/360", headers=no_scope)).json()
    assert hidden["opportunities"] is None

    timeline = (
        await client.get(
            f"/v1/contacts/{contact_id}/timeline",
            headers=workspace.headers,
            params={"kind": "opportunity"},
        )
    ).json()["data"]
    summaries = [entry["summary"] for entry in timeline]
    assert "Opportunity 'Won deal' (THB1,000.00) won" in summaries
    assert "Opportunity 'Open deal' (THB1,000.00) opened in Qualification" in summaries
    assert len(timeline) == 3

    link = await client.post(
        "/v1/interactions",
        headers=workspace.headers,
        json={
            "contact_id": contact_id,
            "channel": "phone",
            "type": "call",
            "occurred_at": "2026-11-20T10:00:00+07:00",
            "opportunity_id": open_deal["id"],
        },
    )
    assert link.status_code == 201, link.text
    dangling = await client.post(
        "/v1/interactions",
        headers=workspace.headers,
        json={
            "contact_id": contact_id,
            "channel": "phone",
            "type": "call",
            "occurred_at": "2026-11-20T10:00:00+07:00",
            "opportunity_id": MISSING,
        },
    )
    assert dangling.status_code == 422

    merged = await client.post(
        f"/v1/contacts/{contact_id}/merge",
        headers=workspace.headers,
        json={"absorb": [duplicate_id]},
    )
    assert merged.status_code == 200, merged.text
    moved = (
        await client.get(f"/v1/opportunities/{absorbed['id']}", headers=workspace.headers)
    ).json()
    assert moved["contact_id"] == contact_id
    assert moved["version"] == 2


async def test_time_in_the_previous_stage_comes_from_the_database_clock(
    client: httpx.AsyncClient, workspace: WorkspaceHandle, owner_engine: AsyncEngine
) -> None:
    stages = stage_ids(await default_pipeline(client, workspace))
    deal = await new_opportunity(client, workspace, contact_id=await new_contact(client, workspace))
    # As if the deal had entered its stage an hour ago.
    await execute(
        owner_engine,
        "UPDATE opportunities SET stage_entered_at = stage_entered_at - interval '1 hour' "
        "WHERE id = :id",
        id=deal["id"],
    )
    moved = await move(client, workspace, deal["id"], stages["Proposal"])
    history = (
        await client.get(f"/v1/opportunities/{deal['id']}/history", headers=workspace.headers)
    ).json()["data"]
    assert 3600 <= history[1]["seconds_in_previous_stage"] < 3600 + 600
    assert moved.json()["stage_entered_at"] == history[1]["changed_at"]
