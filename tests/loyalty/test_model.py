"""A Hypothesis state machine drives one member's account through the service layer (real
database, real purchases, the real sweep) and compares it after every step with an in-memory
model of the programme: lots, consumption order, pending release, expiry, reversals,
clawbacks, tiers and error codes. The ledger invariants are checked after every step too.

Time is never faked: "time passes" by back-dating a lot's stored times as the owner, as an
operator's clock would have, and running the sweep.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine

from app.auth.dependencies import AuthContext
from app.auth.scopes import Scope
from app.config import Settings
from app.contact import schemas as contact_schemas
from app.contact.service import contact as contact_service
from app.db.session import Database, bind_workspace
from app.kit.errors import CRMError
from app.kit.schemas import parse_input
from app.loyalty import schemas
from app.loyalty.invariants import INVARIANTS
from app.loyalty.service import loyalty as loyalty_service
from app.purchase import schemas as purchase_schemas
from app.purchase.service import purchase as purchase_service
from tests.conftest import ProvisionedDatabase, WorkspaceHandle
from tests.loyalty.helpers import moments_ago

T = TypeVar("T")
SILVER, GOLD = 100, 300


@dataclass
class Lot:
    db_id: uuid.UUID
    group: int  # 0: manual (expires first), 1: from a purchase (expires 14 days later)
    number: int
    original: int
    remaining: int
    pending: bool
    expired: bool = False


@dataclass
class Buy:
    purchase_id: uuid.UUID
    total_minor: int
    refunded_minor: int = 0
    earned: int = 0
    clawed: int = 0
    lot: Lot | None = None


@dataclass
class Spend:
    redemption_id: uuid.UUID
    taken: dict[int, int]  # lot number -> points
    reversed: bool = False


@dataclass
class Model:
    lots: list[Lot] = field(default_factory=list)
    buys: list[Buy] = field(default_factory=list)
    spends: list[Spend] = field(default_factory=list)
    expired: int = 0
    redeemed: int = 0
    qualifying: int = 0

    def spendable(self) -> list[Lot]:
        return sorted(
            (lot for lot in self.lots if not lot.pending and not lot.expired and lot.remaining),
            key=lambda lot: (lot.group, lot.number),
        )

    @property
    def available(self) -> int:
        return sum(lot.remaining for lot in self.lots if not lot.pending and not lot.expired)

    @property
    def pending(self) -> int:
        return sum(lot.remaining for lot in self.lots if lot.pending)

    @property
    def multiplier(self) -> int:
        return 150 if self.qualifying >= GOLD else 100

    @property
    def tier(self) -> str | None:
        if self.qualifying >= GOLD:
            return "Gold"
        return "Silver" if self.qualifying >= SILVER else None


class Harness:
    """One event loop and connections of its own, in the state machine's thread."""

    def __init__(self, settings: Settings, owner_url: str, ws: WorkspaceHandle) -> None:
        self.loop = asyncio.new_event_loop()
        assert settings.database_url is not None
        self.database = Database.connect(settings.database_url, settings)
        self.owner: AsyncEngine = create_async_engine(owner_url, pool_size=1)
        self.ws = ws
        self.auth = AuthContext(
            workspace_id=ws.id, api_key_id=ws.admin_key_id, scopes=frozenset({Scope.admin.value})
        )

    def run(self, work: Callable[[AsyncSession], Awaitable[T]]) -> T | CRMError:
        async def go() -> T | CRMError:
            try:
                async with self.database.sessionmaker() as session, session.begin():
                    await bind_workspace(session, self.ws.id)
                    return await work(session)
            except CRMError as error:
                return error

        return self.loop.run_until_complete(go())

    def owner_sql(self, sql: str, **params: Any) -> list[Any]:
        async def go() -> list[Any]:
            async with self.owner.begin() as connection:
                result = await connection.execute(text(sql), params)
                return list(result.all()) if result.returns_rows else []

        return self.loop.run_until_complete(go())

    def close(self) -> None:
        self.loop.run_until_complete(self.database.dispose())
        self.loop.run_until_complete(self.owner.dispose())
        self.loop.close()


class LedgerMachine(RuleBasedStateMachine):
    harness: Harness

    def __init__(self) -> None:
        super().__init__()
        self.model = Model()
        auth = self.harness.auth
        program = schemas.ProgramCreate.model_validate({
            "name": f"Model {uuid.uuid4().hex[:8]}",
            "earn_rates": [{"spend": {"amount": "25.00", "currency": "THB"}, "points": 1}],
            "pending_days": 14,
            "expiry_months": 12,
            "clawback_policy": "cap_at_zero",
            "tiers": [{"name": "Silver", "threshold": SILVER},
                      {"name": "Gold", "threshold": GOLD, "earn_multiplier": "1.5"}],
        })  # fmt: skip

        async def setup(session: AsyncSession) -> tuple[uuid.UUID, uuid.UUID]:
            created, _ = await loyalty_service.create_program(session, auth, program)
            contact = await contact_service.create(
                session, auth, contact_schemas.ContactCreate(given_name="Model")
            )
            account = await loyalty_service.enrol(
                session, auth, schemas.AccountCreate(program_id=created.id, contact_id=contact.id)
            )
            return account.id, contact.id

        outcome = self.harness.run(setup)
        assert not isinstance(outcome, CRMError)
        self.account_id, self.contact_id = outcome
        self.numbers = 0

    # -- helpers -----------------------------------------------------------------------------
    def _new_lot(self, entry_id: uuid.UUID, points: int, *, group: int, pending: bool) -> Lot:
        rows = self.harness.owner_sql("SELECT id FROM loyalty_lots WHERE entry_id = :e", e=entry_id)
        self.numbers += 1
        lot = Lot(rows[0][0], group, self.numbers, points, points, pending)
        self.model.lots.append(lot)
        return lot

    def _sweep(self) -> None:
        outcome = self.harness.run(
            lambda session: loyalty_service.sweep(session, self.harness.ws.id, 1000)
        )
        assert not isinstance(outcome, CRMError)

    def _consume(self, points: int, lots: list[Lot]) -> dict[int, int]:
        taken: dict[int, int] = {}
        for lot in lots:
            if points == 0:
                break
            part = min(points, lot.remaining)
            lot.remaining -= part
            taken[lot.number] = part
            points -= part
        return taken

    # -- rules -------------------------------------------------------------------------------
    @rule(points=st.integers(1, 200))
    def earn(self, points: int) -> None:
        data = schemas.EntryCreate(kind="earn", points=points)
        outcome = self.harness.run(
            lambda s: loyalty_service.post_entry(s, self.harness.auth, self.account_id, data)
        )
        assert not isinstance(outcome, CRMError)
        self._new_lot(outcome[0].id, points, group=0, pending=False)
        self.model.qualifying += points

    @rule(baht=st.integers(1, 6000))
    def buy(self, baht: int) -> None:
        data = parse_input(purchase_schemas.PurchaseCreate, {
            "contact_id": str(self.contact_id),
            "occurred_at": moments_ago(),
            "total": {"amount": f"{baht}.00", "currency": "THB"},
            "items": [{"name": "Thing", "quantity": 1,
                       "unit_price": {"amount": f"{baht}.00", "currency": "THB"}}],
        })  # fmt: skip
        outcome = self.harness.run(lambda s: purchase_service.create(s, self.harness.auth, data))
        assert not isinstance(outcome, CRMError)
        purchase = outcome[0]
        points = baht * 100 * self.model.multiplier // 250_000
        buy = Buy(purchase.id, baht * 100, earned=points)
        if points:
            rows = self.harness.owner_sql(
                "SELECT id FROM loyalty_entries WHERE reference = :r", r=f"purchase:{purchase.id}"
            )
            buy.lot = self._new_lot(rows[0][0], points, group=1, pending=True)
            self.model.qualifying += points
        self.model.buys.append(buy)

    @precondition(lambda self: any(lot.pending for lot in self.model.lots))
    @rule()
    def release(self) -> None:
        self.harness.owner_sql(
            "UPDATE loyalty_lots SET available_at = now() - interval '1 second' "
            "WHERE account_id = :a AND state = 'pending'",
            a=self.account_id,
        )
        self._sweep()
        for lot in self.model.lots:
            lot.pending = False

    @precondition(lambda self: bool(self.model.spendable()))
    @rule()
    def expire_first(self) -> None:
        lot = self.model.spendable()[0]
        self.harness.owner_sql(
            "UPDATE loyalty_lots SET available_at = now() - interval '2 days', "
            "expires_at = now() - interval '1 day' WHERE id = :id",
            id=lot.db_id,
        )
        self._sweep()
        self.model.expired += lot.remaining
        lot.remaining = 0
        lot.expired = True

    @rule(points=st.integers(1, 400))
    def redeem(self, points: int) -> None:
        data = schemas.RedemptionCreate(points=points)
        outcome = self.harness.run(
            lambda s: loyalty_service.redeem(s, self.harness.auth, self.account_id, data)
        )
        if self.model.available < points:
            assert isinstance(outcome, CRMError)
            assert outcome.code == "insufficient_points"
            return
        assert not isinstance(outcome, CRMError), outcome
        taken = self._consume(points, self.model.spendable())
        self.model.spends.append(Spend(outcome[0].id, taken))
        self.model.redeemed += points

    @precondition(lambda self: any(not spend.reversed for spend in self.model.spends))
    @rule(data=st.data())
    def reverse(self, data: st.DataObject) -> None:
        open_ = [spend for spend in self.model.spends if not spend.reversed]
        spend = data.draw(st.sampled_from(open_))
        body = schemas.RedemptionReverse()
        outcome = self.harness.run(
            lambda s: loyalty_service.reverse_redemption(
                s, self.harness.auth, self.account_id, spend.redemption_id, body
            )
        )
        assert not isinstance(outcome, CRMError), outcome
        by_number = {lot.number: lot for lot in self.model.lots}
        for number, points in spend.taken.items():
            lot = by_number[number]
            if lot.expired:
                self.model.expired += points  # restored, then expired at once
            else:
                lot.remaining += points
        spend.reversed = True
        self.model.redeemed -= sum(spend.taken.values())
        again = self.harness.run(
            lambda s: loyalty_service.reverse_redemption(
                s, self.harness.auth, self.account_id, spend.redemption_id, body
            )
        )
        assert isinstance(again, CRMError)
        assert again.code == "already_reversed"

    @precondition(lambda self: any(b.refunded_minor < b.total_minor for b in self.model.buys))
    @rule(data=st.data(), share=st.integers(1, 100))
    def refund(self, data: st.DataObject, share: int) -> None:
        open_ = [b for b in self.model.buys if b.refunded_minor < b.total_minor]
        buy = data.draw(st.sampled_from(open_))
        left = buy.total_minor - buy.refunded_minor
        amount = max(1, left * share // 100)
        body = parse_input(purchase_schemas.RefundCreate, {
            "amount": {"amount": f"{amount // 100}.{amount % 100:02d}", "currency": "THB"},
        })  # fmt: skip
        outcome = self.harness.run(
            lambda s: purchase_service.refund(s, self.harness.auth, buy.purchase_id, body)
        )
        assert not isinstance(outcome, CRMError), outcome
        buy.refunded_minor += amount
        if not buy.earned:
            return
        kept = buy.earned * (buy.total_minor - buy.refunded_minor) // buy.total_minor
        claw = buy.earned - kept - buy.clawed
        if claw <= 0:
            return
        buy.clawed += claw
        self.model.qualifying -= claw
        own = buy.lot
        rest = claw
        if own is not None and not own.expired and own.remaining:
            part = min(rest, own.remaining)
            own.remaining -= part
            rest -= part
        if rest:
            self._consume(rest, [lot for lot in self.model.spendable() if lot is not own])

    # -- after every step --------------------------------------------------------------------
    @invariant()
    def matches_the_model(self) -> None:
        rows = self.harness.owner_sql(
            "SELECT a.available, a.pending, a.balance, a.expired, a.redeemed, t.name "
            "FROM loyalty_accounts a LEFT JOIN loyalty_tiers t ON t.id = a.tier_id "
            "WHERE a.id = :a",
            a=self.account_id,
        )
        model = self.model
        expected = (model.available, model.pending, model.available + model.pending,
                    model.expired, model.redeemed, model.tier)  # fmt: skip
        assert tuple(rows[0]) == expected
        stored = {
            row[0]: row[1]
            for row in self.harness.owner_sql(
                "SELECT id, remaining FROM loyalty_lots WHERE account_id = :a", a=self.account_id
            )
        }
        assert stored == {lot.db_id: lot.remaining for lot in model.lots}

    @invariant()
    def ledger_invariants_hold(self) -> None:
        for name, sql in INVARIANTS.items():
            broken = self.harness.owner_sql(sql, w=self.harness.ws.id)
            assert not broken, name


async def test_the_ledger_behaves_like_its_model(
    workspace: WorkspaceHandle, settings: Settings, test_database: ProvisionedDatabase
) -> None:
    def explore() -> None:
        harness = Harness(settings, test_database.owner_url, workspace)
        LedgerMachine.harness = harness
        try:
            run = LedgerMachine.TestCase
            run.settings = settings_for_machine
            run().runTest()
        finally:
            harness.close()

    await asyncio.to_thread(explore)


settings_for_machine = settings(
    max_examples=12,
    stateful_step_count=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
