"""app.db.direct: statements with the same key queue behind each other and share a commit."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db.session import Database

# Each row names its statement, its transaction and when it ran.
_WHICH = "SELECT $1::int AS n, txid_current() AS tx, clock_timestamp() AS at"


async def test_queued_statements_run_together_in_arrival_order(database: Database) -> None:
    rows = await asyncio.gather(
        *(database.direct.fetchrow_grouped("account-1", _WHICH, n) for n in range(12))
    )

    assert [row["n"] for row in rows] == list(range(12))  # each caller gets its own row
    transactions = {row["tx"] for row in rows}
    # The first runs alone; the eleven queued behind it share one transaction.
    assert len(transactions) == 2
    grouped = sorted((row for row in rows if row["n"] > 0), key=lambda row: row["at"])
    assert [row["n"] for row in grouped] == list(range(1, 12))


async def test_statements_with_other_keys_do_not_wait_for_each_other(database: Database) -> None:
    rows = await asyncio.gather(
        *(database.direct.fetchrow_grouped(f"account-{n}", _WHICH, n) for n in range(6))
    )

    assert len({row["tx"] for row in rows}) == 6


async def test_a_failing_statement_fails_alone(database: Database) -> None:
    divide = "SELECT 10 / $1::int AS n, txid_current() AS tx, clock_timestamp() AS at"
    outcomes = await asyncio.gather(
        *(database.direct.fetchrow_grouped("account-2", divide, d) for d in (1, 2, 0, 5, 10)),
        return_exceptions=True,
    )

    assert isinstance(outcomes[2], asyncpg.DivisionByZeroError)
    answered = [o for o in outcomes if not isinstance(o, BaseException)]
    assert [row["n"] for row in answered] == [10, 5, 2, 1]
    # Nothing is left queued: the key takes new statements at once.
    row = await database.direct.fetchrow_grouped("account-2", _WHICH, 99)
    assert row is not None
    assert row["n"] == 99


async def test_a_group_rolls_back_together_and_is_run_again_one_by_one(
    database: Database, owner_engine: AsyncEngine
) -> None:
    """Written rows commit once their own statement has; a failure in the group does not
    lose the others' writes, nor write them twice."""
    async with owner_engine.begin() as connection:
        await connection.execute(text("CREATE TABLE grouped_writes_test (n int PRIMARY KEY)"))
        await connection.execute(text("GRANT SELECT, INSERT ON grouped_writes_test TO PUBLIC"))
    insert = "INSERT INTO grouped_writes_test VALUES (10 / $1::int) RETURNING n"
    try:
        outcomes = await asyncio.gather(
            *(database.direct.fetchrow_grouped("table", insert, d) for d in (1, 2, 0, 5, 10)),
            return_exceptions=True,
        )
        assert isinstance(outcomes[2], asyncpg.DivisionByZeroError)
        written = await database.direct.fetchrow(
            "SELECT array_agg(n ORDER BY n) AS ns FROM grouped_writes_test"
        )
        assert written is not None
        assert written["ns"] == [1, 2, 5, 10]
    finally:
        async with owner_engine.begin() as connection:
            await connection.execute(text("DROP TABLE grouped_writes_test"))


@pytest.mark.parametrize("size", [70])
async def test_a_long_queue_is_split_into_bounded_groups(database: Database, size: int) -> None:
    rows = await asyncio.gather(
        *(database.direct.fetchrow_grouped("account-3", _WHICH, n) for n in range(size))
    )

    assert [row["n"] for row in rows] == list(range(size))
    # One alone, then at most 64 in a transaction.
    assert len({row["tx"] for row in rows}) == 3
