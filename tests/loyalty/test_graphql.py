"""Loyalty over GraphQL: the same rules and errors as REST, batched nested reads."""

from __future__ import annotations

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from app.auth.scopes import Scope
from app.db.session import Database
from tests.conftest import WorkspaceHandle
from tests.loyalty.helpers import (
    check_invariants,
    earn,
    enrol,
    new_program,
    program_body,
    purchase_now,
)
from tests.purchase.helpers import new_contact, thb
from tests.test_graphql import codes, count_statements, gql

ACCOUNT_FIELDS = """
  id available pending balance lifetimeEarned redeemed expired
  tier { name } progress { qualifying needed nextTier { name } }
  expiring { days30 days60 days90 }
"""


async def test_every_write_through_mutations(
    client: httpx.AsyncClient, workspace: WorkspaceHandle, owner_engine: AsyncEngine
) -> None:
    headers = workspace.headers
    body = program_body(tiers=[{"name": "Silver", "threshold": 50}])
    created = await gql(
        client,
        headers,
        "mutation($input: JSON!) { createLoyaltyProgram(input: $input) "
        "{ id name tiers { id name threshold earnMultiplier } rules } }",
        {"input": body},
    )
    program = created["data"]["createLoyaltyProgram"]
    assert program["tiers"][0]["earnMultiplier"] == "1"
    assert program["rules"]["earn_rates"][0]["spend"] == {"amount": "25.00", "currency": "THB"}
    contact_id = await new_contact(client, workspace)
    enrolled = await gql(
        client,
        headers,
        f"mutation($p: UUID!, $c: UUID!) {{ enrolLoyaltyMember(programId: $p, contactId: $c) "
        f"{{ {ACCOUNT_FIELDS} }} }}",
        {"p": program["id"], "c": contact_id},
    )
    account_id = enrolled["data"]["enrolLoyaltyMember"]["id"]
    twice = await gql(
        client,
        headers,
        "mutation($p: UUID!, $c: UUID!) { enrolLoyaltyMember(programId: $p, contactId: $c) "
        "{ id } }",
        {"p": program["id"], "c": contact_id},
    )
    assert codes(twice) == ["duplicate"]
    earned = await gql(
        client,
        headers,
        "mutation($a: UUID!) { postLoyaltyEntry(accountId: $a, "
        'input: {kind: "earn", points: 80}) { entry { kind amount balanceAfter } '
        f"account {{ {ACCOUNT_FIELDS} }} }} }}",
        {"a": account_id},
    )
    result = earned["data"]["postLoyaltyEntry"]
    assert result["entry"] == {"kind": "earn", "amount": 80, "balanceAfter": 80}
    assert result["account"]["tier"] == {"name": "Silver"}
    adjusted = await gql(
        client,
        headers,
        "mutation($a: UUID!) { postLoyaltyEntry(accountId: $a, "
        'input: {kind: "adjust", points: -5, reason: "typo"}) { account { available } } }',
        {"a": account_id},
    )
    assert adjusted["data"]["postLoyaltyEntry"]["account"]["available"] == 75
    too_much = await gql(
        client,
        headers,
        "mutation($a: UUID!) { redeemLoyaltyPoints(accountId: $a, input: {points: 76}) "
        "{ redemption { id } } }",
        {"a": account_id},
    )
    assert codes(too_much) == ["insufficient_points"]
    redeemed = await gql(
        client,
        headers,
        "mutation($a: UUID!) { redeemLoyaltyPoints(accountId: $a, input: {points: 75}) "
        "{ redemption { id status points } account { available redeemed } } }",
        {"a": account_id},
    )
    redemption = redeemed["data"]["redeemLoyaltyPoints"]
    assert redemption["account"] == {"available": 0, "redeemed": 75}
    reversed_ = await gql(
        client,
        headers,
        "mutation($a: UUID!, $r: UUID!) { reverseLoyaltyRedemption(accountId: $a, "
        "redemptionId: $r) { redemption { status } account { available } } }",
        {"a": account_id, "r": redemption["redemption"]["id"]},
    )
    assert reversed_["data"]["reverseLoyaltyRedemption"] == {
        "redemption": {"status": "reversed"},
        "account": {"available": 75},
    }
    reward = await gql(
        client,
        headers,
        "mutation($input: JSON!) { createLoyaltyReward(input: $input) { id stock costPoints } }",
        {"input": {"program_id": program["id"], "name": "Tote bag", "cost_points": 70,
                   "stock": 1}},
    )  # fmt: skip
    reward_id = reward["data"]["createLoyaltyReward"]["id"]
    bought = await gql(
        client,
        headers,
        "mutation($a: UUID!, $r: UUID!) { redeemLoyaltyPoints(accountId: $a, "
        "input: {rewardId: $r}) { redemption { rewardId points } account { available } } }",
        {"a": account_id, "r": reward_id},
    )
    assert bought["data"]["redeemLoyaltyPoints"]["account"] == {"available": 5}
    listed = await gql(
        client, headers, "{ loyaltyRewards(first: 5) { edges { node { id stock } } } }"
    )
    assert listed["data"]["loyaltyRewards"]["edges"] == [{"node": {"id": reward_id, "stock": 0}}]
    ledger = await gql(
        client,
        headers,
        "query($a: UUID!) { loyaltyAccount(id: $a) { balance entries(first: 2) "
        "{ edges { node { kind amount } cursor } pageInfo { hasNextPage endCursor } } } }",
        {"a": account_id},
    )
    page = ledger["data"]["loyaltyAccount"]["entries"]
    assert [edge["node"]["kind"] for edge in page["edges"]] == ["redeem", "reverse"]
    assert page["pageInfo"]["hasNextPage"] is True
    rest = await gql(
        client,
        headers,
        "query($a: UUID!, $after: String) { loyaltyAccount(id: $a) { entries(first: 10, "
        "after: $after) { edges { node { kind } } pageInfo { hasNextPage } } } }",
        {"a": account_id, "after": page["pageInfo"]["endCursor"]},
    )
    kinds = [e["node"]["kind"] for e in rest["data"]["loyaltyAccount"]["entries"]["edges"]]
    assert kinds == ["redeem", "adjust", "earn"]
    await check_invariants(owner_engine, workspace)


async def test_scopes_apply_as_in_rest(
    client: httpx.AsyncClient, workspace: WorkspaceHandle
) -> None:
    program = await new_program(client, workspace)
    contact_id = await new_contact(client, workspace)
    account = await enrol(client, workspace, program["id"], contact_id)
    reader = await workspace.key(Scope.loyalty_read, Scope.contacts_read)
    refused = await gql(
        client,
        reader,
        "mutation($a: UUID!) { postLoyaltyEntry(accountId: $a, "
        'input: {kind: "earn", points: 1}) { entry { id } } }',
        {"a": account["id"]},
    )
    assert codes(refused) == ["forbidden"]
    contacts_only = await workspace.key(Scope.contacts_read)
    hidden = await gql(
        client,
        contacts_only,
        "query($c: UUID!) { contact(id: $c) { id loyaltyAccounts { balance } } }",
        {"c": contact_id},
    )
    assert codes(hidden) == ["forbidden"]
    assert hidden["data"]["contact"]["loyaltyAccounts"] is None


CONTACTS = f"""{{ contacts(first: 50) {{ edges {{ node {{
  displayName loyaltyAccounts {{ {ACCOUNT_FIELDS}
    entries(first: 3) {{ edges {{ node {{ kind amount }} }} }} }}
}} }} }} }}"""


async def _members(client: httpx.AsyncClient, ws: WorkspaceHandle, program_id: str, n: int) -> None:
    for _ in range(n):
        contact_id = await new_contact(client, ws)
        account = await enrol(client, ws, program_id, contact_id)
        await earn(client, ws, account["id"], 10)
        await purchase_now(client, ws, contact_id, thb("100.00"))


async def test_contact_loyalty_accounts_are_batched(
    client: httpx.AsyncClient, workspace: WorkspaceHandle, database: Database
) -> None:
    program = await new_program(client, workspace, expiry_months=1)
    await _members(client, workspace, program["id"], 2)
    with count_statements(database) as small:
        result = await gql(client, workspace.headers, CONTACTS)
    assert len(result["data"]["contacts"]["edges"]) == 2
    await _members(client, workspace, program["id"], 8)
    with count_statements(database) as large:
        result = await gql(client, workspace.headers, CONTACTS)
    edges = result["data"]["contacts"]["edges"]
    assert len(edges) == 10
    for edge in edges:
        (membership,) = edge["node"]["loyaltyAccounts"]
        assert membership["balance"] == 14
        assert membership["expiring"]["days90"] == 14
        assert [e["node"]["amount"] for e in membership["entries"]["edges"]] == [4, 10]
    assert len(large) == len(small), (small, large)
