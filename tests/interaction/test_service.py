"""The batched reads other modules build on (360 view, timeline, DataLoaders)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import orjson
import pytest

from app.auth.dependencies import AuthContext
from app.db.session import Database, bind_workspace
from app.interaction import schemas
from app.interaction.service import _event_json, _fields
from app.interaction.service import interaction as interaction_service
from app.kit.errors import ValidationFailed
from tests.conftest import WorkspaceHandle
from tests.test_graphql import count_statements


async def seed(client: httpx.AsyncClient, ws: WorkspaceHandle) -> list[str]:
    contacts = []
    for name in ("A", "B", "C"):
        response = await client.post("/v1/contacts", headers=ws.headers, json={"given_name": name})
        contacts.append(response.json()["id"])
    a, b, _ = contacts
    plan: list[tuple[str, str, int, dict[str, Any] | None]] = [
        (a, "phone", 1, None),
        (a, "phone", 2, {"kind": "direct", "sentiment": "negative"}),
        (a, "email", 3, None),
        (a, "chat", 4, {"kind": "direct", "scale": "nps", "score": 3}),
        (a, "chat", 5, {"kind": "direct", "scale": "nps", "score": 10}),
        (b, "store", 6, {"kind": "indirect", "urgency": "critical"}),
    ]
    items = [
        {
            "contact_id": contact,
            "channel": channel,
            "type": "note",
            "occurred_at": f"2026-01-0{day}T00:00:00Z",
            "subject": f"{contact[-4:]}-{day}",
            "external_ids": {"seed": f"{contact}-{day}"},
            "feedback": feedback,
        }
        for contact, channel, day, feedback in plan
    ]
    response = await client.post(
        "/v1/interactions/batch", headers=ws.headers, json={"items": items}
    )
    assert response.json()["created"] == 6, response.text
    return contacts


async def test_batched_reads_are_one_statement_each(
    client: httpx.AsyncClient, workspace: WorkspaceHandle, database: Database
) -> None:
    a, b, c = await seed(client, workspace)
    ids = [uuid.UUID(a), uuid.UUID(b), uuid.UUID(c), uuid.uuid4()]
    auth = AuthContext(workspace_id=workspace.id, api_key_id=uuid.uuid4(), scopes=frozenset())
    async with database.sessionmaker() as session, session.begin():
        await bind_workspace(session, workspace.id)
        with count_statements(database) as statements:
            recent = await interaction_service.recent_for_contacts(session, auth, ids, 3)
        assert len(statements) == 1
        with count_statements(database) as statements:
            counts = await interaction_service.counts_by_channel(session, auth, ids)
        assert len(statements) == 1
        with count_statements(database) as statements:
            open_feedback = await interaction_service.open_feedback_for_contacts(
                session, auth, ids, 10
            )
        assert len(statements) == 1
        with pytest.raises(ValidationFailed):
            await interaction_service.recent_for_contacts(session, auth, ids, 0)

    def days(rows: list[Any]) -> list[int]:
        return [row.occurred_at.day for row in rows]

    assert set(recent) == {ids[0], ids[1]}
    assert days(recent[ids[0]]) == [5, 4, 3]
    assert days(recent[ids[1]]) == [6]
    # External ids come with the rows, so the REST shape needs no further query.
    schema = interaction_service.to_schema(recent[ids[1]][0])
    assert schema.external_ids == {"seed": f"{b}-6"}
    assert schema.needs_attention is True
    assert counts == {ids[0]: {"phone": 2, "email": 1, "chat": 2}, ids[1]: {"store": 1}}
    assert {key: days(rows) for key, rows in open_feedback.items()} == {
        ids[0]: [4, 2],
        ids[1]: [6],
    }
    empty = AuthContext(workspace_id=uuid.uuid4(), api_key_id=uuid.uuid4(), scopes=frozenset())
    async with database.sessionmaker() as session, session.begin():
        await bind_workspace(session, workspace.id)
        assert await interaction_service.recent_for_contacts(session, empty, ids, 3) == {}
        assert await interaction_service.recent_for_contacts(session, auth, [], 3) == {}
        assert await interaction_service.counts_by_channel(session, auth, []) == {}


class _DriverUUID(uuid.UUID):
    pass


def test_event_json_is_the_rest_shape() -> None:
    """Batch ingest writes its events' JSON without building the response model: the same
    fields and the same values as the model's JSON, whatever the offsets and precisions."""
    bangkok = timezone(timedelta(hours=7))
    full = {
        "id": uuid.uuid4(),
        "contact_id": uuid.uuid4(),
        "channel": "chat",
        "direction": "inbound",
        "type": "complaint",
        "occurred_at": datetime(2026, 3, 1, 10, 15, 0, 250, tzinfo=bangkok),
        "subject": "สินค้ายังไม่มาถึงค่ะ",
        "body": 'Giao hàng chậm "quá" <b>\n',
        "agent_id": "agent-7",
        "duration_seconds": 245,
        "attributes": {"queue": "th", "tags": ["a", 1, 2.5, None, True], "deep": {"x": {}}},
        "feedback_kind": "direct",
        "sentiment": "negative",
        "score": 3,
        "score_scale": "nps",
        "topic": "delivery",
        "urgency": "high",
        "needs_attention": True,
        "attention_resolved_at": datetime(2026, 3, 2, tzinfo=UTC),
        "case_id": uuid.uuid4(),
        "opportunity_id": uuid.uuid4(),
        "campaign_id": uuid.uuid4(),
        "created_at": datetime(2026, 3, 1, 3, 15, 1, 123456, tzinfo=UTC),
        "updated_at": datetime(2026, 3, 1, 3, 15, 1, 123456, tzinfo=UTC),
        "version": 1,
    }
    bare = {
        **full,
        **dict.fromkeys(
            (
                "direction",
                "subject",
                "body",
                "agent_id",
                "duration_seconds",
                "feedback_kind",
                "attention_resolved_at",
                "case_id",
                "opportunity_id",
                "campaign_id",
            ),
        ),
        "attributes": {},
        "needs_attention": False,
        "occurred_at": datetime(2026, 3, 1, tzinfo=UTC),
    }
    # Ids read from the database are the driver's subclass of uuid.UUID.
    read_back = {
        **bare,
        "contact_id": _DriverUUID(str(uuid.uuid4())),
        "case_id": _DriverUUID(int=7),
    }
    samples = ((full, {"zendesk": "T-1", "line": "m"}), (bare, {}), (read_back, {"pbx": "c"}))
    for columns, external_ids in samples:
        fields = _fields(columns.__getitem__, external_ids)
        assert set(fields) == set(schemas.Interaction.model_fields)
        model = schemas.Interaction.model_validate(fields)
        assert orjson.loads(_event_json(fields)) == orjson.loads(model.model_dump_json())
