from __future__ import annotations

import asyncio
from typing import Any, get_args

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.auth.scopes import Scope
from app.interaction import schemas
from app.models import interaction as model
from tests.conftest import WorkspaceHandle
from tests.test_conventions import assert_problem

MISSING = "01a203ac-1022-7102-9d8c-88190aa27e2e"
CALL = {
    "channel": "phone",
    "direction": "inbound",
    "type": "call",
    "occurred_at": "2026-03-01T10:15:00+07:00",
    "subject": "Delivery late",
    "body": "สินค้ายังไม่มาถึงค่ะ",
    "agent_id": "agent-7",
    "duration_seconds": 245,
    "attributes": {"queue": "th-support"},
}


async def new_contact(client: httpx.AsyncClient, ws: WorkspaceHandle, name: str = "Somsri") -> str:
    response = await client.post("/v1/contacts", headers=ws.headers, json={"given_name": name})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def create(
    client: httpx.AsyncClient, ws: WorkspaceHandle, contact_id: str, **body: Any
) -> httpx.Response:
    return await client.post(
        "/v1/interactions", headers=ws.headers, json={**CALL, "contact_id": contact_id, **body}
    )


async def created(
    client: httpx.AsyncClient, ws: WorkspaceHandle, contact_id: str, **body: Any
) -> dict[str, Any]:
    response = await create(client, ws, contact_id, **body)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


async def listed(client: httpx.AsyncClient, ws: WorkspaceHandle, **params: Any) -> list[str]:
    response = await client.get("/v1/interactions", headers=ws.headers, params=params)
    assert response.status_code == 200, response.text
    return [item["subject"] for item in response.json()["data"]]


async def count_rows(engine: AsyncEngine, ws: WorkspaceHandle) -> int:
    async with engine.connect() as connection:
        result = await connection.execute(
            text("SELECT count(*) FROM interactions WHERE workspace_id = :w"), {"w": ws.id}
        )
        return int(result.scalar_one())


async def events(engine: AsyncEngine, ws: WorkspaceHandle) -> list[Any]:
    async with engine.connect() as connection:
        rows = await connection.execute(
            text(
                "SELECT type, aggregate_id, changed_fields, data FROM outbox_events "
                "WHERE workspace_id = :w AND aggregate_type = 'interaction' ORDER BY id"
            ),
            {"w": ws.id},
        )
        return list(rows.all())


def test_input_values_match_the_database_checks() -> None:
    assert get_args(schemas.Channel) == model.CHANNELS
    assert get_args(schemas.Direction) == model.DIRECTIONS
    assert get_args(schemas.InteractionKind) == model.INTERACTION_TYPES
    assert get_args(schemas.FeedbackKind) == model.FEEDBACK_KINDS
    assert get_args(schemas.Sentiment) == model.SENTIMENTS
    assert get_args(schemas.ScoreScale) == model.SCORE_SCALES
    assert get_args(schemas.Urgency) == model.URGENCIES


# -- create, read, change, delete ------------------------------------------------------------


async def test_create_reads_back_with_etags(
    client: httpx.AsyncClient, workspace: WorkspaceHandle
) -> None:
    contact_id = await new_contact(client, workspace)
    response = await create(client, workspace, contact_id, external_ids={"zendesk": "T-1"})
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["contact_id"] == contact_id
    assert body["occurred_at"] == "2026-03-01T03:15:00Z"
    assert body["body"] == CALL["body"]
    assert body["external_ids"] == {"zendesk": "T-1"}
    assert body["feedback"] is None
    assert body["needs_attention"] is False
    assert body["version"] == 1
    assert response.headers["location"] == f"/v1/interactions/{body['id']}"
    assert response.headers["etag"] == '"1"'
    fetched = await client.get(response.headers["location"], headers=workspace.headers)
    assert fetched.json() == body
    assert fetched.headers["etag"] == '"1"'
    cached = await client.get(
        response.headers["location"], headers={**workspace.headers, "If-None-Match": '"1"'}
    )
    assert cached.status_code == 304
    by_key = await client.get(
        "/v1/interactions/by-external-id/zendesk/T-1", headers=workspace.headers
    )
    assert by_key.json() == body
    unknown = await client.get(
        "/v1/interactions/by-external-id/zendesk/T-2", headers=workspace.headers
    )
    assert_problem(unknown, 404, "not_found")
    minimal = await created(
        client,
        workspace,
        contact_id,
        **dict.fromkeys(("direction", "subject", "body", "agent_id")),
        duration_seconds=None,
        attributes={},
    )
    assert minimal["direction"] is None
    assert minimal["attributes"] == {}


async def test_merge_patch_if_match_and_delete(
    client: httpx.AsyncClient, workspace: WorkspaceHandle
) -> None:
    contact_id = await new_contact(client, workspace)
    other_contact = await new_contact(client, workspace, "Minh")
    item = await created(client, workspace, contact_id, external_ids={"zendesk": "T-5"})
    url = f"/v1/interactions/{item['id']}"
    response = await client.patch(
        url,
        headers={**workspace.headers, "If-Match": '"1"'},
        json={
            "subject": "Delivery arrived",
            "body": None,
            "attributes": {"queue": None, "ticket": 5},
            "external_ids": {"zendesk": None, "line": "L-5"},
            "contact_id": other_contact,
        },
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["subject"] == "Delivery arrived"
    assert body["body"] is None
    assert body["attributes"] == {"ticket": 5}
    assert body["external_ids"] == {"line": "L-5"}
    assert body["contact_id"] == other_contact
    assert body["channel"] == "phone"  # absent: unchanged
    assert body["version"] == 2
    assert response.headers["etag"] == '"2"'
    stale = await client.patch(
        url, headers={**workspace.headers, "If-Match": '"1"'}, json={"subject": "x"}
    )
    assert_problem(stale, 412, "precondition_failed")
    # The freed key can be used again; the new one finds this interaction.
    found = await client.get("/v1/interactions/by-external-id/line/L-5", headers=workspace.headers)
    assert found.json()["id"] == item["id"]
    again = await create(client, workspace, contact_id, external_ids={"zendesk": "T-5"})
    assert again.status_code == 201
    taken = await client.patch(
        url, headers=workspace.headers, json={"external_ids": {"zendesk": "T-5"}}
    )
    assert assert_problem(taken, 409, "duplicate")["existing_id"] == again.json()["id"]
    unchanged = await client.patch(
        url, headers=workspace.headers, json={"subject": "Delivery arrived"}
    )
    assert unchanged.json()["version"] == 2
    for read_only in (
        {"id": MISSING},
        {"version": 9},
        {"needs_attention": True},
        {"created_at": "2026-01-01T00:00:00Z"},
    ):
        refused = await client.patch(url, headers=workspace.headers, json=read_only)
        assert_problem(refused, 422, "validation_error")
    for required in ("channel", "type", "occurred_at", "contact_id"):
        refused = await client.patch(url, headers=workspace.headers, json={required: None})
        assert_problem(refused, 422, "validation_error")
    deleted = await client.delete(url, headers={**workspace.headers, "If-Match": '"1"'})
    assert_problem(deleted, 412, "precondition_failed")
    deleted = await client.delete(url, headers={**workspace.headers, "If-Match": '"2"'})
    assert deleted.status_code == 204
    assert_problem(await client.get(url, headers=workspace.headers), 404, "not_found")
    assert_problem(await client.delete(url, headers=workspace.headers), 404, "not_found")
    gone_key = await client.get(
        "/v1/interactions/by-external-id/line/L-5", headers=workspace.headers
    )
    assert_problem(gone_key, 404, "not_found")


async def test_events_in_the_outbox(
    client: httpx.AsyncClient, workspace: WorkspaceHandle, owner_engine: AsyncEngine
) -> None:
    contact_id = await new_contact(client, workspace)
    item = await created(client, workspace, contact_id)
    url = f"/v1/interactions/{item['id']}"
    await client.patch(
        url,
        headers=workspace.headers,
        json={"subject": "New", "feedback": {"kind": "direct", "sentiment": "negative"}},
    )
    await client.patch(url, headers=workspace.headers, json={"subject": "New"})  # no change
    await client.delete(url, headers=workspace.headers)
    recorded = await events(owner_engine, workspace)
    assert [row.type for row in recorded] == [
        "interaction.created",
        "interaction.updated",
        "interaction.deleted",
    ]
    assert all(str(row.aggregate_id) == item["id"] for row in recorded)
    assert recorded[0].data == item
    assert recorded[1].changed_fields == ["feedback", "needs_attention", "subject"]
    assert recorded[1].data["version"] == 2
    assert recorded[2].data == {"id": item["id"], "contact_id": contact_id}


# -- bad input -------------------------------------------------------------------------------


async def test_bad_input_is_a_clear_4xx_and_stores_nothing(
    client: httpx.AsyncClient,
    workspace: WorkspaceHandle,
    make_workspace: Any,
    owner_engine: AsyncEngine,
) -> None:
    contact_id = await new_contact(client, workspace)
    stranger: WorkspaceHandle = await make_workspace()
    foreign_contact = await new_contact(client, stranger, "Foreign")
    cases: list[tuple[dict[str, Any], int, str, str]] = [
        ({"channel": "fax"}, 422, "validation_error", "channel"),
        ({"type": "telegram"}, 422, "validation_error", "type"),
        ({"direction": "sideways"}, 422, "validation_error", "direction"),
        ({"occurred_at": "2026-03-01T10:15:00"}, 422, "validation_error", "occurred_at"),
        ({"occurred_at": "1492-10-12T00:00:00Z"}, 422, "validation_error", "occurred_at"),
        ({"occurred_at": 1767225600}, 422, "validation_error", "occurred_at"),
        ({"subject": "s" * 501}, 422, "validation_error", "subject"),
        ({"body": "ก" * 30000}, 422, "validation_error", "body"),  # 90,000 bytes in UTF-8
        ({"body": "nul\x00here"}, 422, "validation_error", "body"),
        ({"attributes": {"k\x00": 1}}, 422, "validation_error", "attributes"),
        ({"duration_seconds": -1}, 422, "validation_error", "duration_seconds"),
        ({"duration_seconds": 2**40}, 422, "validation_error", "duration_seconds"),
        ({"duration_seconds": True}, 422, "validation_error", "duration_seconds"),
        ({"surprise": 1}, 422, "validation_error", "surprise"),
        ({"needs_attention": True}, 422, "validation_error", "needs_attention"),
        ({"feedback": {"sentiment": "negative"}}, 422, "validation_error", "feedback.kind"),
        ({"feedback": {"kind": "direct", "score": 9}}, 422, "validation_error", "feedback.score"),
        (
            {"feedback": {"kind": "direct", "scale": "csat"}},
            422,
            "validation_error",
            "feedback.score",
        ),
        (
            {"feedback": {"kind": "direct", "score": 6, "scale": "csat"}},
            422,
            "validation_error",
            "feedback.score",
        ),
        (
            {"feedback": {"kind": "direct", "scale": "stars", "score": 4}},
            422,
            "validation_error",
            "feedback.scale",
        ),
        (
            {"external_ids": {"bad system!": "1"}},
            422,
            "validation_error",
            "external_ids.bad system!.[key]",
        ),
        ({"contact_id": MISSING}, 404, "not_found", "contact_id"),
        ({"contact_id": foreign_contact}, 404, "not_found", "contact_id"),
        ({"contact_id": "not-a-uuid"}, 422, "validation_error", "contact_id"),
        ({"case_id": MISSING}, 422, "validation_error", "case_id"),
        (
            {"attention_resolved_at": "2026-03-02T00:00:00Z"},
            422,
            "validation_error",
            "attention_resolved_at",
        ),
    ]
    for change, status, code, field in cases:
        body = {**CALL, "contact_id": contact_id, **change}
        response = await client.post("/v1/interactions", headers=workspace.headers, json=body)
        problem = assert_problem(response, status, code)
        fields = [error["field"] for error in problem["errors"]]  # type: ignore[attr-defined]
        assert field in fields, (change, problem)
    missing_field = await client.post(
        "/v1/interactions", headers=workspace.headers, json={"contact_id": contact_id}
    )
    assert_problem(missing_field, 422, "validation_error")
    assert await count_rows(owner_engine, workspace) == 0
    assert await events(owner_engine, workspace) == []


async def test_a_merged_contact_is_refused_naming_the_survivor(
    client: httpx.AsyncClient, workspace: WorkspaceHandle
) -> None:
    survivor = await new_contact(client, workspace, "Keep")
    absorbed = await new_contact(client, workspace, "Gone")
    merged = await client.post(
        f"/v1/contacts/{survivor}/merge", headers=workspace.headers, json={"absorb": [absorbed]}
    )
    assert merged.status_code == 200, merged.text
    problem = assert_problem(await create(client, workspace, absorbed), 404, "not_found")
    assert problem["merged_into"] == survivor


# -- feedback --------------------------------------------------------------------------------


async def test_feedback_attention_rules(
    client: httpx.AsyncClient, workspace: WorkspaceHandle
) -> None:
    contact_id = await new_contact(client, workspace)
    expectations = [
        ({"kind": "direct", "sentiment": "negative"}, True),
        ({"kind": "direct", "sentiment": "mixed"}, False),
        ({"kind": "inferred", "sentiment": "positive", "urgency": "critical"}, True),
        ({"kind": "indirect", "urgency": "high"}, True),
        ({"kind": "indirect", "urgency": "normal"}, False),
        ({"kind": "direct", "scale": "nps", "score": 6}, True),
        ({"kind": "direct", "scale": "nps", "score": 7}, False),
        ({"kind": "direct", "scale": "nps", "score": 0}, True),
        ({"kind": "direct", "scale": "csat", "score": 2}, True),
        ({"kind": "direct", "scale": "csat", "score": 3}, False),
        ({"kind": "direct", "scale": "ces", "score": 5}, True),
        ({"kind": "direct", "scale": "ces", "score": 4}, False),
        ({"kind": "direct", "scale": "ces", "score": 1, "topic": "returns"}, False),
    ]
    for feedback, expected in expectations:
        body = await created(
            client, workspace, contact_id, type="survey_response", feedback=feedback
        )
        assert body["needs_attention"] is expected, feedback
        assert body["feedback"] == {
            "kind": feedback["kind"],
            "sentiment": feedback.get("sentiment"),
            "scale": feedback.get("scale"),
            "score": feedback.get("score"),
            "topic": feedback.get("topic"),
            "urgency": feedback.get("urgency"),
        }


async def test_resolving_and_reopening_feedback(
    client: httpx.AsyncClient, workspace: WorkspaceHandle
) -> None:
    contact_id = await new_contact(client, workspace)
    angry = await created(
        client,
        workspace,
        contact_id,
        subject="angry",
        feedback={"kind": "direct", "scale": "nps", "score": 2, "topic": "delivery"},
    )
    calm = await created(client, workspace, contact_id, subject="calm")
    resolved_before = await created(
        client,
        workspace,
        contact_id,
        subject="handled",
        feedback={"kind": "direct", "sentiment": "negative"},
        attention_resolved_at="2026-03-01T12:00:00+07:00",
    )
    assert resolved_before["attention_resolved_at"] == "2026-03-01T05:00:00Z"
    assert await listed(client, workspace, needs_attention="true") == ["angry"]
    assert sorted(await listed(client, workspace, needs_attention="false")) == ["calm", "handled"]

    url = f"/v1/interactions/{angry['id']}"
    response = await client.patch(
        url, headers=workspace.headers, json={"attention_resolved_at": "2026-03-02T09:00:00Z"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["needs_attention"] is True
    assert response.json()["attention_resolved_at"] == "2026-03-02T09:00:00Z"
    assert await listed(client, workspace, needs_attention="true") == []
    reopened = await client.patch(
        url, headers=workspace.headers, json={"attention_resolved_at": None}
    )
    assert reopened.json()["attention_resolved_at"] is None
    assert await listed(client, workspace, needs_attention="true") == ["angry"]

    # Feedback is merged member by member; a better score ends the need for attention.
    better = await client.patch(url, headers=workspace.headers, json={"feedback": {"score": 9}})
    assert better.json()["feedback"]["topic"] == "delivery"
    assert better.json()["feedback"]["score"] == 9
    assert better.json()["needs_attention"] is False
    out_of_range = await client.patch(
        url, headers=workspace.headers, json={"feedback": {"scale": "csat"}}
    )
    problem = assert_problem(out_of_range, 422, "validation_error")
    assert problem["errors"][0]["field"] == "feedback.score"  # type: ignore[index]
    nothing_to_resolve = await client.patch(
        f"/v1/interactions/{calm['id']}",
        headers=workspace.headers,
        json={"attention_resolved_at": "2026-03-02T09:00:00Z"},
    )
    assert_problem(nothing_to_resolve, 422, "validation_error")
    cleared = await client.patch(url, headers=workspace.headers, json={"feedback": None})
    assert cleared.json()["feedback"] is None
    started = await client.patch(
        f"/v1/interactions/{calm['id']}",
        headers=workspace.headers,
        json={"feedback": {"kind": "inferred", "sentiment": "negative"}},
    )
    assert started.json()["needs_attention"] is True
    assert await listed(client, workspace, needs_attention="true") == ["calm"]


# -- list ------------------------------------------------------------------------------------


async def test_filters_sorts_and_cursors(
    client: httpx.AsyncClient, workspace: WorkspaceHandle
) -> None:
    first = await new_contact(client, workspace, "First")
    second = await new_contact(client, workspace, "Second")
    plan = [
        (first, "phone", "call", "inbound", "2026-01-01T08:00:00Z", None),
        (first, "email", "email", "outbound", "2026-01-03T08:00:00Z", None),
        (
            first,
            "chat",
            "message",
            "inbound",
            "2026-01-02T08:00:00Z",
            {"kind": "inferred", "sentiment": "positive"},
        ),
        (
            second,
            "store",
            "visit",
            None,
            "2026-01-05T08:00:00Z",
            {"kind": "direct", "sentiment": "negative"},
        ),
        (second, "web", "web_event", None, "2026-01-04T08:00:00Z", None),
    ]
    for index, (contact, channel, kind, direction, at, feedback) in enumerate(plan):
        await created(
            client, workspace, contact, subject=f"i{index}", channel=channel, type=kind,
            direction=direction, occurred_at=at, feedback=feedback,
        )  # fmt: skip
    assert await listed(client, workspace) == ["i3", "i4", "i1", "i2", "i0"]
    assert await listed(client, workspace, sort="occurred_at") == ["i0", "i2", "i1", "i4", "i3"]
    assert await listed(client, workspace, sort="created_at") == ["i0", "i1", "i2", "i3", "i4"]
    assert await listed(client, workspace, sort="-created_at") == ["i4", "i3", "i2", "i1", "i0"]
    assert await listed(client, workspace, contact_id=first) == ["i1", "i2", "i0"]
    assert await listed(client, workspace, channel=["phone", "web"]) == ["i4", "i0"]
    assert await listed(client, workspace, type="visit") == ["i3"]
    assert await listed(client, workspace, direction="inbound") == ["i2", "i0"]
    assert await listed(client, workspace, feedback_kind="inferred") == ["i2"]
    assert await listed(client, workspace, sentiment=["negative", "mixed"]) == ["i3"]
    assert await listed(
        client,
        workspace,
        occurred_after="2026-01-02T08:00:00Z",
        occurred_before="2026-01-04T08:00:00Z",
    ) == ["i1", "i2"]
    assert await listed(client, workspace, contact_id=MISSING) == []
    assert await listed(client, workspace, case_id=MISSING) == []

    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = await client.get("/v1/interactions", headers=workspace.headers, params=params)
        body = page.json()
        seen += [item["subject"] for item in body["data"]]
        if len(seen) == 2:
            # Inserting while paging neither repeats nor skips an item.
            await created(
                client, workspace, first, subject="late", occurred_at="2026-02-01T00:00:00Z"
            )
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == ["i3", "i4", "i1", "i2", "i0"]

    for params in (
        {"sort": "subject"},
        {"channel": "fax"},
        {"occurred_after": "2026-01-01T00:00:00"},
        {"occurred_after": "yesterday"},
        {"limit": 0},
        {"needs_attention": "maybe"},
    ):
        assert_problem(
            await client.get("/v1/interactions", headers=workspace.headers, params=params),
            422,
            "validation_error",
        )
    bad_cursor = await client.get(
        "/v1/interactions", headers=workspace.headers, params={"cursor": "abc"}
    )
    assert_problem(bad_cursor, 400, "invalid_cursor")
    page = await client.get("/v1/interactions", headers=workspace.headers, params={"limit": 1})
    other_sort = await client.get(
        "/v1/interactions",
        headers=workspace.headers,
        params={"cursor": page.json()["next_cursor"], "sort": "created_at"},
    )
    assert_problem(other_sort, 400, "invalid_cursor")


# -- links -----------------------------------------------------------------------------------


async def test_links_are_validated_through_the_registry(
    client: httpx.AsyncClient, workspace: WorkspaceHandle
) -> None:
    import uuid

    from app.interaction.links import register_link_target, unregister_link_target

    contact_id = await new_contact(client, workspace)
    known_campaign = uuid.uuid4()
    calls: list[tuple[uuid.UUID, set[uuid.UUID]]] = []

    async def campaigns_that_exist(
        session: Any, workspace_id: uuid.UUID, ids: Any
    ) -> set[uuid.UUID]:
        calls.append((workspace_id, set(ids)))
        return {known_campaign} if workspace_id == workspace.id else set()

    refused = await create(client, workspace, contact_id, campaign_id=str(known_campaign))
    problem = assert_problem(refused, 422, "validation_error")
    assert problem["errors"] == [  # no campaigns module yet: no campaign id can be valid
        {"field": "campaign_id", "message": "no campaign with this id in the workspace"}
    ]
    register_link_target("campaign", campaigns_that_exist)
    try:
        linked = await created(client, workspace, contact_id, campaign_id=str(known_campaign))
        assert linked["campaign_id"] == str(known_campaign)
        assert calls == [(workspace.id, {known_campaign})]
        unknown = await create(
            client, workspace, contact_id, campaign_id=MISSING, opportunity_id=MISSING
        )
        fields = [e["field"] for e in assert_problem(unknown, 422, "validation_error")["errors"]]  # type: ignore[attr-defined]
        assert fields == ["opportunity_id", "campaign_id"]
        patched = await client.patch(
            f"/v1/interactions/{linked['id']}",
            headers=workspace.headers,
            json={"campaign_id": MISSING},
        )
        assert_problem(patched, 422, "validation_error")
        unlinked = await client.patch(
            f"/v1/interactions/{linked['id']}",
            headers=workspace.headers,
            json={"campaign_id": None},
        )
        assert unlinked.json()["campaign_id"] is None
        assert await listed(client, workspace, campaign_id=str(known_campaign)) == []
    finally:
        unregister_link_target("campaign")


# -- idempotent ingest -----------------------------------------------------------------------


async def test_create_is_idempotent_by_external_id(
    client: httpx.AsyncClient, workspace: WorkspaceHandle, owner_engine: AsyncEngine
) -> None:
    contact_id = await new_contact(client, workspace)
    first = await create(
        client, workspace, contact_id, external_ids={"zendesk": "T-9", "line": "m1"}
    )
    assert first.status_code == 201
    repeat = await create(
        client, workspace, contact_id, subject="changed", external_ids={"line": "m1"}
    )
    assert repeat.status_code == 200, repeat.text
    assert repeat.json() == first.json()  # stored nothing new
    assert repeat.headers["etag"] == '"1"'
    assert await count_rows(owner_engine, workspace) == 1
    assert [row.type for row in await events(owner_engine, workspace)] == ["interaction.created"]


async def test_concurrent_duplicate_posts_store_one_row(
    client: httpx.AsyncClient, workspace: WorkspaceHandle, owner_engine: AsyncEngine
) -> None:
    contact_id = await new_contact(client, workspace)
    responses = await asyncio.gather(
        *(create(client, workspace, contact_id, external_ids={"pos": "R-1"}) for _ in range(6))
    )
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [200, 200, 200, 200, 200, 201], [r.text for r in responses]
    assert len({response.json()["id"] for response in responses}) == 1
    assert await count_rows(owner_engine, workspace) == 1
    assert len(await events(owner_engine, workspace)) == 1


# -- batch -----------------------------------------------------------------------------------


async def test_batch_reports_each_item(
    client: httpx.AsyncClient, workspace: WorkspaceHandle, owner_engine: AsyncEngine
) -> None:
    contact_id = await new_contact(client, workspace)
    stored = await created(client, workspace, contact_id, external_ids={"zendesk": "old"})
    items = [
        {**CALL, "contact_id": contact_id, "external_ids": {"zendesk": "n1"}},
        {**CALL, "contact_id": contact_id, "external_ids": {"zendesk": "old"}},
        {**CALL, "contact_id": contact_id, "channel": "fax"},
        {**CALL, "contact_id": MISSING},
        {**CALL, "contact_id": contact_id, "external_ids": {"zendesk": "n1"}},
        {**CALL, "contact_id": contact_id, "subject": "nul\x00"},
        {**CALL, "contact_id": contact_id, "feedback": {"kind": "direct", "sentiment": "negative"}},
    ]
    response = await client.post(
        "/v1/interactions/batch", headers=workspace.headers, json={"items": items}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    statuses = [result["status"] for result in body["results"]]
    assert statuses == ["created", "existing", "error", "error", "existing", "error", "created"]
    assert (body["created"], body["existing"], body["errors"]) == (2, 2, 3)
    results = body["results"]
    assert results[1]["id"] == stored["id"]
    assert results[4]["id"] == results[0]["id"]
    assert results[2]["error"]["code"] == "validation_error"
    assert results[2]["error"]["errors"][0]["field"] == "channel"
    assert results[3]["error"]["code"] == "not_found"
    assert results[5]["error"]["errors"][0]["field"] == "subject"
    fetched = await client.get(f"/v1/interactions/{results[6]['id']}", headers=workspace.headers)
    assert fetched.json()["needs_attention"] is True
    assert fetched.headers["etag"] == '"1"'
    assert await count_rows(owner_engine, workspace) == 3
    created_events = list(await events(owner_engine, workspace))
    assert len(created_events) == 3
    assert created_events[-1].data == fetched.json()

    again = await client.post(
        "/v1/interactions/batch", headers=workspace.headers, json={"items": items[:2]}
    )
    assert [r["status"] for r in again.json()["results"]] == ["existing", "existing"]
    assert await count_rows(owner_engine, workspace) == 3


async def test_batch_all_or_none(
    client: httpx.AsyncClient, workspace: WorkspaceHandle, owner_engine: AsyncEngine
) -> None:
    contact_id = await new_contact(client, workspace)
    good = {**CALL, "contact_id": contact_id}
    for bad in ({**CALL, "contact_id": MISSING}, {**CALL, "contact_id": contact_id, "type": "x"}):
        response = await client.post(
            "/v1/interactions/batch",
            headers=workspace.headers,
            json={"items": [good, bad], "all_or_none": True},
        )
        problem = assert_problem(response, 422, "validation_error")
        assert [r["status"] for r in problem["results"]] == ["rolled_back", "error"]  # type: ignore[attr-defined]
        assert problem["errors"][0]["field"].startswith("items.1")  # type: ignore[index]
    assert await count_rows(owner_engine, workspace) == 0
    assert await events(owner_engine, workspace) == []
    fine = await client.post(
        "/v1/interactions/batch",
        headers=workspace.headers,
        json={"items": [good, good], "all_or_none": True},
    )
    assert fine.json()["created"] == 2
    for body in ({"items": []}, {"items": [good] * 1001}, {"items": [good], "extra": 1}):
        assert_problem(
            await client.post("/v1/interactions/batch", headers=workspace.headers, json=body),
            422,
            "validation_error",
        )


async def test_a_full_batch_of_a_thousand_is_stored_with_one_existing(
    client: httpx.AsyncClient, workspace: WorkspaceHandle, owner_engine: AsyncEngine
) -> None:
    contacts = [await new_contact(client, workspace, f"c{index}") for index in range(20)]
    items = [
        {
            "contact_id": contacts[index % 20],
            "channel": "web",
            "type": "web_event",
            "occurred_at": f"2026-01-01T00:{index // 60 % 60:02d}:{index % 60:02d}Z",
            "subject": f"page view {index}",
            "attributes": {"path": f"/p/{index}"},
            "external_ids": {"ga": f"e-{index}"},
        }
        for index in range(1000)
    ]
    await client.post(
        "/v1/interactions/batch", headers=workspace.headers, json={"items": items[:1]}
    )
    response = await client.post(
        "/v1/interactions/batch", headers=workspace.headers, json={"items": items}
    )
    assert response.status_code == 200, response.text
    assert (response.json()["created"], response.json()["existing"]) == (999, 1)
    assert await count_rows(owner_engine, workspace) == 1000


async def external_id_owners(engine: AsyncEngine, ws: WorkspaceHandle) -> dict[str, str]:
    async with engine.connect() as connection:
        rows = await connection.execute(
            text(
                "SELECT system || ':' || value, interaction_id FROM interaction_external_ids "
                "WHERE workspace_id = :w"
            ),
            {"w": ws.id},
        )
        return {key: str(owner) for key, owner in rows.all()}


async def test_batch_repeats_within_one_batch(
    client: httpx.AsyncClient, workspace: WorkspaceHandle, owner_engine: AsyncEngine
) -> None:
    contact_id = await new_contact(client, workspace)
    items = [
        {**CALL, "contact_id": contact_id, "external_ids": {"zendesk": "T-1"}},
        {**CALL, "contact_id": contact_id, "external_ids": {"zendesk": "T-1"}, "subject": "x"},
        {**CALL, "contact_id": contact_id, "external_ids": {"line": "m9", "zendesk": "T-2"}},
        {**CALL, "contact_id": contact_id, "external_ids": {"zendesk": "T-2"}},
        # A repeat of the item before (by line m9): its new pbx id is not stored.
        {**CALL, "contact_id": contact_id, "external_ids": {"line": "m9", "pbx": "c5"}},
        {**CALL, "contact_id": contact_id},
        {**CALL, "contact_id": contact_id},
    ]
    response = await client.post(
        "/v1/interactions/batch", headers=workspace.headers, json={"items": items}
    )
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["status"] for r in results] == [
        "created", "existing", "created", "existing", "existing", "created", "created",
    ]  # fmt: skip
    first, third = results[0]["id"], results[2]["id"]
    assert [r["id"] for r in results[:5]] == [first, first, third, third, third]
    assert len({r["id"] for r in results}) == 4
    assert await count_rows(owner_engine, workspace) == 4
    assert await external_id_owners(owner_engine, workspace) == {
        "zendesk:T-1": first,
        "line:m9": third,
        "zendesk:T-2": third,
    }
    recorded = await events(owner_engine, workspace)
    assert sorted(str(row.aggregate_id) for row in recorded) == sorted(
        r["id"] for r in results if r["status"] == "created"
    )
    fetched = await client.get(f"/v1/interactions/{first}", headers=workspace.headers)
    assert fetched.json()["subject"] == CALL["subject"]  # the first of the repeats was stored
    assert fetched.json()["external_ids"] == {"zendesk": "T-1"}


async def test_batch_of_new_and_stored_items_in_any_order(
    client: httpx.AsyncClient, workspace: WorkspaceHandle, owner_engine: AsyncEngine
) -> None:
    contact_id = await new_contact(client, workspace)

    def item(index: int) -> dict[str, Any]:
        return {**CALL, "contact_id": contact_id, "external_ids": {"pbx": f"c-{index:03d}"}}

    first = await client.post(
        "/v1/interactions/batch",
        headers=workspace.headers,
        json={"items": [item(index) for index in range(0, 40, 2)]},
    )
    stored = {
        index: r["id"] for index, r in zip(range(0, 40, 2), first.json()["results"], strict=True)
    }
    order = [*range(39, -1, -1)]  # newest first, stored and new interleaved
    second = await client.post(
        "/v1/interactions/batch",
        headers=workspace.headers,
        json={"items": [item(index) for index in order]},
    )
    assert second.status_code == 200, second.text
    body = second.json()
    assert (body["created"], body["existing"], body["errors"]) == (20, 20, 0)
    for index, result in zip(order, body["results"], strict=True):
        if index in stored:
            assert (result["status"], result["id"]) == ("existing", stored[index])
        else:
            assert result["status"] == "created"
            assert result["id"] not in stored.values()
    owners = await external_id_owners(owner_engine, workspace)
    assert len(owners) == 40
    assert {owners[f"pbx:c-{index:03d}"] for index in range(40)} == {
        r["id"] for r in body["results"]
    }
    assert await count_rows(owner_engine, workspace) == 40
    assert len(await events(owner_engine, workspace)) == 40


async def test_overlapping_batches_at_once_store_each_external_id_once(
    client: httpx.AsyncClient, workspace: WorkspaceHandle, owner_engine: AsyncEngine
) -> None:
    """Partner syncs resending overlapping windows in different orders at the same time: no
    deadlock (a 409), no external id stored twice, and all answers agree on each item's id."""
    contact_id = await new_contact(client, workspace)

    def batch(keys: list[int]) -> dict[str, Any]:
        return {
            "items": [
                {
                    **CALL,
                    "contact_id": contact_id,
                    "external_ids": {"line": f"m{key}", **({"pbx": f"c{key}"} if key % 3 else {})},
                }
                for key in keys
            ]
        }

    keys = list(range(300))
    bodies = [batch(keys), batch(keys[::-1]), batch(keys[100:] + keys[:100]), batch(keys[::2])]
    responses = await asyncio.gather(
        *(
            client.post("/v1/interactions/batch", headers=workspace.headers, json=body)
            for body in bodies
        )
    )
    assert [r.status_code for r in responses] == [200, 200, 200, 200], [
        r.text[:300] for r in responses
    ]
    id_of: dict[str, str] = {}
    created = 0
    for body, response in zip(bodies, responses, strict=True):
        results = response.json()["results"]
        assert {r["status"] for r in results} <= {"created", "existing"}
        created += sum(1 for r in results if r["status"] == "created")
        for item, result in zip(body["items"], results, strict=True):
            assert id_of.setdefault(item["external_ids"]["line"], result["id"]) == result["id"]
    assert created == len(keys)
    assert len(set(id_of.values())) == len(keys)
    owners = await external_id_owners(owner_engine, workspace)
    assert {owners[f"line:m{key}"] for key in keys} == set(id_of.values())
    assert all(owners[f"pbx:c{key}"] == owners[f"line:m{key}"] for key in keys if key % 3)
    assert await count_rows(owner_engine, workspace) == len(keys)
    assert len(await events(owner_engine, workspace)) == len(keys)


# -- tenancy, scopes, merge ------------------------------------------------------------------


async def test_other_workspaces_interactions_are_invisible(
    client: httpx.AsyncClient, workspace: WorkspaceHandle, make_workspace: Any
) -> None:
    contact_id = await new_contact(client, workspace)
    item = await created(client, workspace, contact_id, external_ids={"zendesk": "shared"})
    other: WorkspaceHandle = await make_workspace()
    url = f"/v1/interactions/{item['id']}"
    assert_problem(await client.get(url, headers=other.headers), 404, "not_found")
    assert_problem(
        await client.patch(url, headers=other.headers, json={"subject": "x"}), 404, "not_found"
    )
    assert_problem(await client.delete(url, headers=other.headers), 404, "not_found")
    listing = await client.get("/v1/interactions", headers=other.headers)
    assert listing.json()["data"] == []
    by_key = await client.get(
        "/v1/interactions/by-external-id/zendesk/shared", headers=other.headers
    )
    assert_problem(by_key, 404, "not_found")
    # The same partner key in another workspace is another interaction.
    mine = await new_contact(client, other)
    theirs = await created(client, other, mine, external_ids={"zendesk": "shared"})
    assert theirs["id"] != item["id"]
    moved = await client.patch(url, headers=workspace.headers, json={"contact_id": mine})
    assert_problem(moved, 404, "not_found")


async def test_scopes(client: httpx.AsyncClient, workspace: WorkspaceHandle) -> None:
    contact_id = await new_contact(client, workspace)
    item = await created(client, workspace, contact_id)
    contacts_only = await workspace.key(Scope.contacts_read, Scope.contacts_write)
    reader = await workspace.key(Scope.interactions_read)
    writer = await workspace.key(Scope.interactions_write)
    url = f"/v1/interactions/{item['id']}"
    body = {**CALL, "contact_id": contact_id}
    for headers in (contacts_only,):
        assert_problem(await client.get("/v1/interactions", headers=headers), 403, "forbidden")
        assert_problem(await client.get(url, headers=headers), 403, "forbidden")
        assert_problem(
            await client.post("/v1/interactions", headers=headers, json=body), 403, "forbidden"
        )
    assert (await client.get(url, headers=reader)).status_code == 200
    assert_problem(
        await client.post("/v1/interactions", headers=reader, json=body), 403, "forbidden"
    )
    assert_problem(
        await client.post("/v1/interactions/batch", headers=reader, json={"items": [body]}),
        403,
        "forbidden",
    )
    assert_problem(await client.delete(url, headers=reader), 403, "forbidden")
    assert (await client.post("/v1/interactions", headers=writer, json=body)).status_code == 201
    assert_problem(await client.get(url, headers=writer), 403, "forbidden")
    assert_problem(await client.get("/v1/interactions"), 401, "unauthenticated")


async def test_merging_contacts_moves_their_interactions(
    client: httpx.AsyncClient, workspace: WorkspaceHandle
) -> None:
    survivor = await new_contact(client, workspace, "Keep")
    absorbed = await new_contact(client, workspace, "Gone")
    kept = await created(client, workspace, survivor, subject="kept")
    moved = await created(client, workspace, absorbed, subject="moved")
    response = await client.post(
        f"/v1/contacts/{survivor}/merge", headers=workspace.headers, json={"absorb": [absorbed]}
    )
    assert response.status_code == 200, response.text
    assert sorted(await listed(client, workspace, contact_id=survivor)) == ["kept", "moved"]
    assert await listed(client, workspace, contact_id=absorbed) == []
    fetched = await client.get(f"/v1/interactions/{moved['id']}", headers=workspace.headers)
    assert fetched.json()["contact_id"] == survivor
    assert fetched.headers["etag"] == '"2"'  # a new version: cached copies are stale
    untouched = await client.get(f"/v1/interactions/{kept['id']}", headers=workspace.headers)
    assert untouched.headers["etag"] == '"1"'
