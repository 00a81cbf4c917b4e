from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from app.auth.dependencies import AuthContext
from app.contact.service import ContactQuery
from app.contact.service import contact as contact_service
from app.db.session import Database, bind_workspace
from app.kit.search import CANDIDATES
from tests.conftest import WorkspaceHandle
from tests.test_conventions import assert_problem
from tests.test_graphql import count_statements

PEOPLE = [
    {
        "given_name": "Văn An",
        "family_name": "Nguyễn",
        "locale": "vi-VN",
        "emails": [{"email": "an.nguyen@example.vn"}],
        "phones": [{"number": "+84 912 345 678"}],
        "tags": ["hanoi"],
        "lifecycle_stage": "customer",
    },
    {
        "given_name": "Thị Bích Ngọc",
        "family_name": "Trần",
        "locale": "vi-VN",
        "tags": ["hcmc", "vip"],
        "lifecycle_stage": "advocate",
    },
    {
        "given_name": "สมชาย",
        "family_name": "ใจดี",
        "display_name": "นายสมชาย ใจดี",
        "phones": [{"number": "081-234-5678"}],
        "tags": ["vip"],
        "lifecycle_stage": "customer",
    },
    {
        "given_name": "น้ำทิพย์",
        "family_name": "แก้วมณี",
        "emails": [{"email": "namthip@example.co.th"}],
        "lifecycle_stage": "lead",
    },
    {"given_name": "Anna", "family_name": "Andersen", "emails": [{"email": "anna@example.com"}]},
]


@pytest.fixture
async def people(client: httpx.AsyncClient, workspace: WorkspaceHandle) -> dict[str, str]:
    ids = {}
    for person in PEOPLE:
        response = await client.post("/v1/contacts", headers=workspace.headers, json=person)
        assert response.status_code == 201, response.text
        ids[response.json()["display_name"]] = response.json()["id"]
    return ids


async def search(client: httpx.AsyncClient, ws: WorkspaceHandle, **params: Any) -> list[str]:
    response = await client.get("/v1/contacts", headers=ws.headers, params=params)
    assert response.status_code == 200, response.text
    return [item["display_name"] for item in response.json()["data"]]


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("nguyen van an", "Nguyễn Văn An"),
        ("NGUYỄN", "Nguyễn Văn An"),
        ("ngoc", "Trần Thị Bích Ngọc"),
        ("bich ngoc", "Trần Thị Bích Ngọc"),
        ("สมชาย", "นายสมชาย ใจดี"),
        ("ใจดี", "นายสมชาย ใจดี"),
        ("น้ำทิพย์", "น้ำทิพย์ แก้วมณี"),
        ("แก้วมณี", "น้ำทิพย์ แก้วมณี"),
        ("081-234-5678", "นายสมชาย ใจดี"),
        ("0812345678", "นายสมชาย ใจดี"),
        ("+66 81 234 5678", "นายสมชาย ใจดี"),
        ("2345678", "นายสมชาย ใจดี"),
        ("0912 345 678", "Nguyễn Văn An"),
        ("+84912345678", "Nguyễn Văn An"),
        ("namthip@example", "น้ำทิพย์ แก้วมณี"),
        ("ANNA@EXAMPLE.COM", "Anna Andersen"),
    ],
)
async def test_one_box_finds_names_emails_and_phones(
    client: httpx.AsyncClient,
    workspace: WorkspaceHandle,
    people: dict[str, str],
    q: str,
    expected: str,
) -> None:
    found = await search(client, workspace, q=q)
    assert found[:1] == [expected], found


async def test_best_match_first(
    client: httpx.AsyncClient, workspace: WorkspaceHandle, people: dict[str, str]
) -> None:
    # A whole word "An" ranks above a word that only starts with it.
    found = await search(client, workspace, q="an")
    assert found == ["Nguyễn Văn An", "Anna Andersen"]
    assert (await search(client, workspace, q="van an"))[0] == "Nguyễn Văn An"


async def test_two_letter_words_match_word_starts_and_longer_ones_any_part(
    client: httpx.AsyncClient, workspace: WorkspaceHandle, people: dict[str, str]
) -> None:
    # No trigram index serves a two-letter substring, so "an" finds words starting with it
    # (not "Trần"); three letters and more match inside words.
    assert "Trần Thị Bích Ngọc" not in await search(client, workspace, q="an")
    assert await search(client, workspace, q="ran") == ["Trần Thị Bích Ngọc"]
    assert await search(client, workspace, q="สม") == ["นายสมชาย ใจดี"]
    assert await search(client, workspace, q="a.") == []


async def test_filters_apply_before_the_ranking_cap(
    client: httpx.AsyncClient, workspace: WorkspaceHandle
) -> None:
    # More matches than the ranked candidates: a filtered search must still find the one
    # contact that passes the filter, wherever it lies among the matches.
    common = [{"given_name": "Somchai", "family_name": f"Common {n}"} for n in range(1000)]
    response = await client.post(
        "/v1/contacts/batch", headers=workspace.headers, json={"items": common}
    )
    assert response.status_code == 200, response.text
    tagged = await client.post(
        "/v1/contacts",
        headers=workspace.headers,
        json={"given_name": "Somchai", "family_name": "Rare", "tags": ["needle"]},
    )
    assert tagged.status_code == 201, tagged.text
    for name in ("Somchai", "Extra"):
        more = [{"given_name": name, "family_name": f"Later {n}"} for n in range(200)]
        await client.post("/v1/contacts/batch", headers=workspace.headers, json={"items": more})
    assert await search(client, workspace, q="somchai", tag="needle") == ["Somchai Rare"]
    page = await client.get(
        "/v1/contacts", headers=workspace.headers, params={"q": "somchai", "limit": 100}
    )
    assert len(page.json()["data"]) == 100
    # Paging goes through the ranked candidates, each once, then stops.
    seen: list[str] = []
    cursor = None
    for _ in range(10):
        params: dict[str, Any] = {"q": "somchai", "limit": 150}
        if cursor:
            params["cursor"] = cursor
        body = (await client.get("/v1/contacts", headers=workspace.headers, params=params)).json()
        seen += [item["id"] for item in body["data"]]
        cursor = body["next_cursor"]
        if not cursor:
            break
    assert len(seen) == len(set(seen)) == CANDIDATES


async def test_search_pages_with_a_cursor(
    client: httpx.AsyncClient, workspace: WorkspaceHandle
) -> None:
    for index in range(7):
        await client.post(
            "/v1/contacts",
            headers=workspace.headers,
            json={"given_name": f"Somsak {index}", "family_name": "Rakthai"},
        )
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"q": "somsak", "limit": 3}
        if cursor:
            params["cursor"] = cursor
        page = (await client.get("/v1/contacts", headers=workspace.headers, params=params)).json()
        seen += [item["id"] for item in page["data"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len(seen) == len(set(seen)) == 7


async def test_no_match_and_bad_search_sorts(
    client: httpx.AsyncClient, workspace: WorkspaceHandle, people: dict[str, str]
) -> None:
    assert await search(client, workspace, q="zzzzqqq") == []
    response = await client.get(
        "/v1/contacts", headers=workspace.headers, params={"q": "an", "sort": "name"}
    )
    assert_problem(response, 422, "validation_error")
    response = await client.get(
        "/v1/contacts", headers=workspace.headers, params={"q": "an", "cursor": "WyJ4IiwxLDJd"}
    )
    assert_problem(response, 400, "invalid_cursor")


async def test_wildcards_in_the_query_are_literal(
    client: httpx.AsyncClient, workspace: WorkspaceHandle, people: dict[str, str]
) -> None:
    assert await search(client, workspace, q="%%") == []
    assert await search(client, workspace, q="a_n") == []


async def test_words_without_a_letter_or_digit_are_left_out(
    client: httpx.AsyncClient, workspace: WorkspaceHandle, people: dict[str, str]
) -> None:
    # No trigram of the index can find punctuation alone; the other words still must match.
    assert await search(client, workspace, q="... an --") == await search(client, workspace, q="an")
    assert await search(client, workspace, q="... --") == []
    assert await search(client, workspace, q="ใจดี ...") == ["นายสมชาย ใจดี"]


async def test_filters(
    client: httpx.AsyncClient, workspace: WorkspaceHandle, people: dict[str, str]
) -> None:
    assert sorted(await search(client, workspace, lifecycle_stage="customer")) == sorted(
        ["Nguyễn Văn An", "นายสมชาย ใจดี"]
    )
    assert sorted(await search(client, workspace, tag="vip")) == sorted(
        ["Trần Thị Bích Ngọc", "นายสมชาย ใจดี"]
    )
    assert await search(client, workspace, tag=["vip", "hcmc"]) == ["Trần Thị Bích Ngọc"]
    assert await search(client, workspace, phone="0812345678") == ["นายสมชาย ใจดี"]
    assert await search(client, workspace, email="Anna@Example.com") == ["Anna Andersen"]
    no_phone = await search(client, workspace, has_phone="false")
    assert sorted(no_phone) == sorted(["Trần Thị Bích Ngọc", "น้ำทิพย์ แก้วมณี", "Anna Andersen"])
    assert await search(client, workspace, has_email="true", q="anna") == ["Anna Andersen"]
    assert_problem(
        await client.get(
            "/v1/contacts", headers=workspace.headers, params={"lifecycle_stage": "vip"}
        ),
        422,
        "validation_error",
    )


async def test_sort_by_name_uses_dictionary_order(
    client: httpx.AsyncClient, workspace: WorkspaceHandle
) -> None:
    for name in ("ไก่", "กา", "เกม", "ขา", "apple", "Zebra"):
        await client.post("/v1/contacts", headers=workspace.headers, json={"display_name": name})
    names = await search(client, workspace, sort="name")
    assert names == ["apple", "Zebra", "กา", "เกม", "ไก่", "ขา"]
    names = await search(client, workspace, sort="-name", limit=2)
    assert names == ["ขา", "ไก่"]


async def test_a_whole_address_finds_the_contact_that_has_it(
    client: httpx.AsyncClient, workspace: WorkspaceHandle
) -> None:
    for person in (
        {
            "given_name": "An",
            "family_name": "Nguyen",
            "emails": [{"email": "an.nguyen@example.vn"}, {"email": "an@work.example.com"}],
        },
        {
            "given_name": "Joan",
            "family_name": "Nguyen",
            "emails": [{"email": "joan.nguyen@example.vn"}],
        },
    ):
        response = await client.post("/v1/contacts", headers=workspace.headers, json=person)
        assert response.status_code == 201, response.text
    # Another address that contains the typed one is another person's.
    assert await search(client, workspace, q=" AN.Nguyen@Example.VN ") == ["An Nguyen"]
    assert await search(client, workspace, q="an@work.example.com") == ["An Nguyen"]
    assert await search(client, workspace, q="nobody@example.vn") == []
    # A part of an address still matches inside every address that contains it.
    assert sorted(await search(client, workspace, q="an.nguyen@example")) == [
        "An Nguyen",
        "Joan Nguyen",
    ]
    # The exact-address filter and the searched address may be two addresses of one contact.
    assert await search(
        client, workspace, q="an.nguyen@example.vn", email="an@work.example.com"
    ) == ["An Nguyen"]
    assert (
        await search(client, workspace, q="an.nguyen@example.vn", email="joan.nguyen@example.vn")
        == []
    )


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        # The search key (with the plan mode), then the ranked page with its contacts' values.
        (ContactQuery(q="nguyen van"), 2),
        (ContactQuery(q="an.nguyen@example.vn"), 2),
        # Only numbers need the workspace's region, read from the workspace first.
        (ContactQuery(q="+84 912 345 678"), 3),
        (ContactQuery(), 1),
        (ContactQuery(phone="+84 912 345 678"), 2),
    ],
)
async def test_statements_per_search(
    workspace: WorkspaceHandle,
    people: dict[str, str],
    database: Database,
    query: ContactQuery,
    expected: int,
) -> None:
    auth = AuthContext(workspace_id=workspace.id, api_key_id=uuid.uuid4(), scopes=frozenset())
    async with database.sessionmaker() as session, session.begin():
        await bind_workspace(session, workspace.id)
        with count_statements(database) as statements:
            rows, _ = await contact_service.find(
                session, auth, query, limit=20, cursor=None, sort=None
            )
    assert "Nguyễn Văn An" in [row.display_name for row in rows]
    assert len(statements) == expected, statements
