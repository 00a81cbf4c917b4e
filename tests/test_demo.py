"""The demo workspace: generated data that the API accepts, loaded through the services, and
usable over HTTP the way the README's examples use it."""

from __future__ import annotations

import re
import unicodedata
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import phonenumbers
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.account.schemas import AccountCreate
from app.contact.relationship_schemas import RelationshipCreate
from app.contact.schemas import ContactCreate
from app.db.session import Database
from app.demo import DemoCounts, create_demo_workspace, generate
from app.kit.errors import ValidationFailed
from app.models.contact_relationship import RELATIONSHIP_INVERSES
from tests.conftest import WorkspaceHandle

CONTACTS = 60
THAI = re.compile(r"[\u0e00-\u0e7f]")


def folded(value: str) -> str:
    value = value.replace("đ", "d").replace("Đ", "D")
    return "".join(
        c for c in unicodedata.normalize("NFD", value) if not unicodedata.combining(c)
    ).lower()


@dataclass
class Demo(WorkspaceHandle):
    counts: DemoCounts = field(default_factory=lambda: DemoCounts(0, 0, 0))


@pytest.fixture(scope="module")
async def demo(database: Database, owner_engine: AsyncEngine) -> AsyncIterator[Demo]:
    async with database.sessionmaker() as session, session.begin():
        loaded = await create_demo_workspace(session, contacts=CONTACTS, seed=42)
    handle = Demo(
        id=loaded.created.workspace.id,
        admin_key=loaded.created.admin_key.token,
        admin_key_id=loaded.created.admin_key.record.id,
        database=database,
        counts=loaded.counts,
    )
    try:
        yield handle
    finally:
        async with owner_engine.begin() as connection:
            await connection.execute(
                text("DELETE FROM workspaces WHERE id = :id"), {"id": handle.id}
            )


async def get(client: httpx.AsyncClient, demo: Demo, path: str, **params: Any) -> Any:
    response = await client.get(path, headers=demo.headers, params=params)
    assert response.status_code == 200, response.text
    return response.json()


async def all_contacts(client: httpx.AsyncClient, demo: Demo) -> list[dict[str, Any]]:
    page = await get(client, demo, "/v1/contacts", limit=200)
    assert page["next_cursor"] is None
    contacts: list[dict[str, Any]] = page["data"]
    return contacts


async def search(client: httpx.AsyncClient, demo: Demo, q: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = (await get(client, demo, "/v1/contacts", q=q, limit=200))["data"]
    return found


# -- generating ------------------------------------------------------------------------------
def test_the_data_is_what_the_api_accepts_and_the_same_for_a_seed() -> None:
    data = generate(300, seed=42)

    assert data == generate(300, seed=42)
    assert data != generate(300, seed=43)
    assert len(data.contacts) == 300
    assert Counter(item.country for item in data.contacts) == {"TH": 150, "VN": 150}
    assert 25 <= len(data.accounts) <= 40
    assert len(data.relationships) >= 100
    for account in data.accounts:
        AccountCreate.model_validate(account.body)
    emails: list[str] = []
    for item in data.contacts:
        contact = ContactCreate.model_validate(item.body)
        emails += [entry.email for entry in contact.emails]
        region = "TH" if item.country == "TH" else None  # Vietnamese numbers carry +84
        for phone in contact.phones:
            parsed = phonenumbers.parse(phone.number, region)
            assert phonenumbers.is_valid_number(parsed), phone.number
            assert phonenumbers.region_code_for_number(parsed) == item.country
    assert len(emails) == len(set(emails))
    assert all(re.fullmatch(r"[a-z0-9._]+@[a-z.]+", email) for email in emails), emails
    for link in data.relationships:
        RelationshipCreate.model_validate(
            {"related_contact_id": str(uuid.uuid4()), "type": link.type, "note": link.note}
        )
        assert link.contact != link.related
    stages = Counter(item.body["lifecycle_stage"] for item in data.contacts)
    assert stages.most_common(1)[0][0] == "customer"
    assert {"lead", "prospect", "advocate", "ambassador", "churned"} <= stages.keys()


async def test_a_record_the_api_would_refuse_is_refused(database: Database) -> None:
    from app.auth.dependencies import AuthContext
    from app.demo import load
    from app.workspace.service import workspace as workspace_service

    data = generate(10, seed=1)
    data.contacts[0].body["phones"] = [{"number": "12345"}]
    # Never committed: closing the session rolls the workspace back with the rest.
    async with database.sessionmaker() as session:
        created = await workspace_service.create(session, name="Refused demo")
        auth = AuthContext(created.workspace.id, created.admin_key.record.id, frozenset({"admin"}))
        with pytest.raises(ValidationFailed) as raised:
            await load(session, auth, data)
    assert raised.value.errors[0].field == "phones.0.number"


# -- over HTTP -------------------------------------------------------------------------------
async def test_contacts_are_thai_and_vietnamese(client: httpx.AsyncClient, demo: Demo) -> None:
    contacts = await all_contacts(client, demo)

    assert len(contacts) == demo.counts.contacts == CONTACTS
    thai = [c for c in contacts if c["locale"] == "th-TH"]
    vietnamese = [c for c in contacts if c["locale"] == "vi-VN"]
    assert len(thai) == len(vietnamese) == CONTACTS // 2
    for contact in thai:
        assert THAI.search(contact["display_name"]), contact["display_name"]
        assert contact["time_zone"] == "Asia/Bangkok"
        assert contact["phones"][0]["number"].startswith("+66")
        assert contact["display_name"] == f"{contact['given_name']} {contact['family_name']}"
    for contact in vietnamese:
        # Family name first, with its diacritics.
        assert contact["display_name"] == f"{contact['family_name']} {contact['given_name']}"
        assert folded(contact["display_name"]) != contact["display_name"].lower()
        assert contact["time_zone"] == "Asia/Ho_Chi_Minh"
        assert contact["phones"][0]["number"].startswith("+84")
    addresses = [a for c in contacts for a in c["addresses"]]
    assert {a["country"] for a in addresses} == {"TH", "VN"}
    assert all(a["subdistrict"] and a["district"] and a["province"] for a in addresses)
    assert any(c["external_ids"] for c in contacts)
    assert any("line_id" in c["attributes"] for c in thai)
    assert any("zalo_id" in c["attributes"] for c in vietnamese)


async def test_search_finds_vietnamese_without_accents(
    client: httpx.AsyncClient, demo: Demo
) -> None:
    contacts = await all_contacts(client, demo)
    nguyens = {c["id"] for c in contacts if c["family_name"] == "Nguyễn"}
    assert nguyens

    found = await search(client, demo, "nguyen")

    assert nguyens <= {c["id"] for c in found}
    assert {c["locale"] for c in found} == {"vi-VN"}


async def test_search_finds_thai_by_a_substring(client: httpx.AsyncClient, demo: Demo) -> None:
    contacts = await all_contacts(client, demo)
    somebody = next(c for c in contacts if c["locale"] == "th-TH")
    fragment = somebody["family_name"][1:4]  # inside the word, not at its start

    found = await search(client, demo, fragment)

    assert somebody["id"] in {c["id"] for c in found}
    assert {c["locale"] for c in found} == {"th-TH"}


async def test_phone_search_in_local_formats(client: httpx.AsyncClient, demo: Demo) -> None:
    contacts = await all_contacts(client, demo)
    for locale in ("th-TH", "vi-VN"):
        somebody = next(c for c in contacts if c["locale"] == locale)
        number = somebody["phones"][0]["number"]
        national = phonenumbers.format_number(
            phonenumbers.parse(number), phonenumbers.PhoneNumberFormat.NATIONAL
        )

        found = await search(client, demo, national)
        assert found[0]["id"] == somebody["id"], national
        filtered = await get(client, demo, "/v1/contacts", phone=number)
        assert [c["id"] for c in filtered["data"]] == [somebody["id"]]


async def test_every_relationship_has_its_inverse(client: httpx.AsyncClient, demo: Demo) -> None:
    contacts = await all_contacts(client, demo)
    links: dict[tuple[str, str], set[str]] = {}
    for contact in contacts:
        for row in await get(client, demo, f"/v1/contacts/{contact['id']}/relationships"):
            links.setdefault((row["contact_id"], row["related_contact_id"]), set()).add(row["type"])

    assert sum(len(types) for types in links.values()) == 2 * demo.counts.relationships
    for (one, other), types in links.items():
        for kind in types:
            assert RELATIONSHIP_INVERSES[kind] in links.get((other, one), set()), (one, other, kind)
    kinds = {kind for types in links.values() for kind in types}
    assert {"colleague", "advocate_of", "advocated_by"} <= kinds
    assert kinds & {"spouse", "household", "child"}


async def test_accounts_have_a_hierarchy_and_contacts(
    client: httpx.AsyncClient, demo: Demo
) -> None:
    accounts = (await get(client, demo, "/v1/accounts", limit=200))["data"]
    assert len(accounts) == demo.counts.accounts
    by_id = {a["id"]: a for a in accounts}
    assert {a["type"] for a in accounts} >= {
        "customer", "distributor", "retailer", "partner", "supplier",
    }  # fmt: skip

    # A distributor with a regional distributor of its own, which has retail branches.
    store = next(a for a in accounts if a["name"] == "Siam Fresh Mart Nimman")
    region = by_id[store["parent_account_id"]]
    head_office = by_id[region["parent_account_id"]]
    assert (region["type"], head_office["type"]) == ("distributor", "distributor")
    assert head_office["parent_account_id"] is None
    children = await get(client, demo, "/v1/accounts", parent_account_id=head_office["id"])
    assert region["id"] in {a["id"] for a in children["data"]}
    assert all(a["parent_account_id"] == head_office["id"] for a in children["data"])

    contacts = await all_contacts(client, demo)
    linked = [c for c in contacts if c["account_id"] is not None]
    assert linked
    assert {c["account_id"] for c in linked} <= by_id.keys()
    account_id = linked[0]["account_id"]
    members = await get(client, demo, f"/v1/accounts/{account_id}/contacts")
    assert {c["id"] for c in members["data"]} == {
        c["id"] for c in linked if c["account_id"] == account_id
    }
    assert all("b2b" in c["tags"] and c["attributes"].get("job_title") for c in linked)


async def test_the_demo_has_a_history_on_every_channel(
    client: httpx.AsyncClient, demo: Demo
) -> None:
    assert demo.counts.interactions > CONTACTS
    assert demo.counts.purchases > CONTACTS / 2
    assert demo.counts.refunds > 0
    chats = await get(client, demo, "/v1/interactions", channel="chat", limit=200)
    apps = {item["attributes"].get("app") for item in chats["data"]}
    assert {"LINE", "Zalo"} <= apps
    visits = await get(client, demo, "/v1/interactions", type="visit", limit=5)
    assert visits["data"]
    assert all(item["channel"] == "store" for item in visits["data"])
    currencies = {
        item["total"]["currency"]
        for item in (await get(client, demo, "/v1/purchases", limit=200))["data"]
    }
    assert currencies == {"THB", "VND"}


async def test_a_demo_customer_has_a_full_single_view(
    client: httpx.AsyncClient, demo: Demo
) -> None:
    purchases = (await get(client, demo, "/v1/purchases", limit=1))["data"]
    contact_id = purchases[0]["contact_id"]
    view = await get(client, demo, f"/v1/contacts/{contact_id}/360")
    assert view["purchases"]["summary"]["lifetime_count"] >= 1
    assert view["purchases"]["summary"]["last_purchase_at"] is not None
    assert view["interactions"]["total"] >= 1
    timeline = await get(client, demo, f"/v1/contacts/{contact_id}/timeline")
    assert {"interaction", "purchase"} <= {entry["kind"] for entry in timeline["data"]}


async def test_loyalty_members_have_histories_tiers_and_rewards(
    client: httpx.AsyncClient, demo: Demo, owner_engine: AsyncEngine
) -> None:
    from tests.loyalty.helpers import check_invariants

    programs = (await get(client, demo, "/v1/loyalty/programs"))["data"]
    (program,) = programs
    assert [tier["name"] for tier in program["tiers"]] == ["Silver", "Gold", "Platinum"]
    assert {rate["spend"]["currency"] for rate in program["earn_rates"]} == {"THB", "VND"}
    assert (program["pending_days"], program["expiry_months"]) == (14, 12)
    rewards = (await get(client, demo, "/v1/loyalty/rewards"))["data"]
    assert len(rewards) >= 3
    assert demo.counts.loyalty_members > CONTACTS / 2
    assert demo.counts.redemptions > 0
    accounts = (await get(client, demo, "/v1/loyalty/accounts", limit=200))["data"]
    assert len(accounts) == demo.counts.loyalty_members
    assert sum(a["lifetime_earned"] for a in accounts) > 0
    assert any(a["tier"] is not None for a in accounts)
    assert any(a["expired"] > 0 for a in accounts)
    assert any(a["pending"] > 0 for a in accounts)
    await check_invariants(owner_engine, demo)


async def test_the_demo_has_a_sales_pipeline_with_history(
    client: httpx.AsyncClient, demo: Demo
) -> None:
    pipelines = (await get(client, demo, "/v1/pipelines"))["data"]
    assert [p["name"] for p in pipelines] == ["Sales", "Wholesale"]
    deals = (await get(client, demo, "/v1/opportunities", limit=200))["data"]
    assert len(deals) >= 30
    assert {d["status"] for d in deals} == {"open", "won", "lost"}
    assert {d["amount"]["currency"] for d in deals} == {"THB", "VND"}
    assert all(d["loss_reason"] for d in deals if d["status"] == "lost")
    moved = next(d for d in deals if d["status"] == "won")
    history = (await get(client, demo, f"/v1/opportunities/{moved['id']}/history"))["data"]
    assert len(history) >= 2
    assert all(h["seconds_in_previous_stage"] >= 2 * 86400 for h in history[1:])
    analytics = await get(client, demo, f"/v1/pipelines/{pipelines[1]['id']}/analytics")
    assert analytics["opportunities"] >= 10
    assert analytics["win_rate"] is not None
    leads = (await get(client, demo, "/v1/leads"))["data"]
    assert "converted" in {lead["status"] for lead in leads}
    targets = (await get(client, demo, "/v1/sales-targets"))["data"]
    assert {t["owner"] for t in targets} == {"sales.ploy", "sales.krit", "sales.hoa", "sales.tuan"}
    rules = (await get(client, demo, "/v1/commission-rules"))["data"]
    assert [r["rate_bp"] for r in rules] == [500]


async def test_the_demo_has_a_service_desk(client: httpx.AsyncClient, demo: Demo) -> None:
    assert demo.counts.cases == CONTACTS * 2 // 3
    calendars = (await get(client, demo, "/v1/business-calendars"))["data"]
    bangkok = next(c for c in calendars if c["time_zone"] == "Asia/Bangkok")
    assert bangkok["hours"]["mon"] == [["08:30", "12:00"], ["13:00", "17:30"]]
    assert "sat" not in bangkok["hours"]
    assert {"2026-04-13", "2026-12-07", "2027-04-13"} <= set(bangkok["holidays"])
    policies = (await get(client, demo, "/v1/sla-policies"))["data"]
    assert {p["priority"] for p in policies} == {"low", "normal", "high", "urgent"}
    queues = (await get(client, demo, "/v1/case-queues"))["data"]
    assert len(queues) == 4
    cases = []
    cursor = None
    while True:
        page = await get(
            client, demo, "/v1/cases", limit=200, **({"cursor": cursor} if cursor else {})
        )
        cases += page["data"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(cases) == demo.counts.cases
    assert {c["status"] for c in cases} == {"new", "open", "pending", "resolved", "closed"}
    assert all(c["queue_id"] is not None and c["sla"]["policy_id"] is not None for c in cases)
    assert any(c["source_interaction_id"] is not None for c in cases)
    assert any(c["reopen_count"] > 0 for c in cases)
    report = await get(
        client,
        demo,
        "/v1/cases/report",
        **{"from": "2020-01-01T00:00:00Z", "to": "2100-01-01T00:00:00Z", "group_by": "queue"},
    )
    assert report["total"]["created"] == demo.counts.cases


TIMELINE_SUMMARIES = """
query Timeline($id: UUID!) {
  contact(id: $id) { timeline(first: 100) { edges { node { kind id channel summary } } } }
}
"""
# The record asked for through a fragment: the service must see it behind the spread.
TIMELINE_RECORDS = """
query Timeline($id: UUID!) {
  contact(id: $id) { timeline(first: 100) { edges { node { kind id ...Record } } } }
}
fragment Record on TimelineEntry { summary data }
"""


def steady(record: dict[str, Any]) -> dict[str, Any]:
    """A record without what moves with the clock between two reads (a case's SLA minutes)."""
    sla = record.get("sla")
    return {**record, "sla": sla["policy_id"]} if isinstance(sla, dict) else record


async def test_a_graphql_timeline_without_records_shows_the_same_entries_with_fewer_reads(
    client: httpx.AsyncClient, demo: Demo
) -> None:
    from tests.test_graphql import count_statements, gql

    kinds: set[str] = set()
    skipped: set[str] = set()
    for contact in await all_contacts(client, demo):
        variables = {"id": contact["id"]}
        rest = (await get(client, demo, f"/v1/contacts/{contact['id']}/timeline", limit=100))[
            "data"
        ]
        with count_statements(demo.database) as light_reads:
            light = await gql(client, demo.headers, TIMELINE_SUMMARIES, variables)
        with count_statements(demo.database) as full_reads:
            full = await gql(client, demo.headers, TIMELINE_RECORDS, variables)
        assert "errors" not in light, light
        assert "errors" not in full, full
        light_nodes = [e["node"] for e in light["data"]["contact"]["timeline"]["edges"]]
        full_nodes = [e["node"] for e in full["data"]["contact"]["timeline"]["edges"]]
        assert light_nodes == [
            {key: entry[key] for key in ("kind", "id", "channel", "summary")} for entry in rest
        ]
        assert [{**node, "data": steady(node["data"])} for node in full_nodes] == [
            {"kind": e["kind"], "id": e["id"], "summary": e["summary"], "data": steady(e["data"])}
            for e in rest
        ]
        assert len(light_reads) <= len(full_reads)
        kinds |= {entry["kind"] for entry in rest}
        # A case's SLA policy and an opportunity's competitors are read for the record only.
        skipped |= {
            table
            for table in ("sla_policies", "opportunity_competitors")
            if any(table in s for s in full_reads) and not any(table in s for s in light_reads)
        }
    assert {"interaction", "purchase", "loyalty", "case", "opportunity"} <= kinds
    assert skipped == {"sla_policies", "opportunity_competitors"}
