"""app.db.locking: advisory locks on names, each asked for once per transaction."""

from __future__ import annotations

import uuid

from app.db.locking import lock_keys
from app.db.session import Database
from tests.test_graphql import count_statements


def _locks(statements: list[str]) -> int:
    return sum("pg_advisory_xact_lock" in statement for statement in statements)


async def test_keys_held_by_the_transaction_are_not_asked_for_again(database: Database) -> None:
    workspace_id = uuid.uuid4()
    async with database.sessionmaker() as session:
        async with session.begin():
            with count_statements(database) as statements:
                await lock_keys(session, workspace_id, ["email:a@example.com", "ext:erp:1"])
                await lock_keys(session, workspace_id, ["ext:erp:1"])
                await lock_keys(session, workspace_id, ["ext:erp:1", "ext:erp:2"])
            assert _locks(statements) == 2
            # Taken inside a savepoint that rolls back, a lock goes with it: asked for again.
            async with session.begin_nested() as savepoint:
                await lock_keys(session, workspace_id, ["ext:erp:3"])
                await savepoint.rollback()
            with count_statements(database) as statements:
                await lock_keys(session, workspace_id, ["ext:erp:3"])
            assert _locks(statements) == 1
        # A new transaction holds nothing yet.
        async with session.begin():
            with count_statements(database) as statements:
                await lock_keys(session, workspace_id, ["ext:erp:1"])
            assert _locks(statements) == 1
