"""Loyalty: programmes and tiers, member accounts, earning, redeeming, reversing, rewards.

Every write to a member's points locks the member's account row (``FOR UPDATE``; several
accounts in id order) before reading anything it decides on, then appends to the ledger
(``app.loyalty.ledger``) in the same transaction; database constraints back each invariant.
Each write first settles the account (releases due pending points, expires due lots) by the
database clock, and finally re-derives the member's tier from the ledger.

A plain earn, adjust or redemption (no reference, no reward) on an account with nothing due
is one call of the database function ``crm_loyalty_write``, which does all of that while it
holds the account's row: a busy account's row is held for one statement, not a dozen round
trips. Anything else, or an account with a lot due, goes through ``app.loyalty.ledger``.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import event, func, inspect
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, SessionTransaction
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key

from app.auth.dependencies import AuthContext
from app.contact.references import register_contact_reference
from app.contact.service import contact as contact_service
from app.db.direct import DirectPool
from app.db.locking import lock_keys
from app.events import outbox
from app.kit.errors import FieldError, ValidationFailed
from app.kit.etag import check_if_match
from app.kit.ids import uuid7
from app.kit.pagination import Keyset, Sort, SortField, parse_datetime
from app.loyalty import schemas
from app.loyalty.earning import PurchaseLine, purchase_points
from app.loyalty.exceptions import (
    AccountNotFound,
    AlreadyEnrolled,
    AlreadyReversed,
    DuplicateTier,
    EntryNotFound,
    InsufficientPoints,
    OutOfStock,
    ProgramInactive,
    ProgramNotFound,
    RedemptionNotFound,
    ReferenceReused,
    RewardNotFound,
    RewardUnavailable,
    TierNotFound,
    TierTooLow,
)
from app.loyalty.ledger import Ledger
from app.loyalty.repository import LoyaltyRepository, PlainWrite, write_alone
from app.models import (
    LoyaltyAccount,
    LoyaltyEntry,
    LoyaltyProgram,
    LoyaltyRedemption,
    LoyaltyReward,
    LoyaltyTier,
    Purchase,
    PurchaseRefund,
)

ID_SORT = {"id": SortField(LoyaltyProgram.id, lambda value: uuid.UUID(str(value)))}
OLDEST_FIRST = Sort(name="id", descending=False)
NEWEST_FIRST = Sort(name="id", descending=True)
# The details of an entry made through POST …/entries.
_MANUAL = {"source": "manual"}
ENTRY_SORT = {"recorded_at": SortField(LoyaltyEntry.recorded_at, parse_datetime)}


def _keyset(column: Any, limit: int, cursor: str | None, *, descending: bool) -> Keyset:
    sorts = {"id": SortField(column, lambda value: uuid.UUID(str(value)))}
    return Keyset.build(
        sort=NEWEST_FIRST if descending else OLDEST_FIRST,
        allowed=sorts,
        id_column=column,
        limit=limit,
        cursor=cursor,
    )


def _page(keyset: Keyset, rows: Sequence[Any]) -> tuple[list[Any], str | None]:
    return keyset.page(rows, lambda row: (row.id, row.id))


@dataclass(frozen=True)
class _Rate:
    spend_minor: int
    points: int
    min_spend_minor: int


def _rates(program: LoyaltyProgram) -> dict[str, _Rate]:
    return {
        rate["currency"]: _Rate(rate["spend_minor"], rate["points"], rate["min_spend_minor"])
        for rate in program.earn_rates
    }


def _stored_rates(rates: Sequence[schemas.EarnRate]) -> list[dict[str, Any]]:
    return [
        {
            "currency": rate.spend.currency,
            "spend_minor": rate.spend.to_minor_units(),
            "points": rate.points,
            "min_spend_minor": rate.min_spend.to_minor_units() if rate.min_spend else 0,
        }
        for rate in rates
    ]


def _rates_out(program: LoyaltyProgram) -> list[schemas.EarnRate]:
    from app.kit.money import Money

    return [
        schemas.EarnRate(
            spend=Money.from_minor_units(rate["spend_minor"], rate["currency"]),
            points=rate["points"],
            min_spend=Money.from_minor_units(rate["min_spend_minor"], rate["currency"])
            if rate["min_spend_minor"]
            else None,
        )
        for rate in program.earn_rates
    ]


# session.info keys: account id -> (account version, qualifying total), and programme id ->
# programme, as a write found them in this transaction; the response after the write reads
# neither again.
_QUALIFYING = "loyalty.qualifying"
_PROGRAMS = "loyalty.programs"
# Account id -> (account version, the account as shown), as a one-statement write returned it.
_VIEWS = "loyalty.views"


@event.listens_for(Session, "after_transaction_end")
def _forget_written(session: Session, transaction: SessionTransaction) -> None:
    # Only within the transaction that found them: a later one may see other values.
    if transaction.parent is None:
        session.info.pop(_QUALIFYING, None)
        session.info.pop(_PROGRAMS, None)
        session.info.pop(_VIEWS, None)


async def _move_accounts(
    session: AsyncSession,
    workspace_id: uuid.UUID,
    survivor_id: uuid.UUID,
    absorbed_ids: Sequence[uuid.UUID],
) -> None:
    await LoyaltyRepository(session).move_accounts(workspace_id, survivor_id, absorbed_ids)


register_contact_reference("loyalty_accounts", _move_accounts)


class LoyaltyService:
    # == programmes ===========================================================================
    async def create_program(
        self, session: AsyncSession, auth: AuthContext, data: schemas.ProgramCreate
    ) -> tuple[LoyaltyProgram, list[LoyaltyTier]]:
        """Create a programme with its tiers.

        Raises:
            ValidationFailed: two tiers share a name or a threshold.
        """
        self._check_tiers(data.tiers)
        program = LoyaltyProgram(
            workspace_id=auth.workspace_id,
            id=uuid7(),
            name=data.name,
            point_name=data.point_name,
            earn_rates=_stored_rates(data.earn_rates),
            category_multipliers=dict(data.category_multipliers),
            first_purchase_bonus=data.first_purchase_bonus,
            birthday_multiplier=data.birthday_multiplier,
            pending_days=data.pending_days,
            expiry_months=data.expiry_months,
            clawback_policy=data.clawback_policy,
            tier_basis=data.tier_basis,
            tier_currency=data.tier_currency,
            tier_window_months=data.tier_window_months,
            active=True,
            version=1,
        )
        session.add(program)
        await session.flush()
        tiers = [self._new_tier(auth, program.id, tier) for tier in data.tiers]
        session.add_all(tiers)
        await session.flush()
        await session.refresh(program, ["created_at", "updated_at"])
        for tier in tiers:
            await session.refresh(tier, ["created_at", "updated_at"])
        tiers.sort(key=lambda tier: tier.threshold)
        await outbox.record(
            session,
            workspace_id=auth.workspace_id,
            type="loyalty.program_created",
            aggregate_type="loyalty_program",
            aggregate_id=program.id,
            data=self.program_schema(program, tiers),
        )
        return program, tiers

    @staticmethod
    def _check_tiers(tiers: Sequence[schemas.TierCreate]) -> None:
        for attribute in ("name", "threshold"):
            values = [getattr(tier, attribute) for tier in tiers]
            for index, value in enumerate(values):
                if value in values[:index]:
                    raise ValidationFailed(
                        f"Two tiers have the same {attribute}",
                        errors=[FieldError(field=f"tiers.{index}.{attribute}", message="repeated")],
                    )

    @staticmethod
    def _new_tier(
        auth: AuthContext, program_id: uuid.UUID, data: schemas.TierCreate
    ) -> LoyaltyTier:
        return LoyaltyTier(
            workspace_id=auth.workspace_id,
            id=uuid7(),
            program_id=program_id,
            name=data.name,
            threshold=data.threshold,
            earn_multiplier=data.earn_multiplier,
            benefits=data.benefits,
        )

    async def get_program(
        self, session: AsyncSession, auth: AuthContext, program_id: uuid.UUID
    ) -> tuple[LoyaltyProgram, list[LoyaltyTier]]:
        """Raises: ProgramNotFound."""
        repository = LoyaltyRepository(session)
        program = await repository.program(auth.workspace_id, program_id)
        if program is None:
            raise ProgramNotFound()
        return program, await repository.tiers(auth.workspace_id, [program.id])

    async def find_programs(
        self, session: AsyncSession, auth: AuthContext, *, limit: int, cursor: str | None
    ) -> tuple[list[tuple[LoyaltyProgram, list[LoyaltyTier]]], str | None]:
        """Programmes, oldest first. Raises: InvalidCursor."""
        repository = LoyaltyRepository(session)
        keyset = _keyset(LoyaltyProgram.id, limit, cursor, descending=False)
        rows, next_cursor = _page(keyset, await repository.find_programs(auth.workspace_id, keyset))
        tiers = await repository.tiers(auth.workspace_id, [row.id for row in rows])
        return [(row, [t for t in tiers if t.program_id == row.id]) for row in rows], next_cursor

    async def update_program(
        self,
        session: AsyncSession,
        auth: AuthContext,
        program_id: uuid.UUID,
        patch: schemas.ProgramUpdate,
        *,
        if_match: str | None = None,
    ) -> tuple[LoyaltyProgram, list[LoyaltyTier]]:
        """Apply a merge patch. New earn rules apply to later purchases; a new tier window
        re-derives every member's tier at once.

        Raises: ProgramNotFound, PreconditionFailed.
        """
        repository = LoyaltyRepository(session)
        program = await repository.program(auth.workspace_id, program_id, for_update=True)
        if program is None:
            raise ProgramNotFound()
        check_if_match(if_match, program.version)
        changes = patch.changes()
        if "earn_rates" in changes:
            program.earn_rates = _stored_rates(patch.earn_rates or [])
        for name in ("name", "point_name", "first_purchase_bonus", "birthday_multiplier",
                     "pending_days", "expiry_months", "tier_window_months", "active"):  # fmt: skip
            if name in changes:
                setattr(program, name, getattr(patch, name))
        if "category_multipliers" in changes:
            program.category_multipliers = dict(patch.category_multipliers or {})
        if not session.is_modified(program):
            return program, await repository.tiers(auth.workspace_id, [program.id])
        program.updated_at = func.now()
        await session.flush()
        await session.refresh(program, ["updated_at"])
        if "tier_window_months" in changes:
            await self._rederive_program_tiers(session, auth.workspace_id, program.id)
        tiers = await repository.tiers(auth.workspace_id, [program.id])
        await outbox.record(
            session,
            workspace_id=auth.workspace_id,
            type="loyalty.program_updated",
            aggregate_type="loyalty_program",
            aggregate_id=program.id,
            data=self.program_schema(program, tiers),
            changed_fields=sorted(changes),
        )
        return program, tiers

    async def create_tier(
        self,
        session: AsyncSession,
        auth: AuthContext,
        program_id: uuid.UUID,
        data: schemas.TierCreate,
    ) -> LoyaltyTier:
        """Add a tier; every member's tier is re-derived in the same transaction.

        Raises: ProgramNotFound, DuplicateTier.
        """
        repository = LoyaltyRepository(session)
        program = await repository.program(auth.workspace_id, program_id, for_update=True)
        if program is None:
            raise ProgramNotFound()
        existing = await repository.tiers(auth.workspace_id, [program_id])
        self._check_tier_free(existing, name=data.name, threshold=data.threshold)
        tier = self._new_tier(auth, program_id, data)
        session.add(tier)
        await session.flush()
        await session.refresh(tier, ["created_at", "updated_at"])
        await self._rederive_program_tiers(session, auth.workspace_id, program_id)
        return tier

    @staticmethod
    def _check_tier_free(
        tiers: Sequence[LoyaltyTier],
        *,
        name: str | None,
        threshold: int | None,
        other_than: uuid.UUID | None = None,
    ) -> None:
        for tier in tiers:
            if tier.id == other_than:
                continue
            if name is not None and tier.name == name:
                raise DuplicateTier(
                    f"The programme already has a tier named {name!r}",
                    errors=[FieldError(field="name", message="already used")],
                )
            if threshold is not None and tier.threshold == threshold:
                raise DuplicateTier(
                    f"The programme already has a tier at {threshold}",
                    errors=[FieldError(field="threshold", message="already used")],
                )

    async def update_tier(
        self,
        session: AsyncSession,
        auth: AuthContext,
        program_id: uuid.UUID,
        tier_id: uuid.UUID,
        patch: schemas.TierUpdate,
    ) -> LoyaltyTier:
        """Change a tier; members' tiers are re-derived in the same transaction.

        Raises: ProgramNotFound, TierNotFound, DuplicateTier.
        """
        repository = LoyaltyRepository(session)
        program = await repository.program(auth.workspace_id, program_id, for_update=True)
        if program is None:
            raise ProgramNotFound()
        tiers = await repository.tiers(auth.workspace_id, [program_id])
        tier = next((t for t in tiers if t.id == tier_id), None)
        if tier is None:
            raise TierNotFound()
        changes = patch.changes()
        self._check_tier_free(
            tiers, name=changes.get("name"), threshold=changes.get("threshold"), other_than=tier.id
        )
        for name in ("name", "threshold", "earn_multiplier", "benefits"):
            if name in changes:
                setattr(tier, name, getattr(patch, name))
        if session.is_modified(tier):
            tier.updated_at = func.now()
            await session.flush()
            await session.refresh(tier, ["updated_at"])
            await self._rederive_program_tiers(session, auth.workspace_id, program_id)
        return tier

    async def _rederive_program_tiers(
        self, session: AsyncSession, workspace_id: uuid.UUID, program_id: uuid.UUID
    ) -> int:
        repository = LoyaltyRepository(session)
        changed = 0
        while True:
            rows = await repository.derived_tiers(
                workspace_id, program_id=program_id, only_changed=True, limit=500
            )
            if not rows:
                return changed
            accounts = await repository.lock_accounts(workspace_id, [row.id for row in rows])
            for account in accounts:
                if await self._refresh_tier(session, workspace_id, account):
                    changed += 1
            await session.flush()

    def program_schema(
        self, program: LoyaltyProgram, tiers: Sequence[LoyaltyTier]
    ) -> schemas.Program:
        return schemas.Program(
            id=program.id,
            name=program.name,
            point_name=program.point_name,
            earn_rates=_rates_out(program),
            category_multipliers=dict(program.category_multipliers),
            first_purchase_bonus=program.first_purchase_bonus,
            birthday_multiplier=program.birthday_multiplier,
            pending_days=program.pending_days,
            expiry_months=program.expiry_months,
            clawback_policy=program.clawback_policy,  # type: ignore[arg-type]
            tier_basis=program.tier_basis,  # type: ignore[arg-type]
            tier_currency=program.tier_currency,
            tier_window_months=program.tier_window_months,
            active=program.active,
            tiers=[self.tier_schema(t) for t in sorted(tiers, key=lambda t: t.threshold)],
            created_at=program.created_at,
            updated_at=program.updated_at,
            version=program.version,
        )

    @staticmethod
    def tier_schema(tier: LoyaltyTier) -> schemas.Tier:
        return schemas.Tier.model_validate(tier)

    # == accounts ==============================================================================
    async def enrol(
        self, session: AsyncSession, auth: AuthContext, data: schemas.AccountCreate
    ) -> LoyaltyAccount:
        """Enrol a contact in a programme.

        Raises:
            ProgramNotFound / ContactNotFound / ContactMerged: as named (404).
            ProgramInactive: the programme no longer enrols.
            AlreadyEnrolled: the contact has an account in the programme (409).
        """
        repository = LoyaltyRepository(session)
        program = await repository.program(auth.workspace_id, data.program_id)
        if program is None:
            raise ProgramNotFound(
                errors=[FieldError(field="program_id", message="no such programme")]
            )
        if not program.active:
            raise ProgramInactive("An inactive programme enrols nobody")
        await contact_service.require_live(session, auth, data.contact_id)
        # Two concurrent enrolments of one contact: the second waits here and sees the first.
        await lock_keys(session, auth.workspace_id,
                        [f"loyalty-member:{program.id}:{data.contact_id}"])  # fmt: skip
        existing = await repository.member(auth.workspace_id, program.id, data.contact_id)
        if existing is not None:
            raise AlreadyEnrolled(existing.id)
        account = LoyaltyAccount(
            workspace_id=auth.workspace_id,
            id=uuid7(),
            program_id=program.id,
            contact_id=data.contact_id,
            tier_id=None,
            allow_negative=program.clawback_policy == "allow_negative",
            available=0,
            pending=0,
            debt=0,
            balance=0,
            lifetime_earned=0,
            redeemed=0,
            expired=0,
            version=1,
        )
        session.add(account)
        await session.flush()
        await session.refresh(account, ["created_at", "updated_at"])
        # A programme with a tier at threshold 0 puts every new member in it.
        await self._refresh_tier(session, auth.workspace_id, account, announce=False)
        await outbox.record(
            session,
            workspace_id=auth.workspace_id,
            type="loyalty.enrolled",
            aggregate_type="loyalty_account",
            aggregate_id=account.id,
            data={"account_id": str(account.id), "program_id": str(program.id),
                  "contact_id": str(account.contact_id)},
        )  # fmt: skip
        return account

    async def get_account(
        self, session: AsyncSession, auth: AuthContext, account_id: uuid.UUID
    ) -> LoyaltyAccount:
        """Raises: AccountNotFound."""
        account = await LoyaltyRepository(session).account(auth.workspace_id, account_id)
        if account is None:
            raise AccountNotFound()
        return account

    async def find_accounts(
        self,
        session: AsyncSession,
        auth: AuthContext,
        *,
        program_id: uuid.UUID | None,
        contact_id: uuid.UUID | None,
        limit: int,
        cursor: str | None,
    ) -> tuple[list[LoyaltyAccount], str | None]:
        keyset = _keyset(LoyaltyAccount.id, limit, cursor, descending=False)
        rows = await LoyaltyRepository(session).find_accounts(
            auth.workspace_id, keyset, program_id=program_id, contact_id=contact_id
        )
        return _page(keyset, rows)

    async def accounts_for_contacts(
        self, session: AsyncSession, auth: AuthContext, contact_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, list[schemas.Account]]:
        """Each contact's accounts as shown by the API, in a fixed number of statements."""
        grouped: dict[uuid.UUID, list[schemas.Account]] = {cid: [] for cid in contact_ids}
        if not contact_ids:
            return grouped
        rows = await LoyaltyRepository(session).accounts_of_contacts(
            auth.workspace_id, list(dict.fromkeys(contact_ids))
        )
        for account in await self.account_schemas(session, auth, rows):
            grouped.setdefault(account.contact_id, []).append(account)
        return grouped

    async def account_schemas(
        self, session: AsyncSession, auth: AuthContext, accounts: Sequence[LoyaltyAccount]
    ) -> list[schemas.Account]:
        """Accounts with tier, progress and expiring points: four statements for any number."""
        if not accounts:
            return []
        views: dict[uuid.UUID, tuple[int, schemas.Account]] = session.info.get(_VIEWS, {})
        if all(a.id in views and views[a.id][0] == a.version for a in accounts):
            return [views[a.id][1] for a in accounts]
        repository = LoyaltyRepository(session)
        ids = [account.id for account in accounts]
        program_ids = list({account.program_id for account in accounts})
        # After a write, its programme is in the session and its qualifying total was just
        # computed (for the same version of the account): neither is read again.
        written: dict[uuid.UUID, LoyaltyProgram] = session.info.get(_PROGRAMS, {})
        programs = {
            program_id: written[program_id] for program_id in program_ids if program_id in written
        }
        missing = [program_id for program_id in program_ids if program_id not in programs]
        if missing:
            programs.update(
                (p.id, p) for p in await repository.programs(auth.workspace_id, missing)
            )
        tiers = await repository.tiers(auth.workspace_id, program_ids)
        # No lot holding points ever expires on an account that has nothing due, ever.
        expiring = await repository.expiring(
            auth.workspace_id, [account.id for account in accounts if account.next_due_at]
        )
        computed: dict[uuid.UUID, tuple[int, int]] = session.info.get(_QUALIFYING, {})
        qualifying = {
            account.id: computed[account.id][1]
            for account in accounts
            if account.id in computed and computed[account.id][0] == account.version
        }
        unknown = [account_id for account_id in ids if account_id not in qualifying]
        if unknown:
            derived = await repository.derived_tiers(auth.workspace_id, account_ids=unknown)
            qualifying.update((row.id, row.qualifying) for row in derived)
        result = []
        for account in accounts:
            program = programs[account.program_id]
            ladder = [tier for tier in tiers if tier.program_id == account.program_id]
            current = next((tier for tier in ladder if tier.id == account.tier_id), None)
            value = int(qualifying.get(account.id, 0))
            upcoming = next((tier for tier in ladder if tier.threshold > value), None)
            soon = expiring.get(account.id, (0, 0, 0))
            result.append(
                schemas.Account(
                    id=account.id,
                    program_id=account.program_id,
                    contact_id=account.contact_id,
                    available=account.available,
                    pending=account.pending,
                    balance=account.balance,
                    lifetime_earned=account.lifetime_earned,
                    redeemed=account.redeemed,
                    expired=account.expired,
                    tier=self._tier_ref(current),
                    progress=schemas.Progress(
                        basis=program.tier_basis,  # type: ignore[arg-type]
                        window_months=program.tier_window_months,
                        qualifying=value,
                        next_tier=self._tier_ref(upcoming),
                        needed=upcoming.threshold - value if upcoming is not None else None,
                    ),
                    expiring=schemas.Expiring(days_30=soon[0], days_60=soon[1], days_90=soon[2]),
                    created_at=account.created_at,
                    updated_at=account.updated_at,
                    version=account.version,
                )
            )
        return result

    @staticmethod
    def _tier_ref(tier: LoyaltyTier | None) -> schemas.TierRef | None:
        if tier is None:
            return None
        return schemas.TierRef(id=tier.id, name=tier.name, threshold=tier.threshold)

    async def account_schema(
        self, session: AsyncSession, auth: AuthContext, account: LoyaltyAccount
    ) -> schemas.Account:
        return (await self.account_schemas(session, auth, [account]))[0]

    async def entries(
        self,
        session: AsyncSession,
        auth: AuthContext,
        account_id: uuid.UUID,
        *,
        limit: int,
        cursor: str | None,
    ) -> tuple[list[LoyaltyEntry], str | None]:
        """The account's ledger, newest first. Raises: AccountNotFound, InvalidCursor."""
        await self.get_account(session, auth, account_id)
        keyset = _keyset(LoyaltyEntry.id, limit, cursor, descending=True)
        rows = await LoyaltyRepository(session).find_entries(auth.workspace_id, account_id, keyset)
        return _page(keyset, rows)

    async def get_entry(
        self, session: AsyncSession, auth: AuthContext, account_id: uuid.UUID, entry_id: uuid.UUID
    ) -> LoyaltyEntry:
        """Raises: EntryNotFound (also for another account's entry)."""
        entry = await LoyaltyRepository(session).entry(auth.workspace_id, entry_id)
        if entry is None or entry.account_id != account_id:
            raise EntryNotFound()
        return entry

    async def recent_entries(
        self,
        session: AsyncSession,
        auth: AuthContext,
        account_ids: Sequence[uuid.UUID],
        limit: int,
    ) -> dict[uuid.UUID, list[LoyaltyEntry]]:
        grouped: dict[uuid.UUID, list[LoyaltyEntry]] = {aid: [] for aid in account_ids}
        if account_ids:
            for row in await LoyaltyRepository(session).recent_entries(
                auth.workspace_id, list(dict.fromkeys(account_ids)), limit
            ):
                grouped.setdefault(row.account_id, []).append(row)
        return grouped

    async def entries_by_id(
        self, session: AsyncSession, auth: AuthContext, entry_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, LoyaltyEntry]:
        rows = await LoyaltyRepository(session).entries_by_id(auth.workspace_id, entry_ids)
        return {row.id: row for row in rows}

    @staticmethod
    def entry_schema(entry: LoyaltyEntry) -> schemas.Entry:
        return schemas.Entry.model_validate(entry)

    # == the ledger's writes ====================================================================
    async def _locked(
        self, session: AsyncSession, auth: AuthContext, account_id: uuid.UUID
    ) -> tuple[LoyaltyAccount, LoyaltyProgram, Ledger]:
        repository = LoyaltyRepository(session)
        # What does not change under the lock is read before taking it: on a busy account
        # every statement run while holding the row is a statement every other writer waits.
        program, now = await repository.program_of_account(auth.workspace_id, account_id)
        if program is None:
            raise AccountNotFound()
        locked = await repository.lock_accounts(auth.workspace_id, [account_id])
        if not locked:
            raise AccountNotFound()
        account = locked[0]
        session.info.setdefault(_PROGRAMS, {})[program.id] = program
        ledger = Ledger(session, auth.workspace_id, now, api_key_id=auth.api_key_id)
        await self._settle(session, ledger, account)
        return account, program, ledger

    @staticmethod
    def _plain_entry(
        auth: AuthContext, account_id: uuid.UUID, data: schemas.EntryCreate
    ) -> PlainWrite:
        return PlainWrite(
            workspace_id=auth.workspace_id,
            account_id=account_id,
            kind=data.kind,
            points=data.points,
            reason=data.reason,
            api_key_id=auth.api_key_id,
            details=dict(_MANUAL),
        )

    @staticmethod
    def _plain_redeem(
        auth: AuthContext, account_id: uuid.UUID, points: int, reason: str | None
    ) -> PlainWrite:
        return PlainWrite(
            workspace_id=auth.workspace_id,
            account_id=account_id,
            kind="redeem",
            points=-points,
            reason=reason,
            api_key_id=auth.api_key_id,
            details={},
            redemption_id=uuid7(),
        )

    async def _write_at_once(
        self, session: AsyncSession, write: PlainWrite
    ) -> tuple[LoyaltyEntry, LoyaltyAccount] | None:
        """Write ``write.points`` (positive: a new lot; negative: spent) in one statement. None
        when the account has a lot due or a debt: the caller, holding the account's row from
        now on, takes the general path.

        Raises:
            AccountNotFound: no such account.
            InsufficientPoints: fewer available points than spent; nothing is written.
        """
        # The function reads rows this session may still have changes to.
        await session.flush()
        row = await LoyaltyRepository(session).write(write)
        written = self._as_entry(write, row)
        if written is None:
            return None
        values, view = written
        session.info.setdefault(_VIEWS, {})[write.account_id] = (row.version, view)
        entry = LoyaltyEntry(**values)
        return entry, self._as_written(session, write.workspace_id, write.account_id, row)

    async def _write_alone(
        self, pool: DirectPool, write: PlainWrite
    ) -> tuple[schemas.Entry, schemas.Account] | None:
        """``_write_at_once`` as a transaction of its own on ``pool`` (see
        ``app.loyalty.repository.write_alone``): the account's row is held for that statement
        and its commit only. None when the account needs the general path (nothing written).

        Raises:
            AccountNotFound: no such account.
            InsufficientPoints: fewer available points than spent; nothing is written.
        """
        written = self._as_entry(write, await write_alone(pool, write))
        if written is None:
            return None
        # Straight to the response's schema: no ORM object to build (that cost more than
        # everything else the request does in Python).
        values, view = written
        return schemas.Entry.model_validate(values), view

    @staticmethod
    def _as_entry(write: PlainWrite, row: Any) -> tuple[dict[str, Any], schemas.Account] | None:
        """The entry a one-statement write made (its columns' values) and the account as it
        left it, from the function's row; None when it wrote nothing (a lot due or a debt)."""
        if row is None:
            raise AccountNotFound()
        if row.outcome == "insufficient":
            raise InsufficientPoints(available=row.available, needed=-write.points)
        if row.outcome != "written":
            return None
        now = row.recorded_at
        points = write.points
        entry = {
            "workspace_id": write.workspace_id,
            "id": write.entry_id,
            "account_id": write.account_id,
            "program_id": row.program_id,
            "seq": row.version,
            "kind": write.kind,
            "amount": points,
            "available_change": points,
            "pending_change": 0,
            "balance_after": row.balance,
            "available_after": row.available,
            "pending_after": row.pending,
            "reference": None,
            "reverses_entry_id": None,
            "clawback_of_entry_id": None,
            "redemption_id": write.redemption_id,
            "reason": write.reason,
            "qualifying_points": points if write.kind == "earn" else 0,
            "qualifying_spend_minor": 0,
            "qualifies_at": now,
            "effective_at": now,
            "recorded_at": now,
            "api_key_id": write.api_key_id,
            "details": row.details,
        }
        upcoming = (
            schemas.TierRef(
                id=row.next_tier_id, name=row.next_tier_name, threshold=row.next_tier_threshold
            )
            if row.next_tier_id is not None
            else None
        )
        view = schemas.Account(
            id=write.account_id,
            program_id=row.program_id,
            contact_id=row.contact_id,
            available=row.available,
            pending=row.pending,
            balance=row.balance,
            lifetime_earned=row.lifetime_earned,
            redeemed=row.redeemed,
            expired=row.expired,
            tier=schemas.TierRef(id=row.tier_id, name=row.tier_name, threshold=row.tier_threshold)
            if row.tier_id is not None
            else None,
            progress=schemas.Progress(
                basis=row.tier_basis,
                window_months=row.tier_window_months,
                qualifying=row.qualifying,
                next_tier=upcoming,
                needed=row.next_tier_threshold - row.qualifying if upcoming is not None else None,
            ),
            expiring=schemas.Expiring(
                days_30=row.expiring_30, days_60=row.expiring_60, days_90=row.expiring_90
            ),
            created_at=row.created_at,
            updated_at=row.updated_at,
            version=row.version,
        )
        return entry, view

    @staticmethod
    def _as_written(
        session: AsyncSession, workspace_id: uuid.UUID, account_id: uuid.UUID, row: Any
    ) -> LoyaltyAccount:
        """The account as the write left it; the session's own copy, if it has one, is
        brought up to date (as loaded, so nothing is written back)."""
        values = {
            name: getattr(row, name)
            for name in ("program_id", "contact_id", "tier_id", "allow_negative", "available",
                         "pending", "debt", "balance", "lifetime_earned", "redeemed", "expired",
                         "version", "next_due_at", "created_at", "updated_at")
        }  # fmt: skip
        known = session.identity_map.get(identity_key(LoyaltyAccount, (workspace_id, account_id)))
        if isinstance(known, LoyaltyAccount):
            for name, value in values.items():
                set_committed_value(known, name, value)
            return known
        return LoyaltyAccount(workspace_id=workspace_id, id=account_id, **values)

    async def _program_of(
        self, session: AsyncSession, auth: AuthContext, account_id: uuid.UUID
    ) -> uuid.UUID:
        account = await self.get_account(session, auth, account_id)
        return account.program_id

    async def post_entry_alone(
        self, pool: DirectPool, auth: AuthContext, account_id: uuid.UUID, data: schemas.EntryCreate
    ) -> schemas.EntryResult | None:
        """``post_entry`` for an entry without ``reference``, as one statement committed on
        ``pool`` on its own (see ``_write_alone``): for a request with nothing else to commit
        with it (no Idempotency-Key). None when it must take ``post_entry`` (nothing written).

        Raises:
            AccountNotFound: no such account.
            InsufficientPoints: a negative adjust beyond the available points.
        """
        if data.reference is not None:
            return None
        written = await self._write_alone(pool, self._plain_entry(auth, account_id, data))
        if written is None:
            return None
        entry, view = written
        return schemas.EntryResult(entry=entry, account=view)

    async def post_entry(
        self,
        session: AsyncSession,
        auth: AuthContext,
        account_id: uuid.UUID,
        data: schemas.EntryCreate,
    ) -> tuple[LoyaltyEntry, LoyaltyAccount, bool]:
        """A manual earn (available at once, expiring per the programme) or an adjust
        (positive: a new lot; negative: spends available points). ``(entry, account, created)``;
        a known ``reference`` returns its entry with ``created`` false.

        Raises:
            AccountNotFound: no such account.
            InsufficientPoints: a negative adjust beyond the available points.
            ReferenceReused: the reference names a different entry.
        """
        if data.reference is None:
            written = await self._write_at_once(session, self._plain_entry(auth, account_id, data))
            if written is not None:
                return written[0], written[1], True
        if data.reference is not None:
            program_id = await self._program_of(session, auth, account_id)
            await lock_keys(session, auth.workspace_id,
                            [f"loyalty-ref:{program_id}:{data.reference}"])  # fmt: skip
        account, program, ledger = await self._locked(session, auth, account_id)
        if data.reference is not None:
            known = await ledger.repository.entry_by_reference(
                auth.workspace_id, program.id, data.reference
            )
            if known is not None:
                if (known.account_id, known.kind, known.amount) != (
                    account.id, data.kind, data.points
                ):  # fmt: skip
                    raise ReferenceReused(known.id)
                return known, account, False
        details = dict(_MANUAL)
        if data.points > 0:
            entry = await ledger.earn(
                account,
                program,
                data.points,
                kind=data.kind,
                pending=False,
                reference=data.reference,
                reason=data.reason,
                qualifying=data.kind == "earn",
                details=details,
            )
        else:
            entry = await ledger.consume(
                account,
                -data.points,
                kind="adjust",
                reference=data.reference,
                reason=data.reason,
                details=details,
            )
        await self._after_write(session, auth.workspace_id, account, [entry])
        return entry, account, True

    async def redeem_alone(
        self,
        pool: DirectPool,
        auth: AuthContext,
        account_id: uuid.UUID,
        data: schemas.RedemptionCreate,
    ) -> schemas.RedemptionResult | None:
        """``redeem`` for points without ``reference`` (no reward), as one statement
        committed on ``pool`` on its own (see ``_write_alone``): for a request with nothing
        else to commit with it. None when it must take ``redeem`` (nothing written).

        Raises:
            AccountNotFound: no such account.
            InsufficientPoints: not enough available points.
        """
        if data.reference is not None or data.points is None:
            return None
        write = self._plain_redeem(auth, account_id, data.points, data.reason)
        written = await self._write_alone(pool, write)
        if written is None:
            return None
        entry, view = written
        return schemas.RedemptionResult(
            **self._redemption_values(write, entry.recorded_at), account=view
        )

    @staticmethod
    def _redemption_values(write: PlainWrite, recorded_at: datetime) -> dict[str, Any]:
        """The redemption a one-statement write recorded with its entry."""
        return {
            "workspace_id": write.workspace_id,
            "id": write.redemption_id,
            "account_id": write.account_id,
            "reward_id": None,
            "points": -write.points,
            "status": "completed",
            "entry_id": write.entry_id,
            "reversal_entry_id": None,
            "reference": None,
            "reason": write.reason,
            "created_at": recorded_at,
            "reversed_at": None,
        }

    async def redeem(
        self,
        session: AsyncSession,
        auth: AuthContext,
        account_id: uuid.UUID,
        data: schemas.RedemptionCreate,
    ) -> tuple[LoyaltyRedemption, LoyaltyAccount, bool]:
        """Spend points, or buy a reward (stock and points in one transaction).

        Raises:
            AccountNotFound / RewardNotFound: as named.
            InsufficientPoints: not enough available points (409 insufficient_points).
            OutOfStock: the reward has no stock left (409 out_of_stock).
            RewardUnavailable: inactive, or outside its validity window (409).
            TierTooLow: the member's tier is below the reward's minimum (409).
            ReferenceReused: the reference names a different redemption.
        """
        if data.reference is None and data.points is not None:
            write = self._plain_redeem(auth, account_id, data.points, data.reason)
            written = await self._write_at_once(session, write)
            if written is not None:
                entry, account = written
                made = LoyaltyRedemption(**self._redemption_values(write, entry.recorded_at))
                return made, account, True
        if data.reference is not None:
            program_id = await self._program_of(session, auth, account_id)
            await lock_keys(session, auth.workspace_id,
                            [f"loyalty-ref:{program_id}:{data.reference}"])  # fmt: skip
        account, program, ledger = await self._locked(session, auth, account_id)
        repository = ledger.repository
        if data.reference is not None:
            known = await repository.entry_by_reference(
                auth.workspace_id, program.id, data.reference
            )
            if known is not None:
                redemption = (
                    await repository.redemption(auth.workspace_id, known.redemption_id)
                    if known.redemption_id is not None
                    else None
                )
                same = (
                    redemption is not None
                    and redemption.account_id == account.id
                    and redemption.reward_id == data.reward_id
                    and (data.points is None or redemption.points == data.points)
                )
                if redemption is None or not same:
                    raise ReferenceReused(known.id)
                return redemption, account, False
        reward = None
        if data.reward_id is not None:
            reward = await repository.reward(auth.workspace_id, data.reward_id)
            if reward is None or reward.program_id != program.id:
                raise RewardNotFound(
                    errors=[
                        FieldError(field="reward_id", message="no such reward in the programme")
                    ]
                )
            await self._check_reward(session, auth, account, reward, ledger)
            points = reward.cost_points
        else:
            assert data.points is not None  # noqa: S101 - the schema requires one of the two
            points = data.points
        if account.available < points:
            raise InsufficientPoints(available=account.available, needed=points)
        if (
            reward is not None
            and reward.stock is not None
            and not await repository.take_stock(auth.workspace_id, reward.id)
        ):
            raise OutOfStock(f"{reward.name!r} is out of stock")
        redemption_id = uuid7()
        entry = await ledger.consume(
            account,
            points,
            kind="redeem",
            reference=data.reference,
            reason=data.reason,
            redemption_id=redemption_id,
            details={"reward_id": str(reward.id)} if reward is not None else {},
        )
        redemption = LoyaltyRedemption(
            workspace_id=auth.workspace_id,
            id=redemption_id,
            account_id=account.id,
            reward_id=reward.id if reward is not None else None,
            points=points,
            status="completed",
            entry_id=entry.id,
            reference=data.reference,
            reason=data.reason,
            created_at=ledger.now,
        )
        session.add(redemption)
        await self._after_write(session, auth.workspace_id, account, [entry])
        return redemption, account, True

    async def _check_reward(
        self,
        session: AsyncSession,
        auth: AuthContext,
        account: LoyaltyAccount,
        reward: LoyaltyReward,
        ledger: Ledger,
    ) -> None:
        now = ledger.now
        if not reward.active:
            raise RewardUnavailable(f"{reward.name!r} is not offered any more")
        if (reward.valid_from is not None and now < reward.valid_from) or (
            reward.valid_to is not None and now >= reward.valid_to
        ):
            raise RewardUnavailable(f"{reward.name!r} is not valid at this time")
        if reward.min_tier_id is not None:
            repository = ledger.repository
            needed = await repository.tier(auth.workspace_id, reward.min_tier_id)
            held = (
                await repository.tier(auth.workspace_id, account.tier_id)
                if account.tier_id is not None
                else None
            )
            if needed is not None and (held is None or held.threshold < needed.threshold):
                raise TierTooLow(f"{reward.name!r} needs the {needed.name} tier or higher")

    async def reverse_redemption(
        self,
        session: AsyncSession,
        auth: AuthContext,
        account_id: uuid.UUID,
        redemption_id: uuid.UUID,
        data: schemas.RedemptionReverse,
    ) -> tuple[LoyaltyRedemption, LoyaltyAccount]:
        """Give back exactly the points a redemption took, to the lots it took them from,
        with their original expiry (points already past it expire at once); a reward's unit
        goes back into stock.

        Raises:
            AccountNotFound / RedemptionNotFound: as named.
            AlreadyReversed: it was reversed before (409).
        """
        account, _, ledger = await self._locked(session, auth, account_id)
        repository = ledger.repository
        redemption = await repository.redemption(auth.workspace_id, redemption_id)
        if redemption is None or redemption.account_id != account.id:
            raise RedemptionNotFound()
        if redemption.status == "reversed":
            raise AlreadyReversed()
        original = await repository.entry(auth.workspace_id, redemption.entry_id)
        assert original is not None  # noqa: S101 - a foreign key guarantees it
        entry = await ledger.restore(
            account, original, reason=data.reason, redemption_id=redemption.id
        )
        redemption.status = "reversed"
        redemption.reversal_entry_id = entry.id
        redemption.reversed_at = ledger.now
        if redemption.reward_id is not None:
            await repository.return_stock(auth.workspace_id, redemption.reward_id)
        await session.flush()
        written = [entry]
        settled = await ledger.settle(account)
        written += settled.entries
        await self._after_write(session, auth.workspace_id, account, written)
        return redemption, account

    async def get_redemption(
        self,
        session: AsyncSession,
        auth: AuthContext,
        account_id: uuid.UUID,
        redemption_id: uuid.UUID,
    ) -> LoyaltyRedemption:
        redemption = await LoyaltyRepository(session).redemption(auth.workspace_id, redemption_id)
        if redemption is None or redemption.account_id != account_id:
            raise RedemptionNotFound()
        return redemption

    async def find_redemptions(
        self,
        session: AsyncSession,
        auth: AuthContext,
        account_id: uuid.UUID,
        *,
        limit: int,
        cursor: str | None,
    ) -> tuple[list[LoyaltyRedemption], str | None]:
        await self.get_account(session, auth, account_id)
        keyset = _keyset(LoyaltyRedemption.id, limit, cursor, descending=True)
        rows = await LoyaltyRepository(session).find_redemptions(
            auth.workspace_id, account_id, keyset
        )
        return _page(keyset, rows)

    @staticmethod
    def redemption_schema(redemption: LoyaltyRedemption) -> schemas.Redemption:
        return schemas.Redemption.model_validate(redemption)

    # == after every write ======================================================================
    async def _settle(
        self, session: AsyncSession, ledger: Ledger, account: LoyaltyAccount, *, force: bool = False
    ) -> bool:
        settled = await ledger.settle(account, force=force)
        if settled.changed:
            await self._record_entries(session, ledger.workspace_id, account, settled.entries)
        return settled.changed

    async def _after_write(
        self,
        session: AsyncSession,
        workspace_id: uuid.UUID,
        account: LoyaltyAccount,
        entries: Sequence[LoyaltyEntry],
    ) -> None:
        # The ledger sets updated_at to the transaction's time with each entry; a later write
        # of the row in the same flush cycle lets the database set it (onupdate) instead.
        await self._record_entries(session, workspace_id, account, entries)
        await self._refresh_tier(session, workspace_id, account)
        if "updated_at" in inspect(account).expired_attributes:
            await session.refresh(account, ["updated_at"])

    async def _record_entries(
        self,
        session: AsyncSession,
        workspace_id: uuid.UUID,
        account: LoyaltyAccount,
        entries: Sequence[LoyaltyEntry],
    ) -> None:
        for entry in entries:
            kind = entry.kind
            if kind == "redeem":
                type_ = "loyalty.redeemed"
            elif kind == "earn":
                type_ = "loyalty.earned"
            elif kind == "adjust":
                type_ = "loyalty.adjusted"
            elif kind == "expire":
                type_ = "loyalty.expired"
            elif kind == "release":
                type_ = "loyalty.released"
            else:
                type_ = "loyalty.reversed"
            await outbox.record(
                session,
                workspace_id=workspace_id,
                type=type_,
                aggregate_type="loyalty_account",
                aggregate_id=account.id,
                data={**self.entry_schema(entry).model_dump(mode="json"),
                      "contact_id": str(account.contact_id)},
            )  # fmt: skip

    async def _refresh_tier(
        self,
        session: AsyncSession,
        workspace_id: uuid.UUID,
        account: LoyaltyAccount,
        *,
        announce: bool = True,
    ) -> bool:
        """Set the account's tier to the one its ledger earns now; True when it changed."""
        await session.flush()
        rows = await LoyaltyRepository(session).derived_tiers(
            workspace_id, account_ids=[account.id]
        )
        derived = rows[0].derived_tier_id if rows else None
        session.info.setdefault(_QUALIFYING, {})[account.id] = (
            account.version,
            int(rows[0].qualifying) if rows else 0,
        )
        if derived == account.tier_id:
            return False
        before, account.tier_id = account.tier_id, derived
        await session.flush()
        await session.refresh(account, ["updated_at"])
        if announce or derived is not None:
            await outbox.record(
                session,
                workspace_id=workspace_id,
                type="loyalty.tier_changed",
                aggregate_type="loyalty_account",
                aggregate_id=account.id,
                data={
                    "account_id": str(account.id),
                    "contact_id": str(account.contact_id),
                    "program_id": str(account.program_id),
                    "from_tier_id": str(before) if before else None,
                    "to_tier_id": str(derived) if derived else None,
                    "qualifying": int(rows[0].qualifying) if rows else 0,
                },
            )
        return True

    # == purchases ==============================================================================
    async def on_purchase_created(
        self, session: AsyncSession, auth: AuthContext, purchase: Purchase
    ) -> None:
        """Earn in every programme the buyer is enrolled in that has a rate for the purchase's
        currency; the purchase id is the entry's permanent reference (``purchase:<id>``)."""
        if purchase.status == "cancelled":
            return
        repository = LoyaltyRepository(session)
        members = await repository.accounts_of_contacts(auth.workspace_id, [purchase.contact_id])
        if not members:
            return
        reference = f"purchase:{purchase.id}"
        accounts = await repository.lock_accounts(auth.workspace_id, [m.id for m in members])
        programs = {p.id: p for p in await repository.programs(
            auth.workspace_id, [a.program_id for a in accounts])}  # fmt: skip
        tiers = {t.id: t for t in await repository.tiers(auth.workspace_id, list(programs))}
        ledger = await Ledger.start(session, auth.workspace_id, api_key_id=auth.api_key_id)
        birthday_month: int | None = None
        if any(p.birthday_multiplier > 100 for p in programs.values()):
            contact = (await contact_service.get_many(session, auth, [purchase.contact_id])).get(
                purchase.contact_id
            )
            birthday_month = contact.birthday.month if contact and contact.birthday else None
        lines = [
            PurchaseLine(
                amount_minor=item.quantity * item.unit_price_minor - item.discount_minor,
                category=item.category,
            )
            for item in purchase.items
        ]
        for account in accounts:
            program = programs[account.program_id]
            rate = _rates(program).get(purchase.currency)
            if not program.active or rate is None:
                continue
            if await repository.entry_by_reference(auth.workspace_id, program.id, reference):
                continue
            await self._settle(session, ledger, account)
            tier = tiers.get(account.tier_id) if account.tier_id is not None else None
            first = not await repository.has_purchase_earn(auth.workspace_id, account.id)
            points, breakdown = purchase_points(
                spend_minor=rate.spend_minor,
                points_per_spend=rate.points,
                min_spend_minor=rate.min_spend_minor,
                total_minor=purchase.total_minor,
                lines=lines,
                category_multipliers=program.category_multipliers,
                tier_multiplier=tier.earn_multiplier if tier is not None else 100,
                birthday_multiplier=program.birthday_multiplier
                if birthday_month is not None and birthday_month == purchase.occurred_at.month
                else 100,
                first_purchase_bonus=program.first_purchase_bonus if first else 0,
            )
            if points <= 0:
                continue
            spend = (
                purchase.total_minor
                if program.tier_basis == "spend" and program.tier_currency == purchase.currency
                else 0
            )
            entry = await ledger.earn(
                account,
                program,
                points,
                pending=True,
                reference=reference,
                qualifying_spend_minor=spend,
                effective_at=purchase.occurred_at,
                details={"source": "purchase", "purchase_id": str(purchase.id),
                         "currency": purchase.currency, **breakdown},
            )  # fmt: skip
            settled = await ledger.settle(account)
            await self._after_write(session, auth.workspace_id, account, [entry, *settled.entries])

    async def on_purchase_refunded(
        self, session: AsyncSession, auth: AuthContext, purchase: Purchase, refund: PurchaseRefund
    ) -> None:
        """Claw back in proportion: after refunds, a purchase keeps
        floor(earned x net paid / total) points; each refund takes back what exceeds that."""
        await self._claw_back(
            session, auth, purchase, reference=f"refund:{refund.id}",
            reason=refund.reason or "refund", refund_minor=refund.amount_minor,
        )  # fmt: skip

    async def on_purchase_voided(
        self, session: AsyncSession, auth: AuthContext, purchase: Purchase, how: str
    ) -> None:
        """A cancelled or deleted purchase gives back all the points it earned."""
        await self._claw_back(
            session, auth, purchase, reference=f"{how}:{purchase.id}", reason=f"purchase {how}",
            refund_minor=purchase.total_minor - purchase.refunded_minor, void=True,
        )  # fmt: skip

    async def _claw_back(
        self,
        session: AsyncSession,
        auth: AuthContext,
        purchase: Purchase,
        *,
        reference: str,
        reason: str,
        refund_minor: int,
        void: bool = False,
    ) -> None:
        repository = LoyaltyRepository(session)
        earns = await repository.entries_by_reference(auth.workspace_id, f"purchase:{purchase.id}")
        if not earns:
            return
        accounts = {a.id: a for a in await repository.lock_accounts(
            auth.workspace_id, [e.account_id for e in earns])}  # fmt: skip
        programs = {p.id: p for p in await repository.programs(
            auth.workspace_id, [e.program_id for e in earns])}  # fmt: skip
        ledger = await Ledger.start(session, auth.workspace_id, api_key_id=auth.api_key_id)
        net = 0 if void else purchase.total_minor - purchase.refunded_minor
        for earn in earns:
            account = accounts[earn.account_id]
            if await repository.entry_by_reference(auth.workspace_id, earn.program_id, reference):
                continue
            await self._settle(session, ledger, account)
            earned = earn.amount
            kept = earned * net // purchase.total_minor if purchase.total_minor else 0
            claw = earned - kept - await repository.clawed_back(auth.workspace_id, earn.id)
            if claw <= 0:
                continue
            program = programs[earn.program_id]
            spend = refund_minor if earn.qualifying_spend_minor else 0
            entry = await ledger.clawback(
                account, earn, claw, reference=reference, reason=reason, spend_minor=spend,
                details={"purchase_id": str(purchase.id), "policy": program.clawback_policy},
            )  # fmt: skip
            await self._after_write(session, auth.workspace_id, account, [entry])

    # == rewards ================================================================================
    async def create_reward(
        self, session: AsyncSession, auth: AuthContext, data: schemas.RewardCreate
    ) -> LoyaltyReward:
        """Raises: ProgramNotFound, TierNotFound (the minimum tier is not the programme's)."""
        repository = LoyaltyRepository(session)
        if await repository.program(auth.workspace_id, data.program_id) is None:
            raise ProgramNotFound(
                errors=[FieldError(field="program_id", message="no such programme")]
            )
        await self._check_min_tier(repository, auth, data.program_id, data.min_tier_id)
        reward = LoyaltyReward(
            workspace_id=auth.workspace_id,
            id=uuid7(),
            program_id=data.program_id,
            name=data.name,
            description=data.description,
            cost_points=data.cost_points,
            stock=data.stock,
            valid_from=data.valid_from,
            valid_to=data.valid_to,
            min_tier_id=data.min_tier_id,
            active=data.active,
            version=1,
        )
        session.add(reward)
        await session.flush()
        await session.refresh(reward, ["created_at", "updated_at"])
        return reward

    @staticmethod
    async def _check_min_tier(
        repository: LoyaltyRepository,
        auth: AuthContext,
        program_id: uuid.UUID,
        tier_id: uuid.UUID | None,
    ) -> None:
        if tier_id is None:
            return
        tier = await repository.tier(auth.workspace_id, tier_id)
        if tier is None or tier.program_id != program_id:
            raise TierNotFound(
                errors=[FieldError(field="min_tier_id", message="no such tier in the programme")]
            )

    async def get_reward(
        self, session: AsyncSession, auth: AuthContext, reward_id: uuid.UUID
    ) -> LoyaltyReward:
        reward = await LoyaltyRepository(session).reward(auth.workspace_id, reward_id)
        if reward is None:
            raise RewardNotFound()
        return reward

    async def find_rewards(
        self,
        session: AsyncSession,
        auth: AuthContext,
        *,
        program_id: uuid.UUID | None,
        limit: int,
        cursor: str | None,
    ) -> tuple[list[LoyaltyReward], str | None]:
        keyset = _keyset(LoyaltyReward.id, limit, cursor, descending=False)
        rows = await LoyaltyRepository(session).find_rewards(
            auth.workspace_id, keyset, program_id=program_id
        )
        return _page(keyset, rows)

    async def update_reward(
        self,
        session: AsyncSession,
        auth: AuthContext,
        reward_id: uuid.UUID,
        patch: schemas.RewardUpdate,
        *,
        if_match: str | None = None,
    ) -> LoyaltyReward:
        """Raises: RewardNotFound, PreconditionFailed, TierNotFound, ValidationFailed."""
        repository = LoyaltyRepository(session)
        reward = await repository.reward(auth.workspace_id, reward_id, for_update=True)
        if reward is None:
            raise RewardNotFound()
        check_if_match(if_match, reward.version)
        changes = patch.changes()
        if "min_tier_id" in changes:
            await self._check_min_tier(repository, auth, reward.program_id, patch.min_tier_id)
        for name in changes:
            setattr(reward, name, getattr(patch, name))
        if reward.valid_from and reward.valid_to and reward.valid_from >= reward.valid_to:
            raise ValidationFailed(
                "valid_from must be before valid_to",
                errors=[FieldError(field="valid_to", message="must be after valid_from")],
            )
        if session.is_modified(reward):
            reward.updated_at = func.now()
            await session.flush()
            await session.refresh(reward, ["updated_at"])
        return reward

    @staticmethod
    def reward_schema(reward: LoyaltyReward) -> schemas.Reward:
        return schemas.Reward.model_validate(reward)

    # == the sweep ==============================================================================
    async def sweep(self, session: AsyncSession, workspace_id: uuid.UUID, limit: int) -> int:
        """Release due pending points, expire due lots and re-derive tiers whose window moved,
        for up to ``limit`` accounts; the number of accounts changed. Idempotent: a second run
        at the same time finds nothing due."""
        repository = LoyaltyRepository(session)
        changed = 0
        due = await repository.accounts_due(workspace_id, limit)
        if due:
            ledger = await Ledger.start(session, workspace_id)
            for account in await repository.lock_accounts(workspace_id, due):
                if await self._settle(session, ledger, account, force=True):
                    await self._refresh_tier(session, workspace_id, account)
                    changed += 1
        if changed < limit:
            stale = await repository.derived_tiers(
                workspace_id, only_changed=True, limit=limit - changed
            )
            if stale:
                for account in await repository.lock_accounts(workspace_id, [r.id for r in stale]):
                    if await self._refresh_tier(session, workspace_id, account):
                        changed += 1
        await session.flush()
        return changed


loyalty = LoyaltyService()
