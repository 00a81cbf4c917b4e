"""Loyalty in the contact's single view and on the timeline; contact merges keep points."""

from __future__ import annotations

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import WorkspaceHandle
from tests.loyalty.helpers import (
    account,
    check_invariants,
    earn,
    enrol,
    member,
    purchase_now,
    redeem,
)
from tests.purchase.helpers import new_contact, thb


async def test_the_360_view_has_a_loyalty_section_for_loyalty_readers(
    client: httpx.AsyncClient, workspace: WorkspaceHandle
) -> None:
    _, member_account, contact_id = await member(
        client, workspace, expiry_months=2, tiers=[{"name": "Silver", "threshold": 30}]
    )
    await earn(client, workspace, member_account["id"], 40)
    view = await client.get(f"/v1/contacts/{contact_id}/360", headers=workspace.headers)
    assert view.status_code == 200, view.text
    (section,) = view.json()["loyalty"]["accounts"]
    assert section["id"] == member_account["id"]
    assert (section["balance"], section["tier"]["name"]) == (40, "Silver")
    assert section["expiring"]["days_90"] == 40
    assert section["progress"]["next_tier"] is None
    narrow = await client.get(
        f"/v1/contacts/{contact_id}/360", headers=await workspace.key("contacts:read")
    )
    assert narrow.json()["loyalty"] is None


async def test_ledger_entries_are_on_the_timeline(
    client: httpx.AsyncClient, workspace: WorkspaceHandle
) -> None:
    _, member_account, contact_id = await member(client, workspace)
    await purchase_now(client, workspace, contact_id, thb("250.00"))
    await redeem(client, workspace, member_account["id"], points=4, reason="coffee")
    page = await client.get(f"/v1/contacts/{contact_id}/timeline", headers=workspace.headers)
    assert page.status_code == 200, page.text
    loyalty = [entry for entry in page.json()["data"] if entry["kind"] == "loyalty"]
    assert [entry["summary"] for entry in loyalty] == [
        "Redeemed 4 points: coffee",
        "Earned 10 points",
    ]
    assert loyalty[0]["data"]["account_id"] == member_account["id"]
    hidden = await client.get(
        f"/v1/contacts/{contact_id}/timeline",
        headers=await workspace.key("contacts:read", "purchases:read"),
    )
    assert [entry["kind"] for entry in hidden.json()["data"]] == ["purchase"]


async def test_a_merge_moves_memberships_to_the_survivor_without_losing_points(
    client: httpx.AsyncClient, workspace: WorkspaceHandle, owner_engine: AsyncEngine
) -> None:
    program, kept, survivor = await member(client, workspace)
    absorbed = await new_contact(client, workspace, "Somchai")
    same_program = await enrol(client, workspace, program["id"], absorbed)
    await earn(client, workspace, kept["id"], 5)
    await earn(client, workspace, same_program["id"], 7)
    other = await client.post(
        "/v1/loyalty/programs",
        headers=workspace.headers,
        json={"name": "Partner miles", "earn_rates": []},
    )
    moved = await enrol(client, workspace, other.json()["id"], absorbed)
    await earn(client, workspace, moved["id"], 9)
    merged = await client.post(
        f"/v1/contacts/{survivor}/merge", headers=workspace.headers, json={"absorb": [absorbed]}
    )
    assert merged.status_code == 200, merged.text
    mine = await client.get(
        "/v1/loyalty/accounts", headers=workspace.headers, params={"contact_id": survivor}
    )
    assert sorted(a["balance"] for a in mine.json()["data"]) == [5, 9]
    # The survivor was already a member of the first programme: that membership stays with
    # the absorbed contact, its points intact.
    assert (await account(client, workspace, same_program["id"]))["balance"] == 7
    await check_invariants(owner_engine, workspace)
