"""Thai and Vietnamese text: stored exactly, case-folded, trigram-searchable, sorted."""

from __future__ import annotations

import random

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.kit.collation import sort_key

THAI_NAMES = ["นายสมชาย ใจดี", "น้ำทิพย์ แก้วมณี", "เกศินี ศรีสุข", "ไพโรจน์ ก้องเกียรติ"]
VIET_NAMES = ["Nguyễn Văn An", "Trần Thị Bích Ngọc", "Đặng Quốc Huy", "Lê Hoàng Phúc"]


async def test_database_is_utf8_with_unicode_case_folding(owner_engine: AsyncEngine) -> None:
    async with owner_engine.connect() as connection:
        encoding = (await connection.execute(text("SHOW server_encoding"))).scalar_one()
        folded = (
            await connection.execute(
                text("SELECT lower('ĐẶNG QUỐC HUY'), upper('nguyễn văn an'), lower('สมชาย')")
            )
        ).one()
    assert encoding == "UTF8"
    assert folded == ("đặng quốc huy", "NGUYỄN VĂN AN", "สมชาย")


async def test_text_round_trips_exactly(owner_engine: AsyncEngine) -> None:
    async with owner_engine.connect() as connection:
        for name in THAI_NAMES + VIET_NAMES:
            stored = (
                await connection.execute(text("SELECT CAST(:v AS text)"), {"v": name})
            ).scalar()
            assert stored == name


async def test_search_key_folds_accents_case_and_thai_tone_marks(
    owner_engine: AsyncEngine,
) -> None:
    async with owner_engine.connect() as connection:
        keys = (
            await connection.execute(
                text(
                    "SELECT crm_search_key('Nguyễn Văn An'), crm_search_key('ĐẶNG'), "
                    "crm_search_key('น้ำทิพย์'), "
                    # decomposed input (e + combining acute) normalises like precomposed
                    "crm_search_key(E'Nguye\\u0302\\u0303n') = crm_search_key('Nguyễn')"
                )
            )
        ).one()
    assert keys[0] == "nguyen van an"
    assert keys[1] == "dang"
    assert keys[2] == "นำทิพย"
    assert keys[3] is True


async def test_trigram_index_finds_substrings_in_thai_and_vietnamese(
    owner_engine: AsyncEngine,
) -> None:
    async with owner_engine.begin() as connection:
        await connection.execute(
            text("CREATE TEMP TABLE people (id serial PRIMARY KEY, name text NOT NULL)")
        )
        filler = [f"Customer {i} โชคดี {i}" for i in range(2000)]
        await connection.execute(
            text("INSERT INTO people (name) SELECT unnest(CAST(:names AS text[]))"),
            {"names": [*THAI_NAMES, *VIET_NAMES, *filler]},
        )
        await connection.execute(
            text(
                "CREATE INDEX people_search ON people USING gin (crm_search_key(name) gin_trgm_ops)"
            )
        )
        await connection.execute(text("ANALYZE people"))

        async def search(query: str) -> list[str]:
            result = await connection.execute(
                text(
                    "SELECT name FROM people "
                    "WHERE crm_search_key(name) LIKE '%' || crm_search_key(:q) || '%' "
                    "ORDER BY id"
                ),
                {"q": query},
            )
            return list(result.scalars())

        assert await search("nguyen van an") == ["Nguyễn Văn An"]
        assert await search("NGỌC") == ["Trần Thị Bích Ngọc"]
        assert await search("dang quoc") == ["Đặng Quốc Huy"]
        assert await search("สมชาย") == ["นายสมชาย ใจดี"]  # inside a word: no spaces in Thai
        assert await search("น้ำทิพย์") == ["น้ำทิพย์ แก้วมณี"]  # tone marks in the query
        assert await search("แก้วมณี") == ["น้ำทิพย์ แก้วมณี"]

        plan = "\n".join(
            (
                await connection.execute(
                    text(
                        "EXPLAIN SELECT name FROM people "
                        "WHERE crm_search_key(name) LIKE '%' || crm_search_key('สมชาย') || '%'"
                    )
                )
            ).scalars()
        )
        assert "people_search" in plan, plan


def test_sort_key_orders_thai_in_dictionary_order() -> None:
    expected = ["กา", "ก้าง", "กิน", "เกม", "แก้ว", "โกโก้", "ไก่", "ขา", "ข้าว", "คน", "งู",
                "ใจ", "หมู", "อ่าน", "ฮา"]  # fmt: skip
    shuffled = expected[:]
    random.Random(7).shuffle(shuffled)
    assert sorted(shuffled, key=sort_key) == expected


def test_sort_key_orders_latin_case_and_accent_insensitively_first() -> None:
    names = ["Zebra", "apple", "Ánh", "Anh", "Đức", "Dung", "bé", "Ô", "Oanh"]
    assert sorted(names, key=sort_key) == [
        "Anh", "Ánh", "apple", "bé", "Đức", "Dung", "Ô", "Oanh", "Zebra"
    ]  # fmt: skip


async def test_sort_keys_order_the_same_in_postgresql(owner_engine: AsyncEngine) -> None:
    names = THAI_NAMES + VIET_NAMES + ["apple", "Zebra", "ไก่", "กา"]
    async with owner_engine.connect() as connection:
        result = await connection.execute(
            text(
                "SELECT name FROM unnest(CAST(:names AS text[]), CAST(:keys AS bytea[])) "
                "AS t(name, key) ORDER BY key"
            ),
            {"names": names, "keys": [sort_key(name) for name in names]},
        )
        assert list(result.scalars()) == sorted(names, key=sort_key)
