"""The points ledger: every change to a member's points, as appended entries.

Callers hold the account row locked (``LoyaltyRepository.lock_accounts``) for the whole
transaction. Each operation appends one entry (``seq`` = the account's new version), moves lot
remainders through allocations and updates the account's cached counters with it, so that at
every commit:

- balance = available + pending = the sum of the account's entries (``balance_after`` chains);
- available = the remainders of available lots - debt; pending = the remainders of pending lots;
- a lot's remaining = its original + the sum of its allocations, and 0 <= remaining <= original.

Consumption order (redemptions, negative adjusts, clawbacks beyond the purchase's own lot):
earliest ``expires_at`` first (never-expiring last), then earliest ``available_at``, then lot id.
Time is the database's transaction clock.

The database function ``crm_loyalty_write`` (migration 0011_loyalty_writes) does what
``earn`` (available at once) and ``consume`` do here, in one statement, for accounts with
nothing due: a change to either belongs in both.
"""

from __future__ import annotations

import calendar
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.kit.ids import uuid7
from app.loyalty.exceptions import InsufficientPoints
from app.loyalty.repository import LoyaltyRepository
from app.models import LoyaltyAccount, LoyaltyAllocation, LoyaltyEntry, LoyaltyLot, LoyaltyProgram

_LOT_PAGE = 50


def earliest(current: datetime | None, due: datetime | None) -> datetime | None:
    """The earlier of two due times, where None is never."""
    if current is None:
        return due
    if due is None:
        return current
    return min(current, due)


def add_months(moment: datetime, months: int) -> datetime:
    """Calendar months later, on the same day or the month's last (as PostgreSQL does)."""
    index = moment.month - 1 + months
    year, month = moment.year + index // 12, index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


@dataclass
class Settled:
    """What settling an account changed: the release and expiry entries it appended."""

    entries: list[LoyaltyEntry] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.entries)


class Ledger:
    """Operations on locked accounts within one transaction."""

    def __init__(
        self,
        session: AsyncSession,
        workspace_id: uuid.UUID,
        now: datetime,
        *,
        api_key_id: uuid.UUID | None = None,
    ) -> None:
        self.session = session
        self.workspace_id = workspace_id
        self.now = now
        self.api_key_id = api_key_id
        self.repository = LoyaltyRepository(session)

    @classmethod
    async def start(
        cls, session: AsyncSession, workspace_id: uuid.UUID, *, api_key_id: uuid.UUID | None = None
    ) -> Ledger:
        now = await LoyaltyRepository(session).now()
        return cls(session, workspace_id, now, api_key_id=api_key_id)

    # -- the one place entries are made --------------------------------------------------------
    async def _append(
        self,
        account: LoyaltyAccount,
        *,
        kind: str,
        available_change: int,
        pending_change: int,
        reference: str | None = None,
        reverses_entry_id: uuid.UUID | None = None,
        clawback_of_entry_id: uuid.UUID | None = None,
        redemption_id: uuid.UUID | None = None,
        reason: str | None = None,
        qualifying_points: int = 0,
        qualifying_spend_minor: int = 0,
        qualifies_at: datetime | None = None,
        effective_at: datetime | None = None,
        details: dict[str, Any] | None = None,
    ) -> LoyaltyEntry:
        account.version += 1
        account.updated_at = self.now
        # The kept qualifying total is not maintained here: the next plain write sums it.
        account.qualifying_until = None
        account.available += available_change
        account.pending += pending_change
        account.balance = account.available + account.pending
        entry = LoyaltyEntry(
            workspace_id=self.workspace_id,
            id=uuid7(),
            account_id=account.id,
            program_id=account.program_id,
            seq=account.version,
            kind=kind,
            amount=available_change + pending_change,
            available_change=available_change,
            pending_change=pending_change,
            balance_after=account.balance,
            available_after=account.available,
            pending_after=account.pending,
            reference=reference,
            reverses_entry_id=reverses_entry_id,
            clawback_of_entry_id=clawback_of_entry_id,
            redemption_id=redemption_id,
            reason=reason,
            qualifying_points=qualifying_points,
            qualifying_spend_minor=qualifying_spend_minor,
            qualifies_at=qualifies_at or effective_at or self.now,
            effective_at=effective_at or self.now,
            recorded_at=self.now,
            api_key_id=self.api_key_id,
            details=details or {},
        )
        self.session.add(entry)
        # The entry exists before lots and allocations refer to it.
        await self.session.flush()
        return entry

    def _allocate(self, entry: LoyaltyEntry, lot: LoyaltyLot, amount: int) -> None:
        lot.remaining += amount
        self.session.add(
            LoyaltyAllocation(
                workspace_id=self.workspace_id,
                id=uuid7(),
                entry_id=entry.id,
                lot_id=lot.id,
                amount=amount,
            )
        )

    def _repay_debt(
        self, account: LoyaltyAccount, entry: LoyaltyEntry, lots: list[LoyaltyLot]
    ) -> None:
        """Points becoming spendable first pay back a negative balance (allow_negative).
        ``available`` already counts the debt, so it does not change here."""
        for lot in lots:
            if account.debt == 0:
                return
            if lot.state != "available" or lot.remaining == 0:
                continue
            taken = min(account.debt, lot.remaining)
            self._allocate(entry, lot, -taken)
            account.debt -= taken

    # -- operations ----------------------------------------------------------------------------
    async def earn(
        self,
        account: LoyaltyAccount,
        program: LoyaltyProgram,
        points: int,
        *,
        kind: str = "earn",
        pending: bool,
        reference: str | None = None,
        reason: str | None = None,
        qualifying: bool = True,
        qualifying_spend_minor: int = 0,
        effective_at: datetime | None = None,
        details: dict[str, Any] | None = None,
    ) -> LoyaltyEntry:
        """Add a lot of ``points``: pending until the programme's pending days have passed
        since ``effective_at`` (a purchase's time), or available now; expiring
        ``expiry_months`` after it becomes available. A purchase recorded late may so earn
        points that are available at once, or already expired (the caller settles)."""
        start = min(effective_at or self.now, self.now)
        available_at = start + timedelta(days=program.pending_days) if pending else self.now
        state = "pending" if available_at > self.now else "available"
        expires_at = (
            add_months(available_at, program.expiry_months) if program.expiry_months else None
        )
        if kind == "earn":
            account.lifetime_earned += points
        account.next_due_at = earliest(
            account.next_due_at, available_at if state == "pending" else expires_at
        )
        entry = await self._append(
            account,
            kind=kind,
            available_change=points if state == "available" else 0,
            pending_change=points if state == "pending" else 0,
            reference=reference,
            reason=reason,
            qualifying_points=points if qualifying else 0,
            qualifying_spend_minor=qualifying_spend_minor,
            effective_at=effective_at,
            details={
                **(details or {}),
                "available_at": available_at.isoformat(),
                "expires_at": expires_at.isoformat() if expires_at else None,
            },
        )
        lot = LoyaltyLot(
            workspace_id=self.workspace_id,
            id=uuid7(),
            account_id=account.id,
            entry_id=entry.id,
            original=points,
            remaining=points,
            state=state,
            available_at=available_at,
            expires_at=expires_at,
            created_at=self.now,
        )
        self.session.add(lot)
        if account.debt:
            await self.session.flush()
            self._repay_debt(account, entry, [lot])
        return entry

    async def consume(
        self,
        account: LoyaltyAccount,
        points: int,
        *,
        kind: str,
        reference: str | None = None,
        reason: str | None = None,
        redemption_id: uuid.UUID | None = None,
        details: dict[str, Any] | None = None,
    ) -> LoyaltyEntry:
        """Spend ``points`` of available lots in consumption order.

        Raises:
            InsufficientPoints: fewer than ``points`` are available; nothing is written.
        """
        if account.available < points:
            raise InsufficientPoints(available=account.available, needed=points)
        if kind == "redeem":
            account.redeemed += points
        entry = await self._append(
            account,
            kind=kind,
            available_change=-points,
            pending_change=0,
            reference=reference,
            reason=reason,
            redemption_id=redemption_id,
            details=details,
        )
        left, read = points, 0
        # A page of lots at a time: a member with many small lots is not read whole.
        while left > 0:
            lots = await self.repository.spendable_lots(
                self.workspace_id, account.id, offset=read, limit=_LOT_PAGE
            )
            read += len(lots)
            for lot in lots:
                if left == 0:
                    break
                taken = min(left, lot.remaining)
                self._allocate(entry, lot, -taken)
                left -= taken
            if len(lots) < _LOT_PAGE:
                break
        # available = the sum of remainders (no debt when points are available), so the lots
        # always cover it; the CHECK on remaining would refuse the commit otherwise.
        assert left == 0, "lots do not cover the available balance"  # noqa: S101
        return entry

    async def clawback(
        self,
        account: LoyaltyAccount,
        earn_entry: LoyaltyEntry,
        points: int,
        *,
        reference: str,
        reason: str | None,
        spend_minor: int = 0,
        details: dict[str, Any] | None = None,
    ) -> LoyaltyEntry:
        """Take back ``points`` of an earn: from its own lot first (pending or available),
        then from other available lots; what is still missing becomes debt under
        ``allow_negative`` and is forgiven under ``cap_at_zero`` (recorded in ``details``)."""
        own = await self.repository.lot_of_entry(self.workspace_id, earn_entry.id)
        plan: list[tuple[LoyaltyLot, int]] = []
        from_pending = from_available = 0
        left = points
        if own is not None and own.remaining > 0 and own.state != "expired":
            taken = min(left, own.remaining)
            plan.append((own, taken))
            if own.state == "pending":
                from_pending += taken
            else:
                from_available += taken
            left -= taken
        if left > 0 and account.debt == 0:
            for lot in await self.repository.spendable_lots(
                self.workspace_id, account.id, exclude=own.id if own is not None else None
            ):
                if left == 0:
                    break
                taken = min(left, lot.remaining)
                plan.append((lot, taken))
                from_available += taken
                left -= taken
        debt = forgiven = 0
        if left > 0:
            if account.allow_negative:
                debt = left
            else:
                forgiven = left
        # Before the entry's flush: the row's CHECK ties available to the debt.
        account.debt += debt
        entry = await self._append(
            account,
            kind="reverse",
            available_change=-(from_available + debt),
            pending_change=-from_pending,
            reference=reference,
            clawback_of_entry_id=earn_entry.id,
            reason=reason,
            qualifying_points=-points,
            qualifying_spend_minor=-spend_minor,
            qualifies_at=earn_entry.qualifies_at,
            details={**(details or {}), "requested": points, "forgiven": forgiven, "debt": debt},
        )
        for lot, taken in plan:
            self._allocate(entry, lot, -taken)
        account.lifetime_earned -= points - forgiven
        await self.session.flush()
        return entry

    async def restore(
        self,
        account: LoyaltyAccount,
        original: LoyaltyEntry,
        *,
        reason: str | None,
        redemption_id: uuid.UUID | None = None,
    ) -> LoyaltyEntry:
        """Reverse a consuming entry: give each lot back exactly what the entry took from it,
        with the lot's own expiry. A lot already past its expiry is expired again at once
        (restore-then-expire), so restored points are never spendable after their date."""
        taken = [a for a in await self.repository.allocations(self.workspace_id, original.id)
                 if a.amount < 0]  # fmt: skip
        lots = {lot.id: lot for lot in await self.repository.lots(
            self.workspace_id, [a.lot_id for a in taken])}  # fmt: skip
        points = -sum(a.amount for a in taken)
        if original.kind == "redeem":
            account.redeemed -= points
        entry = await self._append(
            account,
            kind="reverse",
            available_change=points,
            pending_change=0,
            reverses_entry_id=original.id,
            redemption_id=redemption_id,
            reason=reason,
            details={"reversed_kind": original.kind},
        )
        for allocation in taken:
            lot = lots[allocation.lot_id]
            if lot.state == "expired":
                lot.state = "available"
            self._allocate(entry, lot, -allocation.amount)
            account.next_due_at = earliest(
                account.next_due_at, lot.available_at if lot.state == "pending" else lot.expires_at
            )
        self._repay_debt(account, entry, [lots[a.lot_id] for a in taken])
        await self.session.flush()
        return entry

    async def settle(self, account: LoyaltyAccount, *, force: bool = False) -> Settled:
        """Release the pending lots whose time has come, then expire the lots past their
        expiry. Idempotent: once settled, settling again at the same time changes nothing.

        Reads no lot before the account's ``next_due_at`` (so most writes settle for free);
        ``force`` reads them anyway (the sweep, which found the account by its lots)."""
        settled = Settled()
        if not force and (account.next_due_at is None or account.next_due_at > self.now):
            return settled
        await self.session.flush()
        found = await self.repository.lots_due(self.workspace_id, account.id, self.now)
        due = [lot for lot in found if lot.state == "pending"]
        if due:
            points = sum(lot.remaining for lot in due)
            if points == 0:
                for lot in due:
                    lot.state = "available"
            else:
                entry = await self._append(
                    account,
                    kind="release",
                    available_change=points,
                    pending_change=-points,
                    details={"lots": [str(lot.id) for lot in due]},
                )
                for lot in due:
                    lot.state = "available"
                    lot.release_entry_id = entry.id
                self._repay_debt(account, entry, due)
                settled.entries.append(entry)
        expiring = [
            lot
            for lot in found
            if lot.state == "available"
            and lot.remaining > 0
            and lot.expires_at is not None
            and lot.expires_at <= self.now
        ]
        if expiring:
            points = sum(lot.remaining for lot in expiring)
            entry = await self._append(
                account,
                kind="expire",
                available_change=-points,
                pending_change=0,
                details={"lots": [str(lot.id) for lot in expiring]},
            )
            for lot in expiring:
                self._allocate(entry, lot, -lot.remaining)
                lot.state = "expired"
            account.expired += points
            settled.entries.append(entry)
        if found:
            # Later reads of lots (a redemption's) see what settling changed.
            await self.session.flush()
        account.next_due_at = await self.repository.next_due(self.workspace_id, account.id)
        return settled
