"""Forecast, analytics, attainment and commission checked against figures worked out by hand
on small fixed data sets.

Recorded times (closing times, time spent in a stage) come from the database clock, so the
set-up moves them to fixed values with SQL after the API recorded them; everything else goes
through the API.
"""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import WorkspaceHandle
from tests.sales.helpers import (
    default_pipeline,
    execute,
    move,
    new_contact,
    new_opportunity,
    new_pipeline,
    stage_ids,
    thb,
    vnd,
)

DEALS_STAGES = [
    {"name": "Lead", "probability": 10},
    {"name": "Demo", "probability": 40},
    {"name": "Proposal", "probability": 70},
    {"name": "Won", "type": "won"},
    {"name": "Lost", "type": "lost"},
]


async def _walk(
    client: httpx.AsyncClient,
    ws: WorkspaceHandle,
    stages: dict[str, str],
    opportunity_id: str,
    path: list[str],
    loss_reason: str | None = None,
) -> None:
    for name in path:
        extra = {"loss_reason": loss_reason} if name == "Lost" else {}
        response = await move(client, ws, opportunity_id, stages[name], **extra)
        assert response.status_code == 200, response.text


async def _stay(engine: AsyncEngine, opportunity_id: str, stage: str, seconds: int) -> None:
    await execute(
        engine,
        "UPDATE opportunity_stage_changes SET seconds_in_previous_stage = :s "
        "WHERE opportunity_id = :o AND from_stage_name = :n",
        s=seconds,
        o=opportunity_id,
        n=stage,
    )


async def _analytics_data_set(
    client: httpx.AsyncClient, ws: WorkspaceHandle, engine: AsyncEngine
) -> dict[str, Any]:
    """Seven deals in the pipeline "Deals" (Lead 10%, Demo 40%, Proposal 70%, Won, Lost):

    | deal | owner | amount      | path                          | competitors   |
    |------|-------|-------------|-------------------------------|---------------|
    | A    | alice | 1000.00 THB | Lead, Demo, Proposal, Won     | Rival         |
    | B    | alice | 3000.00 THB | Lead, Demo, Lost (Price)      | Rival, Other  |
    | C    | bob   | 2000.00 THB | Lead, Proposal (open)         |               |
    | D    | bob   | 5000000 VND | Lead, Won                     |               |
    | E    | alice |  500.00 THB | Lead, Lost (Price)            |               |
    | F    | alice | 4000.00 THB | Lead (open)                   |               |
    | G    | bob   | 1500.00 THB | Lead, Demo, Lost (No budget)  | Rival         |

    C is expected to close on 2099-01-15, F on 2099-02-10, the others on 2099-06-30.
    Completed stays (seconds): in Lead A 100, B 200, C 300, D 400, E 500, G 1600; in Demo
    A 1000, B 2000, G 4000; in Proposal A 7200.
    """
    contact_id = await new_contact(client, ws)
    pipeline = await new_pipeline(client, ws, "Deals", DEALS_STAGES)
    stages = stage_ids(pipeline)
    rows = {
        "A": ("alice", thb("1000.00"), ["Demo", "Proposal", "Won"], None, ["Rival"]),
        "B": ("alice", thb("3000.00"), ["Demo", "Lost"], "Price", ["Rival", "Other"]),
        "C": ("bob", thb("2000.00"), ["Proposal"], None, []),
        "D": ("bob", vnd("5000000"), ["Won"], None, []),
        "E": ("alice", thb("500.00"), ["Lost"], "Price", []),
        "F": ("alice", thb("4000.00"), [], None, []),
        "G": ("bob", thb("1500.00"), ["Demo", "Lost"], "No budget", ["Rival"]),
    }
    closing = {"C": "2099-01-15", "F": "2099-02-10"}
    ids: dict[str, str] = {}
    for key, (owner, amount, path, reason, rivals) in rows.items():
        created = await new_opportunity(
            client,
            ws,
            name=f"Deal {key}",
            contact_id=contact_id,
            pipeline_id=pipeline["id"],
            owner=owner,
            amount=amount,
            expected_close_date=closing.get(key, "2099-06-30"),
            competitors=[{"name": name} for name in rivals],
        )
        ids[key] = created["id"]
        await _walk(client, ws, stages, created["id"], path, reason)
    stays = {
        "Lead": {"A": 100, "B": 200, "C": 300, "D": 400, "E": 500, "G": 1600},
        "Demo": {"A": 1000, "B": 2000, "G": 4000},
        "Proposal": {"A": 7200},
    }
    for stage, by_deal in stays.items():
        for key, seconds in by_deal.items():
            await _stay(engine, ids[key], stage, seconds)
    return {"pipeline": pipeline, "stages": stages, "ids": ids}


async def test_pipeline_analytics(
    client: httpx.AsyncClient, workspace: WorkspaceHandle, owner_engine: AsyncEngine
) -> None:
    data = await _analytics_data_set(client, workspace, owner_engine)
    response = await client.get(
        f"/v1/pipelines/{data['pipeline']['id']}/analytics", headers=workspace.headers
    )
    assert response.status_code == 200, response.text
    result = response.json()
    # 7 deals, won A and D, lost B, E and G: win rate 2 / 5.
    assert (result["opportunities"], result["won"], result["lost"]) == (7, 2, 3)
    assert result["win_rate"] == "0.4000"
    stages = {stage["name"]: stage for stage in result["stages"]}
    # Furthest open-or-won stage: A Won, B Demo, C Proposal, D Won, E Lead, F Lead, G Demo.
    # Reached Lead 7, Demo 5 (A B C D G), Proposal 3 (A C D), Won 2 (A D).
    assert [stages[n]["reached"] for n in ("Lead", "Demo", "Proposal", "Won", "Lost")] == [
        7, 5, 3, 2, 3,
    ]  # fmt: skip
    # Next: 5/7 = 0.714285..., 3/5, 2/3 = 0.666...; won among those reaching: 2/7, 2/5, 2/3, 2/2.
    assert [stages[n]["conversion_to_next"] for n in ("Lead", "Demo", "Proposal", "Won")] == [
        "0.7143", "0.6000", "0.6667", None,
    ]  # fmt: skip
    assert [stages[n]["conversion_to_won"] for n in ("Lead", "Demo", "Proposal", "Won")] == [
        "0.2857", "0.4000", "0.6667", "1.0000",
    ]  # fmt: skip
    assert stages["Lost"]["conversion_to_next"] is None
    # Lead: (100+200+300+400+500+1600)/6 = 516.67 -> 517; median of 6 = (300+400)/2 = 350.
    assert (stages["Lead"]["average_seconds"], stages["Lead"]["median_seconds"]) == (517, 350)
    # Demo: (1000+2000+4000)/3 = 2333.3 -> 2333; median 2000. Proposal: 7200 alone.
    assert (stages["Demo"]["average_seconds"], stages["Demo"]["median_seconds"]) == (2333, 2000)
    assert (stages["Proposal"]["average_seconds"], stages["Proposal"]["median_seconds"]) == (
        7200,
        7200,
    )
    assert stages["Won"]["average_seconds"] is None
    assert result["loss_reasons"] == [
        {"reason": "Price", "count": 2},
        {"reason": "No budget", "count": 1},
    ]
    # Rival: in A (won), B (lost), G (lost); Other: in B (lost).
    assert result["competitors"] == [
        {"name": "Rival", "won": 1, "lost": 2, "open": 0},
        {"name": "Other", "won": 0, "lost": 1, "open": 0},
    ]

    # Created in a range without any deal: nothing counted.
    empty = await client.get(
        f"/v1/pipelines/{data['pipeline']['id']}/analytics",
        headers=workspace.headers,
        params={"from": "2000-01-01", "to": "2000-12-31"},
    )
    assert empty.json()["opportunities"] == 0
    assert empty.json()["win_rate"] is None


def _figures(group: dict[str, Any]) -> dict[str, tuple[Any, ...]]:
    return {
        item["currency"]: (
            item["open_count"],
            item["open_amount"]["amount"],
            item["weighted_amount"]["amount"],
            item["won_count"],
            item["won_amount"]["amount"],
            item["lost_count"],
            item["lost_amount"]["amount"],
        )
        for item in group["by_currency"]
    }


async def test_forecast(
    client: httpx.AsyncClient, workspace: WorkspaceHandle, owner_engine: AsyncEngine
) -> None:
    data = await _analytics_data_set(client, workspace, owner_engine)
    pipeline_id = data["pipeline"]["id"]

    async def forecast(**params: Any) -> dict[str, Any]:
        response = await client.get(
            "/v1/opportunities/forecast",
            headers=workspace.headers,
            params={"pipeline_id": pipeline_id, **params},
        )
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    whole = await forecast()
    [group] = whole["groups"]
    assert group["key"] is None
    # Open THB: C 2000 at 70% + F 4000 at 10% = 6000, weighted 1400 + 400 = 1800.
    # Won: A 1000 THB, D 5000000 VND. Lost THB: B 3000 + E 500 + G 1500 = 5000.
    assert _figures(group) == {
        "THB": (2, "6000.00", "1800.00", 1, "1000.00", 3, "5000.00"),
        "VND": (0, "0", "0", 1, "5000000", 0, "0"),
    }
    by_owner = {g["key"]: _figures(g) for g in (await forecast(group_by="owner"))["groups"]}
    # alice: open F 4000 (400 weighted), won A 1000, lost B 3000 + E 500.
    # bob: open C 2000 (1400 weighted), lost G 1500, won D 5000000 VND.
    assert by_owner == {
        "alice": {"THB": (1, "4000.00", "400.00", 1, "1000.00", 2, "3500.00")},
        "bob": {
            "THB": (1, "2000.00", "1400.00", 0, "0.00", 1, "1500.00"),
            "VND": (0, "0", "0", 1, "5000000", 0, "0"),
        },
    }
    only_alice = await forecast(owner="alice")
    assert _figures(only_alice["groups"][0]) == by_owner["alice"]
    # In 2099 only the open deals count (the others closed today); C closes in January.
    january = await forecast(**{"from": "2099-01-01", "to": "2099-01-31"})
    assert _figures(january["groups"][0]) == {
        "THB": (1, "2000.00", "1400.00", 0, "0.00", 0, "0.00")
    }
    by_month = await forecast(**{"from": "2099-01-01", "to": "2099-12-31", "group_by": "month"})
    assert {g["key"]: _figures(g)["THB"][:3] for g in by_month["groups"]} == {
        "2099-01": (1, "2000.00", "1400.00"),
        "2099-02": (1, "4000.00", "400.00"),
    }
    by_stage = await forecast(group_by="stage")
    labels = {g["label"]: _figures(g) for g in by_stage["groups"]}
    assert labels["Proposal"]["THB"][:3] == (1, "2000.00", "1400.00")
    assert labels["Lost"]["THB"][5:] == (3, "5000.00")
    bad = await client.get(
        "/v1/opportunities/forecast",
        headers=workspace.headers,
        params={"from": "2099-02-01", "to": "2099-01-01"},
    )
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "query.to"


async def _won_at(
    client: httpx.AsyncClient,
    ws: WorkspaceHandle,
    engine: AsyncEngine,
    *,
    owner: str,
    amount: dict[str, str],
    closed_at: str,
    pipeline: dict[str, Any],
    status: str = "won",
) -> str:
    stages = {stage["type"]: stage["id"] for stage in pipeline["stages"]}
    contact_id = await new_contact(client, ws)
    extra = {"loss_reason": "Price"} if status == "lost" else {}
    created = await new_opportunity(
        client,
        ws,
        name=f"{owner} {amount['amount']} {closed_at[:10]}",
        contact_id=contact_id,
        owner=owner,
        amount=amount,
        pipeline_id=pipeline["id"],
        stage_id=stages[status],
        **extra,
    )
    await execute(
        engine,
        "UPDATE opportunities SET closed_at = CAST(CAST(:t AS text) AS timestamptz) WHERE id = :id",
        t=closed_at,
        id=created["id"],
    )
    return str(created["id"])


async def _commission_data_set(
    client: httpx.AsyncClient, ws: WorkspaceHandle, engine: AsyncEngine
) -> dict[str, Any]:
    """Won deals (closing times in UTC; the workspace is in Asia/Bangkok, UTC+7):

    | deal | owner | amount         | closed              | pipeline  |
    |------|-------|----------------|---------------------|-----------|
    | W1   | alice | 10000.25 THB   | 2026-03-05          | default   |
    | W2   | alice | 40000.00 THB   | 2026-03-20          | default   |
    | W3   | alice | 15000.00 THB   | 2026-04-02          | default   |
    | W4   | alice | 20000.00 THB   | 2026-03-25          | Renewals  |
    | W5   | bob   |  5000.00 THB   | 2026-03-15          | default   |
    | W6   | alice | 1000000 VND    | 2026-03-10          | default   |
    | W7   | alice | 20000.00 THB   | 2026-02-28T18:00Z   | default   |
    and a deal alice lost (99999.00 THB, 2026-03-11). W7 closed on 1 March in Bangkok.

    Targets: alice THB March 40000.00, alice THB April 50000.00, bob THB March 10000.00.
    Rules: the workspace's 5% with 8% above 100% of target; Renewals 3%; bob 10%.
    """
    default = await default_pipeline(client, ws)
    renewals = await new_pipeline(
        client,
        ws,
        "Renewals",
        [{"name": "Up for renewal", "probability": 60}, {"name": "Renewed", "type": "won"}],
    )
    ids = {}
    for key, owner, amount, closed, pipeline in (
        ("W1", "alice", thb("10000.25"), "2026-03-05T03:00:00Z", default),
        ("W2", "alice", thb("40000.00"), "2026-03-20T03:00:00Z", default),
        ("W3", "alice", thb("15000.00"), "2026-04-02T03:00:00Z", default),
        ("W4", "alice", thb("20000.00"), "2026-03-25T03:00:00Z", renewals),
        ("W5", "bob", thb("5000.00"), "2026-03-15T03:00:00Z", default),
        ("W6", "alice", vnd("1000000"), "2026-03-10T03:00:00Z", default),
        ("W7", "alice", thb("20000.00"), "2026-02-28T18:00:00Z", default),
    ):
        ids[key] = await _won_at(
            client, ws, engine, owner=owner, amount=amount, closed_at=closed, pipeline=pipeline
        )
    await _won_at(
        client,
        ws,
        engine,
        owner="alice",
        amount=thb("99999.00"),
        closed_at="2026-03-11T03:00:00Z",
        pipeline=default,
        status="lost",
    )
    return {"ids": ids, "default": default, "renewals": renewals}


async def _post(client: httpx.AsyncClient, ws: WorkspaceHandle, path: str, body: Any) -> Any:
    response = await client.post(path, headers=ws.headers, json=body)
    assert response.status_code == 201, response.text
    return response.json()


async def test_targets_attainment(
    client: httpx.AsyncClient, workspace: WorkspaceHandle, owner_engine: AsyncEngine
) -> None:
    await _commission_data_set(client, workspace, owner_engine)
    march = {"period_start": "2026-03-01", "period_end": "2026-03-31"}
    alice = await _post(
        client, workspace, "/v1/sales-targets", {"owner": "alice", **march, "amount": thb("40000")}
    )
    # alice won in March (Bangkok days): W1 10000.25 + W2 40000 + W4 20000 + W7 20000
    # = 90000.25 THB; 90000.25 / 40000 = 2.25000625 -> 2.2500.
    assert alice["won"] == thb("90000.25")
    assert alice["attainment"] == "2.2500"
    april = await _post(
        client,
        workspace,
        "/v1/sales-targets",
        {"owner": "alice", "period_start": "2026-04-01", "period_end": "2026-04-30",
         "amount": thb("50000.00")},
    )  # fmt: skip
    # W3 15000 / 50000 = 0.3.
    assert (april["won"], april["attainment"]) == (thb("15000.00"), "0.3000")
    bob = await _post(
        client, workspace, "/v1/sales-targets", {"owner": "bob", **march, "amount": thb("10000")}
    )
    assert (bob["won"], bob["attainment"]) == (thb("5000.00"), "0.5000")
    listed = await client.get(
        "/v1/sales-targets",
        headers=workspace.headers,
        params={"owner": "alice", "from": "2026-03-15", "to": "2026-03-20"},
    )
    assert [t["id"] for t in listed.json()["data"]] == [alice["id"]]
    duplicate = await client.post(
        "/v1/sales-targets",
        headers=workspace.headers,
        json={"owner": "alice", **march, "amount": thb("1.00")},
    )
    assert duplicate.status_code == 409
    assert duplicate.json()["code"] == "duplicate"


async def test_commission_statements(
    client: httpx.AsyncClient, workspace: WorkspaceHandle, owner_engine: AsyncEngine
) -> None:
    data = await _commission_data_set(client, workspace, owner_engine)
    ids = data["ids"]
    for owner, amount in (("alice", "40000.00"), ("bob", "10000.00")):
        await _post(
            client,
            workspace,
            "/v1/sales-targets",
            {"owner": owner, "period_start": "2026-03-01", "period_end": "2026-03-31",
             "amount": thb(amount)},
        )  # fmt: skip
    default_rule = await _post(
        client,
        workspace,
        "/v1/commission-rules",
        {"name": "Standard", "rate_bp": 500, "tiers": [{"above_percent": 100, "rate_bp": 800}]},
    )
    renewals_rule = await _post(
        client,
        workspace,
        "/v1/commission-rules",
        {"name": "Renewals", "pipeline_id": data["renewals"]["id"], "rate_bp": 300},
    )
    bob_rule = await _post(
        client, workspace, "/v1/commission-rules", {"name": "Bob", "owner": "bob", "rate_bp": 1000}
    )
    response = await client.get(
        "/v1/commissions",
        headers=workspace.headers,
        params={"from": "2026-03-01", "to": "2026-03-31"},
    )
    assert response.status_code == 200, response.text
    statements = response.json()["data"]
    assert [(s["owner"], s["currency"]) for s in statements] == [
        ("alice", "THB"), ("alice", "VND"), ("bob", "THB"),
    ]  # fmt: skip
    alice, alice_vnd, bob = statements
    # alice THB in closing order (Bangkok days), target T = 4000000 minor units:
    #   W7 (1 Mar) 2000000 -> 2000000 won, below T: 5% = 100000
    #   W1 (5 Mar) 1000025 -> 3000025 won, below T: 5% = 50001.25 -> 50001
    #   W2 (20 Mar) 4000000 -> 7000025 won: 999975 up to T at 5% = 49998.75 and
    #      3000025 above T at 8% = 240002, together 290000.75 -> 290001
    #   W4 (25 Mar) 2000000 in Renewals, whose rule (3%, no tiers) is more specific = 60000
    #   total 100000 + 50001 + 290001 + 60000 = 500002 -> 5000.02 THB
    assert [d["opportunity_id"] for d in alice["deals"]] == [
        ids["W7"],
        ids["W1"],
        ids["W2"],
        ids["W4"],
    ]
    assert [d["commission"]["amount"] for d in alice["deals"]] == [
        "1000.00", "500.01", "2900.01", "600.00",
    ]  # fmt: skip
    assert [d["rule_id"] for d in alice["deals"]] == [default_rule["id"]] * 3 + [
        renewals_rule["id"]
    ]
    assert alice["won_amount"] == thb("90000.25")
    assert alice["target"] == thb("40000.00")
    assert alice["commission"] == thb("5000.02")
    # VND: no target in VND, so no tier: 5% of 1000000 = 50000.
    assert alice_vnd["commission"] == vnd("50000")
    assert alice_vnd["target"] is None
    # bob: his own rule, 10% of 5000.00.
    assert [d["rule_id"] for d in bob["deals"]] == [bob_rule["id"]]
    assert bob["commission"] == thb("500.00")

    only_bob = await client.get(
        "/v1/commissions",
        headers=workspace.headers,
        params={"owner": "bob", "from": "2026-03-01", "to": "2026-03-31"},
    )
    assert [s["owner"] for s in only_bob.json()["data"]] == ["bob"]
    missing = await client.get("/v1/commissions", headers=workspace.headers)
    assert missing.status_code == 422
