"""Every SQL statement of the loyalty module."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg
from sqlalchemy import Row, bindparam, case, func, or_, select, text, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.direct import DirectPool
from app.db.params import rows_among
from app.kit.ids import uuid7
from app.kit.pagination import Keyset
from app.models import (
    LoyaltyAccount,
    LoyaltyAllocation,
    LoyaltyEntry,
    LoyaltyLot,
    LoyaltyProgram,
    LoyaltyRedemption,
    LoyaltyReward,
    LoyaltyTier,
)

_NOW = text("SELECT transaction_timestamp()")

# Each account's qualifying total in its programme's rolling window and the tier that total
# reaches (the highest threshold at or below it), next to the tier it has.
_DERIVED_TIERS = """
WITH qualifying AS (
  SELECT a.id, a.tier_id, a.program_id,
    -- Summed only for programmes with tiers: a busy account's window can hold many entries.
    CASE WHEN NOT EXISTS (SELECT 1 FROM loyalty_tiers t0
                          WHERE t0.workspace_id = a.workspace_id AND t0.program_id = a.program_id)
    THEN 0
    -- The account's kept total while it is exact (migration 0014_loyalty_qualifying).
    WHEN a.qualifying_until > transaction_timestamp()
         AND a.qualifying_program_version = p.version THEN a.qualifying
    ELSE COALESCE((
      SELECT sum(CASE WHEN p.tier_basis = 'spend' THEN e.qualifying_spend_minor
                      ELSE e.qualifying_points END)
      FROM loyalty_entries e
      WHERE e.workspace_id = a.workspace_id AND e.account_id = a.id
        AND e.qualifies_at > transaction_timestamp()
                             - make_interval(months => p.tier_window_months)
    ), 0) END::bigint AS qualifying
  FROM loyalty_accounts a
  JOIN loyalty_programs p ON p.workspace_id = a.workspace_id AND p.id = a.program_id
  WHERE a.workspace_id = :workspace_id {where}
)
SELECT q.id, q.tier_id, q.qualifying,
  (SELECT t.id FROM loyalty_tiers t
   WHERE t.workspace_id = :workspace_id AND t.program_id = q.program_id
     AND t.threshold <= q.qualifying
   ORDER BY t.threshold DESC LIMIT 1) AS derived_tier_id
FROM qualifying q
"""


# Available lots holding points through their own index (emptied ones are many on a busy
# account), pending ones through the account's; as crm_loyalty_write sums them (migration
# 0015_loyalty_expiring).
_EXPIRING = text("""
SELECT account_id,
  COALESCE(sum(remaining) FILTER (
    WHERE expires_at <= transaction_timestamp() + interval '30 days'), 0)::bigint,
  COALESCE(sum(remaining) FILTER (
    WHERE expires_at <= transaction_timestamp() + interval '60 days'), 0)::bigint,
  COALESCE(sum(remaining), 0)::bigint
FROM (
  SELECT account_id, remaining, expires_at FROM loyalty_lots
  WHERE workspace_id = :w AND account_id = ANY(:ids) AND state = 'available' AND remaining > 0
    AND expires_at <= transaction_timestamp() + interval '90 days'
  UNION ALL
  SELECT account_id, remaining, expires_at FROM loyalty_lots
  WHERE workspace_id = :w AND account_id = ANY(:ids) AND state = 'pending' AND remaining > 0
    AND expires_at <= transaction_timestamp() + interval '90 days'
) lots
GROUP BY account_id
""")


# One plain earn, adjust or redemption in one round trip (migration 0011_loyalty_writes).
_WRITE = text(
    "SELECT * FROM crm_loyalty_write(:workspace_id, :account_id, :kind, :points, :reason, "
    ":api_key_id, :details, :entry_id, :lot_id, :redemption_id, :event_id, :tier_event_id)"
).bindparams(bindparam("details", type_=JSONB))


_WRITE_ALONE = (
    "SELECT * FROM crm_loyalty_write($1, $2, $3, $4, $5, $6, $7::jsonb, $8, $9, $10, $11, $12)"
)


class _Fields:
    """A plain asyncpg record read by attribute, as SQLAlchemy rows are."""

    __slots__ = ("_record",)

    def __init__(self, record: asyncpg.Record) -> None:
        self._record = record

    def __getattr__(self, name: str) -> Any:
        try:
            return self._record[name]
        except KeyError:
            raise AttributeError(name) from None


@dataclass(frozen=True)
class PlainWrite:
    """One plain earn, adjust or redemption: what crm_loyalty_write is called with."""

    workspace_id: uuid.UUID
    account_id: uuid.UUID
    kind: str
    points: int
    reason: str | None
    api_key_id: uuid.UUID | None
    details: dict[str, Any]
    redemption_id: uuid.UUID | None = None
    entry_id: uuid.UUID = field(default_factory=uuid7)

    def arguments(self) -> dict[str, Any]:
        # In the function's parameter order (_WRITE_ALONE binds them by position).
        return {
            "workspace_id": self.workspace_id,
            "account_id": self.account_id,
            "kind": self.kind,
            "points": self.points,
            "reason": self.reason,
            "api_key_id": self.api_key_id,
            "details": self.details,
            "entry_id": self.entry_id,
            "lot_id": uuid7() if self.points > 0 else None,
            "redemption_id": self.redemption_id,
            "event_id": uuid7(),
            "tier_event_id": uuid7(),
        }


async def write_alone(pool: DirectPool, write: PlainWrite) -> Any:
    """``LoyaltyRepository.write`` as a transaction of its own on ``pool``, committed when it
    returns: for a caller that has written nothing else and needs no atomicity with what it
    writes next (the function binds the workspace itself). Writes to one account that queue
    behind each other share a commit (``DirectPool.fetchrow_grouped``)."""
    record = await pool.fetchrow_grouped(
        (write.workspace_id, write.account_id), _WRITE_ALONE, *write.arguments().values()
    )
    return None if record is None else _Fields(record)


# Read for every member's view (the 360 view, the mobile app): built once with bound parameters
# (app.db.params), not for each request.
_PROGRAMS = rows_among(LoyaltyProgram, LoyaltyProgram.id)
_TIERS_OF_PROGRAMS = rows_among(LoyaltyTier, LoyaltyTier.program_id).order_by(
    LoyaltyTier.program_id, LoyaltyTier.threshold
)
_ACCOUNTS_OF_CONTACTS = rows_among(LoyaltyAccount, LoyaltyAccount.contact_id).order_by(
    LoyaltyAccount.contact_id, LoyaltyAccount.id
)


class LoyaltyRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def now(self) -> datetime:
        value: datetime = (await self.session.execute(_NOW)).scalar_one()
        return value

    # -- programmes and tiers ------------------------------------------------------------------
    async def program(
        self, workspace_id: uuid.UUID, program_id: uuid.UUID, *, for_update: bool = False
    ) -> LoyaltyProgram | None:
        statement = select(LoyaltyProgram).where(
            LoyaltyProgram.workspace_id == workspace_id, LoyaltyProgram.id == program_id
        )
        if for_update:
            statement = statement.with_for_update()
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def program_of_account(
        self, workspace_id: uuid.UUID, account_id: uuid.UUID
    ) -> tuple[LoyaltyProgram | None, datetime]:
        """The account's programme (None without such an account) and the transaction's time,
        in one statement; read before the account is locked, so not while holding it."""
        found = (
            await self.session.execute(
                select(func.transaction_timestamp(), LoyaltyProgram)
                .select_from(LoyaltyAccount)
                .join(
                    LoyaltyProgram,
                    (LoyaltyProgram.workspace_id == LoyaltyAccount.workspace_id)
                    & (LoyaltyProgram.id == LoyaltyAccount.program_id),
                )
                .where(LoyaltyAccount.workspace_id == workspace_id, LoyaltyAccount.id == account_id)
            )
        ).one_or_none()
        if found is None:
            return None, await self.now()
        return found[1], found[0]

    async def programs(
        self, workspace_id: uuid.UUID, program_ids: Sequence[uuid.UUID]
    ) -> list[LoyaltyProgram]:
        params = {"workspace_id": workspace_id, "ids": list(program_ids)}
        return list((await self.session.execute(_PROGRAMS, params)).scalars())

    async def find_programs(self, workspace_id: uuid.UUID, keyset: Keyset) -> list[LoyaltyProgram]:
        statement = keyset.apply(
            select(LoyaltyProgram).where(LoyaltyProgram.workspace_id == workspace_id)
        )
        return list((await self.session.execute(statement)).scalars())

    async def tiers(
        self, workspace_id: uuid.UUID, program_ids: Sequence[uuid.UUID]
    ) -> list[LoyaltyTier]:
        params = {"workspace_id": workspace_id, "ids": list(program_ids)}
        return list((await self.session.execute(_TIERS_OF_PROGRAMS, params)).scalars())

    async def tier(self, workspace_id: uuid.UUID, tier_id: uuid.UUID) -> LoyaltyTier | None:
        statement = select(LoyaltyTier).where(
            LoyaltyTier.workspace_id == workspace_id, LoyaltyTier.id == tier_id
        )
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def tiers_by_id(
        self, workspace_id: uuid.UUID, tier_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, LoyaltyTier]:
        if not tier_ids:
            return {}
        statement = select(LoyaltyTier).where(
            LoyaltyTier.workspace_id == workspace_id, LoyaltyTier.id.in_(list(tier_ids))
        )
        return {row.id: row for row in (await self.session.execute(statement)).scalars()}

    # -- accounts ------------------------------------------------------------------------------
    async def account(
        self, workspace_id: uuid.UUID, account_id: uuid.UUID
    ) -> LoyaltyAccount | None:
        statement = select(LoyaltyAccount).where(
            LoyaltyAccount.workspace_id == workspace_id, LoyaltyAccount.id == account_id
        )
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def lock_accounts(
        self, workspace_id: uuid.UUID, account_ids: Sequence[uuid.UUID]
    ) -> list[LoyaltyAccount]:
        """The accounts, locked FOR UPDATE in id order (so two writers never deadlock), with
        their current row values."""
        statement = (
            select(LoyaltyAccount)
            .where(
                LoyaltyAccount.workspace_id == workspace_id,
                LoyaltyAccount.id.in_(sorted(set(account_ids))),
            )
            .order_by(LoyaltyAccount.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        return list((await self.session.execute(statement)).scalars())

    async def member(
        self, workspace_id: uuid.UUID, program_id: uuid.UUID, contact_id: uuid.UUID
    ) -> LoyaltyAccount | None:
        statement = select(LoyaltyAccount).where(
            LoyaltyAccount.workspace_id == workspace_id,
            LoyaltyAccount.program_id == program_id,
            LoyaltyAccount.contact_id == contact_id,
        )
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def accounts_of_contacts(
        self, workspace_id: uuid.UUID, contact_ids: Sequence[uuid.UUID]
    ) -> list[LoyaltyAccount]:
        params = {"workspace_id": workspace_id, "ids": list(contact_ids)}
        return list((await self.session.execute(_ACCOUNTS_OF_CONTACTS, params)).scalars())

    async def find_accounts(
        self,
        workspace_id: uuid.UUID,
        keyset: Keyset,
        *,
        program_id: uuid.UUID | None,
        contact_id: uuid.UUID | None,
    ) -> list[LoyaltyAccount]:
        statement = select(LoyaltyAccount).where(LoyaltyAccount.workspace_id == workspace_id)
        if program_id is not None:
            statement = statement.where(LoyaltyAccount.program_id == program_id)
        if contact_id is not None:
            statement = statement.where(LoyaltyAccount.contact_id == contact_id)
        return list((await self.session.execute(keyset.apply(statement))).scalars())

    async def expiring(
        self, workspace_id: uuid.UUID, account_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, tuple[int, int, int]]:
        """Points of pending and available lots expiring within 30, 60 and 90 days."""
        if not account_ids:
            return {}
        rows = await self.session.execute(_EXPIRING, {"w": workspace_id, "ids": list(account_ids)})
        return {row[0]: (row[1], row[2], row[3]) for row in rows}

    async def derived_tiers(
        self,
        workspace_id: uuid.UUID,
        *,
        account_ids: Sequence[uuid.UUID] | None = None,
        program_id: uuid.UUID | None = None,
        only_changed: bool = False,
        limit: int | None = None,
    ) -> list[Row[Any]]:
        """``(id, tier_id, qualifying, derived_tier_id)`` for the accounts asked for."""
        where = ""
        params: dict[str, Any] = {"workspace_id": workspace_id}
        if account_ids is not None:
            where += " AND a.id = ANY(:ids)"
            params["ids"] = list(account_ids)
        if program_id is not None:
            where += " AND a.program_id = :program_id"
            params["program_id"] = program_id
        sql = _DERIVED_TIERS.format(where=where)
        if only_changed:
            sql = f"SELECT * FROM ({sql}) d WHERE d.tier_id IS DISTINCT FROM d.derived_tier_id"
        sql += " ORDER BY 1"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return list((await self.session.execute(text(sql), params)).all())

    async def accounts_due(self, workspace_id: uuid.UUID, limit: int) -> list[uuid.UUID]:
        """Accounts with a pending lot to release or a lot to expire, by the database clock."""
        rows = await self.session.execute(
            text(
                "SELECT account_id FROM ("
                " SELECT account_id FROM loyalty_lots WHERE workspace_id = :w"
                " AND state = 'pending' AND available_at <= transaction_timestamp()"
                " UNION"
                " SELECT account_id FROM loyalty_lots WHERE workspace_id = :w"
                " AND state = 'available' AND remaining > 0"
                " AND expires_at <= transaction_timestamp()"
                ") due ORDER BY account_id LIMIT :limit"
            ),
            {"w": workspace_id, "limit": limit},
        )
        return list(rows.scalars())

    # -- lots, entries, allocations ------------------------------------------------------------
    async def lots_due(
        self, workspace_id: uuid.UUID, account_id: uuid.UUID, now: datetime
    ) -> list[LoyaltyLot]:
        """Pending lots due for release and available lots past their expiry, in one read."""
        statement = (
            select(LoyaltyLot)
            .where(
                LoyaltyLot.workspace_id == workspace_id,
                LoyaltyLot.account_id == account_id,
                or_(
                    (LoyaltyLot.state == "pending") & (LoyaltyLot.available_at <= now),
                    (LoyaltyLot.state.in_(("pending", "available")))
                    & (LoyaltyLot.remaining > 0)
                    & (LoyaltyLot.expires_at <= now),
                ),
            )
            .order_by(LoyaltyLot.expires_at, LoyaltyLot.available_at, LoyaltyLot.id)
            .execution_options(populate_existing=True)
        )
        return list((await self.session.execute(statement)).scalars())

    async def next_due(self, workspace_id: uuid.UUID, account_id: uuid.UUID) -> datetime | None:
        """When the account's next lot falls due: the earliest release of a pending lot or
        expiry of an available lot with points left (None: never)."""
        value: datetime | None = await self.session.scalar(
            select(
                func.min(
                    case(
                        (LoyaltyLot.state == "pending", LoyaltyLot.available_at),
                        else_=LoyaltyLot.expires_at,
                    )
                )
            ).where(
                LoyaltyLot.workspace_id == workspace_id,
                LoyaltyLot.account_id == account_id,
                or_(
                    LoyaltyLot.state == "pending",
                    (LoyaltyLot.state == "available") & (LoyaltyLot.remaining > 0),
                ),
            )
        )
        return value

    async def write(self, write: PlainWrite) -> Any:
        """Lock the account and, unless a lot of it is due, write ``points`` (positive: a new
        lot; negative: spent from available lots) with its entry, allocations, redemption,
        events and tier, in one statement; None without such an account."""
        return (await self.session.execute(_WRITE, write.arguments())).first()

    async def spendable_lots(
        self,
        workspace_id: uuid.UUID,
        account_id: uuid.UUID,
        *,
        exclude: uuid.UUID | None = None,
        offset: int = 0,
        limit: int | None = None,
    ) -> list[LoyaltyLot]:
        """Available lots with points left, in consumption order: the earliest expiry first
        (never-expiring last), then the earliest available, then the lot id (the order of
        ``ix_loyalty_lots_spendable``, so a page of them reads no more of the index)."""
        statement = select(LoyaltyLot).where(
            LoyaltyLot.workspace_id == workspace_id,
            LoyaltyLot.account_id == account_id,
            LoyaltyLot.state == "available",
            LoyaltyLot.remaining > 0,
        )
        if exclude is not None:
            statement = statement.where(LoyaltyLot.id != exclude)
        statement = statement.order_by(
            LoyaltyLot.expires_at.asc().nulls_last(), LoyaltyLot.available_at, LoyaltyLot.id
        ).execution_options(populate_existing=True)
        if offset:
            statement = statement.offset(offset)
        if limit is not None:
            statement = statement.limit(limit)
        return list((await self.session.execute(statement)).scalars())

    async def lot_of_entry(self, workspace_id: uuid.UUID, entry_id: uuid.UUID) -> LoyaltyLot | None:
        statement = (
            select(LoyaltyLot)
            .where(LoyaltyLot.workspace_id == workspace_id, LoyaltyLot.entry_id == entry_id)
            .execution_options(populate_existing=True)
        )
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def lots(self, workspace_id: uuid.UUID, lot_ids: Sequence[uuid.UUID]) -> list[LoyaltyLot]:
        statement = (
            select(LoyaltyLot)
            .where(LoyaltyLot.workspace_id == workspace_id, LoyaltyLot.id.in_(list(lot_ids)))
            .order_by(LoyaltyLot.id)
            .execution_options(populate_existing=True)
        )
        return list((await self.session.execute(statement)).scalars())

    async def allocations(
        self, workspace_id: uuid.UUID, entry_id: uuid.UUID
    ) -> list[LoyaltyAllocation]:
        statement = (
            select(LoyaltyAllocation)
            .where(
                LoyaltyAllocation.workspace_id == workspace_id,
                LoyaltyAllocation.entry_id == entry_id,
            )
            .order_by(LoyaltyAllocation.id)
        )
        return list((await self.session.execute(statement)).scalars())

    async def entry(self, workspace_id: uuid.UUID, entry_id: uuid.UUID) -> LoyaltyEntry | None:
        statement = select(LoyaltyEntry).where(
            LoyaltyEntry.workspace_id == workspace_id, LoyaltyEntry.id == entry_id
        )
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def entries_by_id(
        self, workspace_id: uuid.UUID, entry_ids: Sequence[uuid.UUID]
    ) -> list[LoyaltyEntry]:
        statement = select(LoyaltyEntry).where(
            LoyaltyEntry.workspace_id == workspace_id, LoyaltyEntry.id.in_(list(entry_ids))
        )
        return list((await self.session.execute(statement)).scalars())

    async def entry_by_reference(
        self, workspace_id: uuid.UUID, program_id: uuid.UUID, reference: str
    ) -> LoyaltyEntry | None:
        statement = select(LoyaltyEntry).where(
            LoyaltyEntry.workspace_id == workspace_id,
            LoyaltyEntry.reference == reference,
            LoyaltyEntry.program_id == program_id,
        )
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def entries_by_reference(
        self, workspace_id: uuid.UUID, reference: str
    ) -> list[LoyaltyEntry]:
        """The entries with this reference, one per programme at most."""
        statement = (
            select(LoyaltyEntry)
            .where(LoyaltyEntry.workspace_id == workspace_id, LoyaltyEntry.reference == reference)
            .order_by(LoyaltyEntry.account_id)
        )
        return list((await self.session.execute(statement)).scalars())

    async def clawed_back(self, workspace_id: uuid.UUID, earn_entry_id: uuid.UUID) -> int:
        """Points asked back so far from an earn (whether or not they could all be taken)."""
        value = await self.session.scalar(
            select(func.coalesce(func.sum(-LoyaltyEntry.qualifying_points), 0)).where(
                LoyaltyEntry.workspace_id == workspace_id,
                LoyaltyEntry.clawback_of_entry_id == earn_entry_id,
            )
        )
        return int(value or 0)

    async def has_purchase_earn(self, workspace_id: uuid.UUID, account_id: uuid.UUID) -> bool:
        statement = (
            select(LoyaltyEntry.id)
            .where(
                LoyaltyEntry.workspace_id == workspace_id,
                LoyaltyEntry.account_id == account_id,
                LoyaltyEntry.kind == "earn",
                LoyaltyEntry.details["source"].astext == "purchase",
            )
            .limit(1)
        )
        return (await self.session.execute(statement)).first() is not None

    async def find_entries(
        self, workspace_id: uuid.UUID, account_id: uuid.UUID, keyset: Keyset
    ) -> list[LoyaltyEntry]:
        statement = select(LoyaltyEntry).where(
            LoyaltyEntry.workspace_id == workspace_id, LoyaltyEntry.account_id == account_id
        )
        return list((await self.session.execute(keyset.apply(statement))).scalars())

    async def recent_entries(
        self, workspace_id: uuid.UUID, account_ids: Sequence[uuid.UUID], limit: int
    ) -> list[LoyaltyEntry]:
        """Each account's newest ``limit`` entries, in one statement."""
        ranked = (
            select(
                LoyaltyEntry.id,
                func.row_number()
                .over(partition_by=LoyaltyEntry.account_id, order_by=LoyaltyEntry.seq.desc())
                .label("rank"),
            )
            .where(
                LoyaltyEntry.workspace_id == workspace_id,
                LoyaltyEntry.account_id.in_(list(account_ids)),
            )
            .subquery()
        )
        statement = (
            select(LoyaltyEntry)
            .join(ranked, ranked.c.id == LoyaltyEntry.id)
            .where(LoyaltyEntry.workspace_id == workspace_id, ranked.c.rank <= limit)
            .order_by(LoyaltyEntry.account_id, LoyaltyEntry.seq.desc())
        )
        return list((await self.session.execute(statement)).scalars())

    # -- redemptions and rewards ---------------------------------------------------------------
    async def redemption(
        self, workspace_id: uuid.UUID, redemption_id: uuid.UUID
    ) -> LoyaltyRedemption | None:
        statement = (
            select(LoyaltyRedemption)
            .where(
                LoyaltyRedemption.workspace_id == workspace_id,
                LoyaltyRedemption.id == redemption_id,
            )
            .execution_options(populate_existing=True)
        )
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def find_redemptions(
        self, workspace_id: uuid.UUID, account_id: uuid.UUID, keyset: Keyset
    ) -> list[LoyaltyRedemption]:
        statement = select(LoyaltyRedemption).where(
            LoyaltyRedemption.workspace_id == workspace_id,
            LoyaltyRedemption.account_id == account_id,
        )
        return list((await self.session.execute(keyset.apply(statement))).scalars())

    async def reward(
        self, workspace_id: uuid.UUID, reward_id: uuid.UUID, *, for_update: bool = False
    ) -> LoyaltyReward | None:
        statement = select(LoyaltyReward).where(
            LoyaltyReward.workspace_id == workspace_id, LoyaltyReward.id == reward_id
        )
        if for_update:
            statement = statement.with_for_update()
        statement = statement.execution_options(populate_existing=True)
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def find_rewards(
        self, workspace_id: uuid.UUID, keyset: Keyset, *, program_id: uuid.UUID | None
    ) -> list[LoyaltyReward]:
        statement = select(LoyaltyReward).where(LoyaltyReward.workspace_id == workspace_id)
        if program_id is not None:
            statement = statement.where(LoyaltyReward.program_id == program_id)
        return list((await self.session.execute(keyset.apply(statement))).scalars())

    async def take_stock(self, workspace_id: uuid.UUID, reward_id: uuid.UUID) -> bool:
        """One unit off a limited reward's stock, only if one is left (atomic: a concurrent
        taker waits for this row and re-checks ``stock > 0`` on its newest version)."""
        result = await self.session.execute(
            update(LoyaltyReward)
            .where(
                LoyaltyReward.workspace_id == workspace_id,
                LoyaltyReward.id == reward_id,
                LoyaltyReward.stock > 0,
            )
            .values(
                stock=LoyaltyReward.stock - 1,
                version=LoyaltyReward.version + 1,
                updated_at=func.now(),
            )
            .returning(LoyaltyReward.id)
            .execution_options(synchronize_session=False)
        )
        return result.first() is not None

    async def return_stock(self, workspace_id: uuid.UUID, reward_id: uuid.UUID) -> None:
        await self.session.execute(
            update(LoyaltyReward)
            .where(
                LoyaltyReward.workspace_id == workspace_id,
                LoyaltyReward.id == reward_id,
                LoyaltyReward.stock.is_not(None),
            )
            .values(
                stock=LoyaltyReward.stock + 1,
                version=LoyaltyReward.version + 1,
                updated_at=func.now(),
            )
            .execution_options(synchronize_session=False)
        )

    async def move_accounts(
        self, workspace_id: uuid.UUID, survivor_id: uuid.UUID, absorbed_ids: Sequence[uuid.UUID]
    ) -> None:
        """Re-point absorbed contacts' memberships to the survivor, one per programme: a
        membership in a programme the survivor already belongs to stays where it is."""
        await self.session.execute(
            text(
                "UPDATE loyalty_accounts SET contact_id = :survivor, updated_at = now() "
                "WHERE workspace_id = :w AND id IN ("
                " SELECT DISTINCT ON (program_id) id FROM loyalty_accounts"
                " WHERE workspace_id = :w AND contact_id = ANY(:absorbed)"
                " AND program_id NOT IN (SELECT program_id FROM loyalty_accounts"
                "  WHERE workspace_id = :w AND contact_id = :survivor)"
                " ORDER BY program_id, id)"
            ),
            {"survivor": survivor_id, "w": workspace_id, "absorbed": list(absorbed_ids)},
        )
