"""A small seed of the benchmark's workspace is consistent: what ``bench.seed_workspace`` loads
by COPY is what the services would have stored, and the API reads it back.

Seeds a few dozen records of each kind into a fresh workspace (seconds), then checks the
invariants the services keep: every opportunity's history ends at its current stage, every
case's status history ends at its status, numbers come from the counter, and the loyalty ledger
passes the same checks as the loyalty tests.
"""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db.scratch import plain_dsn
from bench import seed_workspace as seed_workspace_module
from bench.scenarios import SCENARIOS, drive, load_dataset
from bench.seed_workspace import Sizes, seed_workspace
from tests.conftest import ProvisionedDatabase, WorkspaceHandle
from tests.loyalty.helpers import check_invariants

PEOPLE = (
    ("สมชาย", "ใจดี", "th-TH"),
    ("สมหญิง", "ใจดี", "th-TH"),
    ("Siriporn", "Wongsawat", "th-TH"),
    ("Văn An", "Nguyễn", "vi-VN"),
    ("Thị Mai", "Nguyễn", "vi-VN"),
    ("Minh Khoa", "Lê", "vi-VN"),
)
SIZES = Sizes(accounts=8, relationships=25, opportunities=60, cases=60, members=40)


@pytest.fixture
async def seeded(
    client: httpx.AsyncClient,
    workspace: WorkspaceHandle,
    test_database: ProvisionedDatabase,
    owner_engine: AsyncEngine,
    monkeypatch: pytest.MonkeyPatch,
) -> dict[str, object]:
    # Reversals are rare at scale; here some must happen for the ledger checks to cover them.
    monkeypatch.setattr(seed_workspace_module, "REVERSED_SHARE", 0.5)
    items = [
        {"given_name": given, "family_name": family, "locale": locale,
         "external_ids": {"pos": f"P-{n}-{index}"}}
        for n in range(10)
        for index, (given, family, locale) in enumerate(PEOPLE)
    ]  # fmt: skip
    created = await client.post(
        "/v1/contacts/batch", headers=workspace.headers, json={"items": items}
    )
    assert created.status_code == 200, created.text
    # Customers of some years' standing, as the bench's seeded contacts are: their deals,
    # cases and points have had time to move.
    async with owner_engine.begin() as connection:
        await connection.execute(
            text(
                "UPDATE contacts SET created_at = now() - (200 + n * 13) * interval '1 day' "
                "FROM (SELECT id AS cid, row_number() OVER (ORDER BY id) AS n FROM contacts "
                "WHERE workspace_id = :w) o WHERE workspace_id = :w AND id = o.cid"
            ),
            {"w": workspace.id},
        )
    return await seed_workspace(
        plain_dsn(test_database.owner_url), workspace.id, SIZES, seed=3, check_references=True
    )


async def _rows(
    engine: AsyncEngine, sql: str, workspace: WorkspaceHandle
) -> list[tuple[object, ...]]:
    async with engine.connect() as connection:
        return [tuple(row) for row in await connection.execute(text(sql), {"w": workspace.id})]


async def test_every_kind_is_seeded(
    seeded: dict[str, object], owner_engine: AsyncEngine, workspace: WorkspaceHandle
) -> None:
    counts = dict(
        await _rows(
            owner_engine,
            """
            SELECT 'accounts', count(*) FROM accounts WHERE workspace_id = :w
            UNION ALL SELECT 'linked', count(*) FROM contacts
              WHERE workspace_id = :w AND account_id IS NOT NULL
            UNION ALL SELECT 'relationships', count(*) FROM contact_relationships
              WHERE workspace_id = :w
            UNION ALL SELECT 'opportunities', count(*) FROM opportunities WHERE workspace_id = :w
            UNION ALL SELECT 'cases', count(*) FROM cases WHERE workspace_id = :w
            UNION ALL SELECT 'members', count(*) FROM loyalty_accounts WHERE workspace_id = :w
            UNION ALL SELECT 'redemptions', count(*) FROM loyalty_redemptions
              WHERE workspace_id = :w
            """,
            workspace,
        )
    )

    assert counts["accounts"] == SIZES.accounts
    assert counts["linked"] >= SIZES.accounts
    assert counts["relationships"] % 2 == 0
    assert counts["relationships"] > 0
    assert counts["opportunities"] == SIZES.opportunities
    assert counts["cases"] == SIZES.cases
    assert counts["members"] == SIZES.members
    assert counts["redemptions"] > 0
    assert seeded["rows"]["loyalty_entries"] > SIZES.members  # type: ignore[index]


async def test_the_loyalty_ledger_keeps_its_invariants(
    seeded: dict[str, object], owner_engine: AsyncEngine, workspace: WorkspaceHandle
) -> None:
    await check_invariants(owner_engine, workspace)
    kinds = {
        kind
        for (kind,) in await _rows(
            owner_engine,
            "SELECT DISTINCT kind FROM loyalty_entries WHERE workspace_id = :w",
            workspace,
        )
    }
    assert {"earn", "redeem", "reverse"} <= kinds
    reversed_ = await _rows(
        owner_engine,
        "SELECT count(*) FROM loyalty_redemptions WHERE workspace_id = :w "
        "AND status = 'reversed' AND reversal_entry_id IS NOT NULL",
        workspace,
    )
    assert reversed_[0][0] > 0


async def test_every_opportunity_history_ends_at_its_stage(
    seeded: dict[str, object], owner_engine: AsyncEngine, workspace: WorkspaceHandle
) -> None:
    broken = await _rows(
        owner_engine,
        """
        SELECT o.id FROM opportunities o
        JOIN LATERAL (SELECT to_stage_id, to_status, changed_at FROM opportunity_stage_changes c
                      WHERE c.workspace_id = o.workspace_id AND c.opportunity_id = o.id
                      ORDER BY changed_at DESC, id DESC LIMIT 1) last ON true
        JOIN LATERAL (SELECT from_status, changed_at FROM opportunity_stage_changes c
                      WHERE c.workspace_id = o.workspace_id AND c.opportunity_id = o.id
                      ORDER BY changed_at, id LIMIT 1) first ON true
        WHERE o.workspace_id = :w AND (
          last.to_stage_id <> o.stage_id OR last.to_status <> o.status
          OR last.changed_at <> o.stage_entered_at OR first.from_status IS NOT NULL
          OR first.changed_at <> o.created_at
          OR o.version <> (SELECT count(*) FROM opportunity_stage_changes c
                           WHERE c.workspace_id = o.workspace_id AND c.opportunity_id = o.id)
          OR (o.status <> 'open' AND o.closed_at IS DISTINCT FROM last.changed_at))
        """,
        workspace,
    )
    assert broken == []
    statuses = {s for (s,) in await _rows(
        owner_engine, "SELECT DISTINCT status FROM opportunities WHERE workspace_id = :w", workspace
    )}  # fmt: skip
    assert statuses == {"open", "won", "lost"}


async def test_every_case_history_ends_at_its_status(
    seeded: dict[str, object], owner_engine: AsyncEngine, workspace: WorkspaceHandle
) -> None:
    broken = await _rows(
        owner_engine,
        """
        SELECT c.id FROM cases c
        JOIN LATERAL (SELECT to_value FROM case_history h
                      WHERE h.workspace_id = c.workspace_id AND h.case_id = c.id
                        AND h.field = 'status' ORDER BY at DESC, id DESC LIMIT 1) last ON true
        JOIN LATERAL (SELECT from_value, to_value, at FROM case_history h
                      WHERE h.workspace_id = c.workspace_id AND h.case_id = c.id
                        AND h.field = 'status' ORDER BY at, id LIMIT 1) first ON true
        WHERE c.workspace_id = :w AND (
          last.to_value <> c.status OR first.from_value IS NOT NULL
          OR first.to_value <> 'new' OR first.at <> c.created_at
          OR (c.status <> 'new') <> (c.first_response_at IS NOT NULL)
          OR (c.sla_policy_id IS NOT NULL AND c.resolution_due_at IS NULL))
        """,
        workspace,
    )
    assert broken == []
    numbers = await _rows(
        owner_engine,
        "SELECT count(DISTINCT number), min(number), max(number), "
        "(SELECT last_number FROM case_counters WHERE workspace_id = :w) "
        "FROM cases WHERE workspace_id = :w",
        workspace,
    )
    assert numbers == [(SIZES.cases, 1, SIZES.cases, SIZES.cases)]


async def test_the_api_reads_what_was_seeded(
    seeded: dict[str, object],
    client: httpx.AsyncClient,
    owner_engine: AsyncEngine,
    workspace: WorkspaceHandle,
) -> None:
    for path, table in (
        ("/v1/accounts", "accounts"),
        ("/v1/opportunities", "opportunities"),
        ("/v1/cases", "cases"),
        ("/v1/loyalty/accounts", "loyalty_accounts"),
    ):
        ((some_id,),) = await _rows(
            owner_engine, f"SELECT id FROM {table} WHERE workspace_id = :w LIMIT 1", workspace
        )
        answered = await client.get(f"{path}/{some_id}", headers=workspace.headers)
        assert answered.status_code == 200, answered.text
    ((member,),) = await _rows(
        owner_engine,
        "SELECT account_id FROM loyalty_redemptions WHERE workspace_id = :w LIMIT 1",
        workspace,
    )
    entries = await client.get(f"/v1/loyalty/accounts/{member}/entries", headers=workspace.headers)
    assert entries.status_code == 200, entries.text
    assert any(entry["kind"] == "redeem" for entry in entries.json()["data"])


@pytest.mark.parametrize(
    "name", ["loyalty_many_accounts", "loyalty_hot_account", "mobile_app", "pos_partner"]
)
async def test_the_loyalty_workloads_run_on_seeded_members(
    name: str,
    seeded: dict[str, object],
    client: httpx.AsyncClient,
    owner_engine: AsyncEngine,
    workspace: WorkspaceHandle,
) -> None:
    client.headers.update(workspace.headers)
    data = await load_dataset(client)

    outcome = await drive(client, SCENARIOS[name], data, concurrency=2, visits=6)

    samples = {step: stats.error_samples for step, stats in outcome.record.steps.items()}
    assert outcome.record.errors == 0, samples
    members = {str(row[0]) for row in await _rows(
        owner_engine, "SELECT id FROM loyalty_accounts WHERE workspace_id = :w", workspace
    )}  # fmt: skip
    # The seeded members, not members created for the run.
    assert set(data.extra["loyalty_accounts"].values()) <= members
    assert len(members) == SIZES.members
    await check_invariants(owner_engine, workspace)
