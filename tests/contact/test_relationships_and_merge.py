from __future__ import annotations

import asyncio
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.contact.references import registered
from app.db.session import Database
from tests.conftest import WorkspaceHandle
from tests.test_conventions import assert_problem
from tests.test_graphql import count_statements


async def new_contact(client: httpx.AsyncClient, ws: WorkspaceHandle, **body: Any) -> str:
    response = await client.post("/v1/contacts", headers=ws.headers, json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def links(client: httpx.AsyncClient, ws: WorkspaceHandle, contact_id: str) -> list[Any]:
    response = await client.get(f"/v1/contacts/{contact_id}/relationships", headers=ws.headers)
    assert response.status_code == 200, response.text
    return sorted((item["related_contact_id"], item["type"]) for item in response.json())


class TestRelationships:
    async def test_inverse_appears_on_the_other_contact(
        self, client: httpx.AsyncClient, workspace: WorkspaceHandle
    ) -> None:
        mother = await new_contact(client, workspace, given_name="Malee")
        son = await new_contact(client, workspace, given_name="Krit")
        response = await client.post(
            f"/v1/contacts/{son}/relationships",
            headers=workspace.headers,
            json={"related_contact_id": mother, "type": "child", "note": "family account"},
        )
        assert response.status_code == 201, response.text
        assert await links(client, workspace, son) == [(mother, "child")]
        assert await links(client, workspace, mother) == [(son, "parent")]
        referral = await client.post(
            f"/v1/contacts/{son}/relationships",
            headers=workspace.headers,
            json={"related_contact_id": mother, "type": "referred_by"},
        )
        assert referral.status_code == 201
        assert (mother, "referred_by") in await links(client, workspace, son)
        assert (son, "referred") in await links(client, workspace, mother)

    async def test_no_self_links_no_duplicates_no_strangers(
        self, client: httpx.AsyncClient, workspace: WorkspaceHandle, make_workspace: Any
    ) -> None:
        one = await new_contact(client, workspace, given_name="One")
        two = await new_contact(client, workspace, given_name="Two")
        url = f"/v1/contacts/{one}/relationships"
        self_link = await client.post(
            url, headers=workspace.headers, json={"related_contact_id": one, "type": "household"}
        )
        assert_problem(self_link, 422, "validation_error")
        body = {"related_contact_id": two, "type": "household"}
        assert (await client.post(url, headers=workspace.headers, json=body)).status_code == 201
        assert_problem(
            await client.post(url, headers=workspace.headers, json=body), 409, "conflict"
        )
        other = await make_workspace()
        stranger = await new_contact(client, other, given_name="Stranger")
        response = await client.post(
            url, headers=workspace.headers, json={"related_contact_id": stranger, "type": "spouse"}
        )
        assert_problem(response, 422, "validation_error")
        bad_type = await client.post(
            url, headers=workspace.headers, json={"related_contact_id": two, "type": "enemy"}
        )
        assert_problem(bad_type, 422, "validation_error")

    async def test_deleting_a_link_or_a_contact_removes_both_sides(
        self, client: httpx.AsyncClient, workspace: WorkspaceHandle
    ) -> None:
        a = await new_contact(client, workspace, given_name="A")
        b = await new_contact(client, workspace, given_name="B")
        c = await new_contact(client, workspace, given_name="C")
        made = (
            await client.post(
                f"/v1/contacts/{a}/relationships",
                headers=workspace.headers,
                json={"related_contact_id": b, "type": "colleague"},
            )
        ).json()
        await client.post(
            f"/v1/contacts/{a}/relationships",
            headers=workspace.headers,
            json={"related_contact_id": c, "type": "spouse"},
        )
        deleted = await client.delete(
            f"/v1/contacts/{a}/relationships/{made['id']}", headers=workspace.headers
        )
        assert deleted.status_code == 204
        assert await links(client, workspace, b) == []
        await client.delete(f"/v1/contacts/{c}", headers=workspace.headers)
        assert await links(client, workspace, a) == []


class TestDuplicates:
    async def test_same_phone_and_similar_names_are_found(
        self, client: httpx.AsyncClient, workspace: WorkspaceHandle
    ) -> None:
        original = await new_contact(
            client,
            workspace,
            given_name="Somchai",
            family_name="Jaidee",
            phones=[{"number": "0812345678"}],
        )
        same_phone = await new_contact(
            client, workspace, given_name="S.", phones=[{"number": "+66 81 234 5678"}]
        )
        similar = await new_contact(client, workspace, given_name="Somchai", family_name="Jaideee")
        await new_contact(client, workspace, given_name="Nattaya", family_name="Srisuk")
        response = await client.get(
            f"/v1/contacts/{original}/duplicates", headers=workspace.headers
        )
        assert response.status_code == 200
        found = {item["contact"]["id"]: item for item in response.json()}
        assert set(found) == {same_phone, similar}
        assert found[same_phone]["reasons"] == ["same_phone"]
        assert found[similar]["reasons"] == ["similar_name"]
        assert all(0 < item["score"] <= 1 for item in found.values())


class TestMerge:
    async def test_merge_combines_repoints_and_leaves_a_pointer(
        self, client: httpx.AsyncClient, workspace: WorkspaceHandle, owner_engine: AsyncEngine
    ) -> None:
        survivor = await new_contact(
            client,
            workspace,
            given_name="Somchai",
            emails=[{"email": "s@example.com"}],
            tags=["vip"],
            external_ids={"shopify": "1"},
            attributes={"tier": "gold"},
        )
        absorbed = await new_contact(
            client,
            workspace,
            given_name="Somchai J.",
            family_name="Jaidee",
            emails=[{"email": "somchai.j@work.example"}],
            phones=[{"number": "0812345678"}],
            tags=["bangkok", "VIP"],
            external_ids={"shopify": "2", "pos": "C-9"},
            attributes={"tier": "silver", "line_id": "somchai99"},
            birthday="1985-02-14",
        )
        friend = await new_contact(client, workspace, given_name="Friend")
        await client.post(
            f"/v1/contacts/{absorbed}/relationships",
            headers=workspace.headers,
            json={"related_contact_id": friend, "type": "referred_by"},
        )

        preview = await client.post(
            f"/v1/contacts/{survivor}/merge",
            headers=workspace.headers,
            json={"absorb": [absorbed], "fields": {"family_name": absorbed}, "dry_run": True},
        )
        assert preview.status_code == 200, preview.text
        assert preview.json()["dry_run"] is True
        assert preview.json()["contact"]["family_name"] == "Jaidee"
        untouched = await client.get(f"/v1/contacts/{absorbed}", headers=workspace.headers)
        assert untouched.status_code == 200

        response = await client.post(
            f"/v1/contacts/{survivor}/merge",
            headers=workspace.headers,
            json={"absorb": [absorbed], "fields": {"family_name": absorbed}},
        )
        assert response.status_code == 200, response.text
        merged = response.json()["contact"]
        assert merged["given_name"] == "Somchai"
        assert merged["family_name"] == "Jaidee"
        assert merged["birthday"] == "1985-02-14"  # blank on the survivor: filled
        assert [e["email"] for e in merged["emails"]] == ["s@example.com", "somchai.j@work.example"]
        assert merged["emails"][0]["primary"] is True
        assert merged["phones"][0]["number"] == "+66812345678"
        assert merged["tags"] == ["vip", "bangkok"]
        assert merged["external_ids"] == {"pos": "C-9", "shopify": "1"}
        assert merged["attributes"] == {"tier": "gold", "line_id": "somchai99"}

        gone = await client.get(f"/v1/contacts/{absorbed}", headers=workspace.headers)
        assert assert_problem(gone, 404, "not_found")["merged_into"] == survivor
        by_old_key = await client.get(
            "/v1/contacts/by-external-id/shopify/2", headers=workspace.headers
        )
        assert assert_problem(by_old_key, 404, "not_found")["merged_into"] == survivor
        by_moved_key = await client.get(
            "/v1/contacts/by-external-id/pos/C-9", headers=workspace.headers
        )
        assert by_moved_key.json()["id"] == survivor
        assert await links(client, workspace, survivor) == [(friend, "referred_by")]
        assert await links(client, workspace, friend) == [(survivor, "referred")]
        listing = (await client.get("/v1/contacts", headers=workspace.headers)).json()["data"]
        assert absorbed not in [item["id"] for item in listing]
        # The absorbed e-mail now finds the survivor; it is free for nobody else.
        taken = await client.post(
            "/v1/contacts",
            headers=workspace.headers,
            json={"emails": [{"email": "somchai.j@work.example"}]},
        )
        assert assert_problem(taken, 409, "duplicate")["existing_id"] == survivor
        async with owner_engine.connect() as connection:
            merges = (
                await connection.execute(
                    text(
                        "SELECT survivor_id, absorbed_ids FROM contact_merges "
                        "WHERE workspace_id = :w"
                    ),
                    {"w": workspace.id},
                )
            ).all()
            event = (
                await connection.execute(
                    text(
                        "SELECT data FROM outbox_events WHERE workspace_id = :w "
                        "AND type = 'contact.merged'"
                    ),
                    {"w": workspace.id},
                )
            ).scalar_one()
        assert [(str(m.survivor_id), [str(a) for a in m.absorbed_ids]) for m in merges] == [
            (survivor, [absorbed])
        ]
        assert event["absorbed"] == [absorbed]

    async def test_chained_merges_point_at_the_final_survivor(
        self, client: httpx.AsyncClient, workspace: WorkspaceHandle
    ) -> None:
        a = await new_contact(client, workspace, given_name="A")
        b = await new_contact(client, workspace, given_name="B")
        c = await new_contact(client, workspace, given_name="C")
        await client.post(
            f"/v1/contacts/{b}/merge", headers=workspace.headers, json={"absorb": [a]}
        )
        await client.post(
            f"/v1/contacts/{c}/merge", headers=workspace.headers, json={"absorb": [b]}
        )
        gone = await client.get(f"/v1/contacts/{a}", headers=workspace.headers)
        assert gone.json()["merged_into"] == c

    async def test_refused_merges_change_nothing(
        self, client: httpx.AsyncClient, workspace: WorkspaceHandle, make_workspace: Any
    ) -> None:
        a = await new_contact(client, workspace, given_name="A")
        b = await new_contact(client, workspace, given_name="B")
        url = f"/v1/contacts/{a}/merge"
        assert_problem(
            await client.post(url, headers=workspace.headers, json={"absorb": [a]}),
            422,
            "validation_error",
        )
        assert_problem(
            await client.post(url, headers=workspace.headers, json={"absorb": [b, b]}),
            422,
            "validation_error",
        )
        assert_problem(
            await client.post(
                url, headers=workspace.headers, json={"absorb": [b], "fields": {"version": b}}
            ),
            422,
            "validation_error",
        )
        other = await make_workspace()
        stranger = await new_contact(client, other, given_name="Stranger")
        assert_problem(
            await client.post(url, headers=workspace.headers, json={"absorb": [stranger]}),
            404,
            "not_found",
        )
        assert (await client.get(f"/v1/contacts/{b}", headers=workspace.headers)).status_code == 200
        assert (
            await client.get(f"/v1/contacts/{stranger}", headers=other.headers)
        ).status_code == 200

    async def test_concurrent_crossing_merges_do_not_deadlock(
        self, app: FastAPI, workspace: WorkspaceHandle
    ) -> None:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            a = await new_contact(client, workspace, given_name="A")
            b = await new_contact(client, workspace, given_name="B")
            responses = await asyncio.gather(
                client.post(
                    f"/v1/contacts/{a}/merge", headers=workspace.headers, json={"absorb": [b]}
                ),
                client.post(
                    f"/v1/contacts/{b}/merge", headers=workspace.headers, json={"absorb": [a]}
                ),
            )
        statuses = sorted(response.status_code for response in responses)
        assert statuses == [200, 404], [r.text for r in responses]

    def test_relationships_register_for_merges(self) -> None:
        assert "contact_relationships" in registered()


class TestBatch:
    async def test_upsert_reports_each_item(
        self, client: httpx.AsyncClient, workspace: WorkspaceHandle
    ) -> None:
        existing = await new_contact(
            client,
            workspace,
            given_name="Lan",
            emails=[{"email": "lan@example.vn"}],
            tags=["a"],
            phones=[{"number": "+84912345678"}],
        )
        response = await client.post(
            "/v1/contacts/batch",
            headers=workspace.headers,
            json={
                "items": [
                    {"given_name": "New", "external_ids": {"crm2": "1"}},
                    {
                        "emails": [{"email": "LAN@example.vn"}],
                        "tags": ["b"],
                        "phones": [{"number": "0912 345 678", "type": "work"}],
                        "lifecycle_stage": "customer",
                    },
                    {"given_name": "Bad", "emails": [{"email": "not-an-email"}]},
                    {"given_name": "Bad phone", "phones": [{"number": "12"}]},
                ]
            },
        )
        assert response.status_code == 422  # item 2's e-mail fails the whole body's validation
        response = await client.post(
            "/v1/contacts/batch",
            headers=workspace.headers,
            json={
                "items": [
                    {"given_name": "New", "external_ids": {"crm2": "1"}},
                    {
                        "emails": [{"email": "LAN@example.vn"}],
                        "tags": ["b"],
                        "phones": [{"number": "+84 912 345 678", "type": "work"}],
                        "lifecycle_stage": "customer",
                    },
                    {"given_name": "Bad phone", "phones": [{"number": "12"}]},
                    {"given_name": "Again", "external_ids": {"crm2": "1"}},
                ]
            },
        )
        assert response.status_code == 200, response.text
        body = response.json()
        statuses = [r["status"] for r in body["results"]]
        assert statuses == ["created", "updated", "error", "updated"]
        assert (body["created"], body["updated"], body["errors"]) == (1, 2, 1)
        assert body["results"][1]["id"] == existing
        assert body["results"][2]["error"]["code"] == "validation_error"
        assert body["results"][3]["id"] == body["results"][0]["id"]
        lan = (await client.get(f"/v1/contacts/{existing}", headers=workspace.headers)).json()
        assert lan["tags"] == ["a", "b"]
        assert lan["lifecycle_stage"] == "customer"
        assert [p["number"] for p in lan["phones"]] == ["+84912345678"]
        renamed = (
            await client.get(f"/v1/contacts/{body['results'][0]['id']}", headers=workspace.headers)
        ).json()
        assert renamed["given_name"] == "Again"

    async def test_all_or_none_rolls_everything_back(
        self, client: httpx.AsyncClient, workspace: WorkspaceHandle
    ) -> None:
        response = await client.post(
            "/v1/contacts/batch",
            headers=workspace.headers,
            json={
                "all_or_none": True,
                "items": [
                    {"given_name": "Kept?"},
                    {"given_name": "Bad", "phones": [{"number": "1"}]},
                ],
            },
        )
        problem = assert_problem(response, 422, "validation_error")
        assert [r["status"] for r in problem["results"]] == ["created", "error"]
        listing = (await client.get("/v1/contacts", headers=workspace.headers)).json()["data"]
        assert listing == []

    async def test_batch_size_is_bounded(
        self, client: httpx.AsyncClient, workspace: WorkspaceHandle
    ) -> None:
        items = [{"given_name": f"P{i}"} for i in range(1001)]
        response = await client.post(
            "/v1/contacts/batch", headers=workspace.headers, json={"items": items}
        )
        assert_problem(response, 422, "validation_error")

    async def test_concurrent_batches_with_overlapping_contacts_in_any_order_all_land(
        self, client: httpx.AsyncClient, workspace: WorkspaceHandle
    ) -> None:
        """Partner syncs run side by side and send the same contacts in their own order."""
        numbers = list(range(40))
        orders = [numbers, numbers[::-1], numbers[20:] + numbers[:20], numbers[::2] + numbers[1::2]]

        async def sync(order: list[int]) -> httpx.Response:
            items = [
                {"given_name": f"Sync {n}", "external_ids": {"erp": f"E-{n}"},
                 "emails": [{"email": f"sync{n}@example.co.th"}]}
                for n in order
            ]  # fmt: skip
            return await client.post(
                "/v1/contacts/batch", headers=workspace.headers, json={"items": items}
            )

        responses = await asyncio.gather(*(sync(order) for order in orders))

        assert [r.status_code for r in responses] == [200] * 4, [r.text[:300] for r in responses]
        results = [r.json() for r in responses]
        assert all(result["errors"] == 0 for result in results)
        assert sum(result["created"] for result in results) == 40
        assert sum(result["updated"] for result in results) == 120
        listing = await client.get("/v1/contacts", headers=workspace.headers, params={"limit": 100})
        assert len(listing.json()["data"]) == 40

    async def test_a_batch_reads_its_owners_and_locks_its_keys_once(
        self, client: httpx.AsyncClient, workspace: WorkspaceHandle, database: Database
    ) -> None:
        """Per item only its own work: the owners of every item's keys are found, the keys
        locked and the workspace read once for the whole batch."""

        async def batch(name: str, count: int) -> list[str]:
            items = [
                {"given_name": f"Sync {n}", "external_ids": {"erp": f"{name}-{n}"}}
                for n in range(count)
            ]
            with count_statements(database) as statements:
                response = await client.post(
                    "/v1/contacts/batch", headers=workspace.headers, json={"items": items}
                )
            assert response.status_code == 200, response.text
            assert response.json()["created"] == count
            return statements

        small, large = await batch("small", 5), await batch("large", 25)

        for statements in (small, large):
            locks = [s for s in statements if "pg_advisory_xact_lock" in s]
            workspaces = [s for s in statements if "FROM workspaces" in s]
            assert (len(locks), len(workspaces)) == (1, 1), statements
        # Each new contact: a savepoint and its release, the contact, its external id and its
        # event; the owners were looked up with the batch's, under the same locks.
        assert (len(large) - len(small)) / 20 <= 5, large
        owners = [s for s in large if s.startswith("SELECT contact_external_ids.system")]
        assert len(owners) == 1, owners

    async def test_a_key_an_earlier_item_claimed_is_looked_up_again(
        self, client: httpx.AsyncClient, workspace: WorkspaceHandle
    ) -> None:
        existing = await new_contact(
            client, workspace, given_name="Existing", external_ids={"erp": "old-1"}
        )
        response = await client.post(
            "/v1/contacts/batch",
            headers=workspace.headers,
            json={
                "items": [
                    {"given_name": "New", "emails": [{"email": "claimed@example.com"}],
                     "external_ids": {"erp": "new-1"}},
                    {"external_ids": {"erp": "old-1"},
                     "emails": [{"email": "claimed@example.com"}]},
                ]
            },
        )  # fmt: skip
        assert response.status_code == 200, response.text
        first, second = response.json()["results"]
        assert first["status"] == "created"
        assert second["status"] == "error"
        assert second["error"]["code"] == "duplicate"
        assert second["error"]["existing_id"] == first["id"]
        shown = await client.get(f"/v1/contacts/{existing}", headers=workspace.headers)
        assert shown.json()["emails"] == []

    async def test_a_batch_reads_each_contact_it_updates_once(
        self, client: httpx.AsyncClient, workspace: WorkspaceHandle, database: Database
    ) -> None:
        """An item that updates a contact reads it once, locked, and changes that copy; the
        ids it sends again as they are stay as they are (nothing replaced, nothing to check)."""
        items = [
            {"given_name": f"Sync {n}", "external_ids": {"erp": f"again-{n}"}} for n in range(25)
        ]
        first = await client.post(
            "/v1/contacts/batch", headers=workspace.headers, json={"items": items}
        )
        assert first.json()["created"] == 25
        for item in items:
            item["lifecycle_stage"] = "customer"
        with count_statements(database) as statements:
            again = await client.post(
                "/v1/contacts/batch", headers=workspace.headers, json={"items": items}
            )
        assert again.status_code == 200, again.text
        assert again.json()["updated"] == 25
        reads = [s for s in statements if "\nFROM contacts " in s]
        assert len(reads) == 25, reads
        assert all("FOR UPDATE" in s for s in reads), reads
        ids_written = [s for s in statements if "contact_external_ids" in s.split(" (")[0]]
        assert not [s for s in ids_written if s.startswith(("DELETE", "INSERT"))], ids_written
        # The batch's own look-up of its items' owners, and no check per item.
        owners = [s for s in statements if s.startswith("SELECT contact_external_ids.system")]
        assert len(owners) == 1, owners
        for row in again.json()["results"]:
            shown = await client.get(f"/v1/contacts/{row['id']}", headers=workspace.headers)
            assert shown.json()["lifecycle_stage"] == "customer"
