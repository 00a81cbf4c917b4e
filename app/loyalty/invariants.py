"""The loyalty ledger's invariants as SQL: each query returns the rows that break one.

The database enforces most of them with constraints and triggers as rows are written; these
check the whole of a workspace's ledger at once (accounts against entries, lots against
allocations, tiers against the qualifying window), as the tests do after every scenario and
the benchmark's seeding does after loading a ledger by COPY.
"""

from __future__ import annotations

import uuid

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

INVARIANTS = {
    "balance is the sum of entries": """
        SELECT a.id FROM loyalty_accounts a
        LEFT JOIN (SELECT account_id, sum(amount) AS total, max(seq) AS last, count(*) AS n
                   FROM loyalty_entries GROUP BY account_id) e ON e.account_id = a.id
        WHERE a.workspace_id = :w
          AND (a.balance <> COALESCE(e.total, 0) OR a.version <> COALESCE(e.last, 1)
               OR COALESCE(e.n, 0) <> a.version - 1)
    """,
    "entries chain by seq": """
        SELECT e.id FROM loyalty_entries e
        JOIN loyalty_entries p ON p.account_id = e.account_id AND p.seq = e.seq - 1
        WHERE e.workspace_id = :w
          AND (p.balance_after + e.amount <> e.balance_after
               OR p.available_after + e.available_change <> e.available_after
               OR p.pending_after + e.pending_change <> e.pending_after)
    """,
    "available is the remainders of available lots less debt": """
        SELECT a.id FROM loyalty_accounts a
        WHERE a.workspace_id = :w AND a.available <> COALESCE((
            SELECT sum(remaining) FROM loyalty_lots l
            WHERE l.account_id = a.id AND l.state = 'available'), 0) - a.debt
    """,
    "pending is the remainders of pending lots": """
        SELECT a.id FROM loyalty_accounts a
        WHERE a.workspace_id = :w AND a.pending <> COALESCE((
            SELECT sum(remaining) FROM loyalty_lots l
            WHERE l.account_id = a.id AND l.state = 'pending'), 0)
    """,
    "a lot's remaining is its original plus its allocations": """
        SELECT l.id FROM loyalty_lots l
        WHERE l.workspace_id = :w AND l.remaining <> l.original + COALESCE((
            SELECT sum(amount) FROM loyalty_allocations x WHERE x.lot_id = l.id), 0)
    """,
    "no lot consumed beyond its amount": """
        SELECT id FROM loyalty_lots WHERE workspace_id = :w
          AND (remaining < 0 OR remaining > original)
    """,
    "available never negative unless allowed": """
        SELECT id FROM loyalty_accounts WHERE workspace_id = :w
          AND available < 0 AND NOT allow_negative
    """,
    "no lot past its expiry still spendable after a write": """
        SELECT l.id FROM loyalty_lots l JOIN loyalty_accounts a ON a.id = l.account_id
        WHERE l.workspace_id = :w AND l.state = 'available' AND l.remaining > 0
          AND l.expires_at <= a.updated_at
    """,
    "no lot falls due before the account's next due time": """
        SELECT a.id FROM loyalty_accounts a
        WHERE a.workspace_id = :w AND EXISTS (
          SELECT 1 FROM loyalty_lots l WHERE l.account_id = a.id AND (
            (l.state = 'pending'
             AND (a.next_due_at IS NULL OR l.available_at < a.next_due_at))
            OR (l.state = 'available' AND l.remaining > 0 AND l.expires_at IS NOT NULL
                AND (a.next_due_at IS NULL OR l.expires_at < a.next_due_at))))
    """,
    "a kept qualifying total is the window's sum while it is exact": """
        SELECT a.id FROM loyalty_accounts a JOIN loyalty_programs p ON p.id = a.program_id
        WHERE a.workspace_id = :w AND a.qualifying_until > now()
          AND a.qualifying_program_version = p.version
          AND a.qualifying IS DISTINCT FROM COALESCE((
              SELECT sum(CASE WHEN p.tier_basis = 'spend' THEN e.qualifying_spend_minor
                              ELSE e.qualifying_points END)
              FROM loyalty_entries e WHERE e.account_id = a.id
                AND e.qualifies_at > now() - make_interval(months => p.tier_window_months)), 0)
    """,
    "tier is the tier the ledger earns": """
        SELECT a.id FROM loyalty_accounts a JOIN loyalty_programs p ON p.id = a.program_id
        WHERE a.workspace_id = :w AND a.tier_id IS DISTINCT FROM (
          SELECT t.id FROM loyalty_tiers t WHERE t.program_id = a.program_id
            AND t.threshold <= COALESCE((
              SELECT sum(CASE WHEN p.tier_basis = 'spend' THEN e.qualifying_spend_minor
                              ELSE e.qualifying_points END)
              FROM loyalty_entries e WHERE e.account_id = a.id
                AND e.qualifies_at > now() - make_interval(months => p.tier_window_months)), 0)
          ORDER BY t.threshold DESC LIMIT 1)
    """,
}


async def broken_invariants(
    connection: AsyncConnection | AsyncSession, workspace_id: uuid.UUID | str
) -> dict[str, list[str]]:
    """Each broken invariant's name, with up to five ids of the rows that break it."""
    broken: dict[str, list[str]] = {}
    for name, sql in INVARIANTS.items():
        rows = (await connection.execute(text(sql), {"w": workspace_id})).all()
        if rows:
            broken[name] = [str(row[0]) for row in rows[:5]]
    return broken
