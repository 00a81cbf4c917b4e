"""app.db.clock: the database's timestamp of the current transaction, read once per transaction."""

from __future__ import annotations

from sqlalchemy import text

from app.db.clock import transaction_now
from app.db.session import Database
from tests.test_graphql import count_statements


async def test_one_read_per_transaction_savepoints_included(database: Database) -> None:
    async with database.sessionmaker() as session:
        async with session.begin():
            with count_statements(database) as statements:
                first = await transaction_now(session)
                async with session.begin_nested():
                    inside = await transaction_now(session)
                again = await transaction_now(session)
            assert len(statements) == 1
            assert first == inside == again
            assert (await session.execute(text("SELECT now()"))).scalar_one() == first
        async with session.begin():
            later = await transaction_now(session)
            assert later > first
            assert (await session.execute(text("SELECT now()"))).scalar_one() == later


async def test_the_first_read_can_begin_the_transaction(database: Database) -> None:
    async with database.sessionmaker() as session:
        moment = await transaction_now(session)
        assert await transaction_now(session) == moment
        await session.commit()
        assert await transaction_now(session) > moment
