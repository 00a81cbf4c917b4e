"""Forecast, analytics, targets, commission and leads through GraphQL: the same figures as
the REST tests (tests/sales/test_figures.py works them out)."""

from __future__ import annotations

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import WorkspaceHandle
from tests.sales.test_figures import _analytics_data_set, _commission_data_set
from tests.sales.test_graphql import gql


async def test_forecast_and_analytics(
    client: httpx.AsyncClient, workspace: WorkspaceHandle, owner_engine: AsyncEngine
) -> None:
    data = await _analytics_data_set(client, workspace, owner_engine)
    body = await gql(
        client,
        workspace,
        """query($p: UUID!) {
          forecast(pipelineId: $p, groupBy: "owner") { groups { key byCurrency {
            currency openCount openAmount { amount } weightedAmount { amount }
            wonAmount { amount } lostCount lostAmount { amount } } } }
          pipelineAnalytics(pipelineId: $p) { winRate won lost
            stages { name reached conversionToNext conversionToWon averageSeconds medianSeconds }
            lossReasons { reason count } competitors { name won lost open } }
        }""",
        p=data["pipeline"]["id"],
    )
    assert "errors" not in body, body
    groups = {g["key"]: g["byCurrency"] for g in body["data"]["forecast"]["groups"]}
    assert groups["alice"] == [
        {
            "currency": "THB",
            "openCount": 1,
            "openAmount": {"amount": "4000.00"},
            "weightedAmount": {"amount": "400.00"},
            "wonAmount": {"amount": "1000.00"},
            "lostCount": 2,
            "lostAmount": {"amount": "3500.00"},
        }
    ]
    analytics = body["data"]["pipelineAnalytics"]
    assert (analytics["winRate"], analytics["won"], analytics["lost"]) == ("0.4000", 2, 3)
    lead = analytics["stages"][0]
    assert lead == {
        "name": "Lead",
        "reached": 7,
        "conversionToNext": "0.7143",
        "conversionToWon": "0.2857",
        "averageSeconds": 517,
        "medianSeconds": 350,
    }
    assert analytics["lossReasons"] == [
        {"reason": "Price", "count": 2},
        {"reason": "No budget", "count": 1},
    ]
    assert analytics["competitors"][0] == {"name": "Rival", "won": 1, "lost": 2, "open": 0}


async def test_targets_and_commission(
    client: httpx.AsyncClient, workspace: WorkspaceHandle, owner_engine: AsyncEngine
) -> None:
    await _commission_data_set(client, workspace, owner_engine)
    created = await gql(
        client,
        workspace,
        """mutation {
          createSalesTarget(input: {owner: "alice", periodStart: "2026-03-01",
            periodEnd: "2026-03-31", amount: {amount: "40000.00", currency: "THB"}}) {
            won { amount } attainment }
          createCommissionRule(input: {name: "Standard", rateBp: 500,
            tiers: [{abovePercent: 100, rateBp: 800}]}) { id rateBp tiers { abovePercent } }
        }""",
    )
    assert "errors" not in created, created
    assert created["data"]["createSalesTarget"] == {
        "won": {"amount": "90000.25"},
        "attainment": "2.2500",
    }
    body = await gql(
        client,
        workspace,
        """{ commissions(fromDate: "2026-03-01", toDate: "2026-03-31", owner: "alice") {
              currency commission { amount } deals { commission { amount } } }
            salesTargets(owner: "alice") { edges { node { attainment } } } }""",
    )
    assert "errors" not in body, body
    thb = body["data"]["commissions"][0]
    # Without the Renewals rule of the REST test, W4 falls under the standard rule: it is
    # above target, 8% of 2000000 = 160000; the others as there: 100000 + 50001 + 290001.
    assert thb["currency"] == "THB"
    assert [d["commission"]["amount"] for d in thb["deals"]] == [
        "1000.00", "500.01", "2900.01", "1600.00",
    ]  # fmt: skip
    assert thb["commission"] == {"amount": "6000.02"}
    assert body["data"]["salesTargets"]["edges"] == [{"node": {"attainment": "2.2500"}}]


async def test_leads_and_pipeline_mutations(
    client: httpx.AsyncClient, workspace: WorkspaceHandle
) -> None:
    body = await gql(
        client,
        workspace,
        """mutation {
          createLead(input: {name: "Trần Thị Mai", company: "Hội An Crafts",
            email: "mai@hoiancrafts.example", score: 60}) { id status }
          createPipeline(input: {name: "Events", stages: [{name: "Asked", probability: 20},
            {name: "Booked", type: "won"}]}) { id stages { id name } }
        }""",
    )
    assert "errors" not in body, body
    lead_id = body["data"]["createLead"]["id"]
    pipeline = body["data"]["createPipeline"]
    converted = await gql(
        client,
        workspace,
        """mutation($id: UUID!, $p: UUID!) {
          convertLead(id: $id, input: {opportunity: {amount: {amount: "15000000",
            currency: "VND"}, expectedCloseDate: "2099-05-01", pipelineId: $p}}) {
            lead { status } contactCreated accountCreated opportunityId }
        }""",
        id=lead_id,
        p=pipeline["id"],
    )
    assert "errors" not in converted, converted
    result = converted["data"]["convertLead"]
    assert result["lead"]["status"] == "converted"
    assert result["contactCreated"]
    assert result["accountCreated"]
    again = await gql(
        client, workspace, "mutation($id: UUID!) { convertLead(id: $id) { contactId } }", id=lead_id
    )
    assert again["errors"][0]["extensions"]["code"] == "conflict"
    stage = await gql(
        client,
        workspace,
        """mutation($p: UUID!) {
          addPipelineStage(pipelineId: $p, input: {name: "Lost", type: "lost"}) {
            stages { name type probability } version }
        }""",
        p=pipeline["id"],
    )
    assert stage["data"]["addPipelineStage"]["stages"][-1] == {
        "name": "Lost",
        "type": "lost",
        "probability": 0,
    }
    listed = await gql(
        client,
        workspace,
        """query($p: UUID!) { opportunities(filter: {pipelineId: $p}) {
             edges { node { name stageName amount { amount currency } } } } }""",
        p=pipeline["id"],
    )
    assert listed["data"]["opportunities"]["edges"] == [
        {
            "node": {
                "name": "Hội An Crafts",
                "stageName": "Asked",
                "amount": {"amount": "15000000", "currency": "VND"},
            }
        }
    ]
