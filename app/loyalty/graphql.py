"""Loyalty in GraphQL: programmes, accounts with their ledger, rewards, and a mutation for
every write, over the same service functions as REST."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, cast

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from app.auth.scopes import Scope
from app.graphql.context import Context
from app.graphql.dataloaders.loyalty_accounts_by_contact import loyalty_accounts_by_contact
from app.graphql.dataloaders.loyalty_entries_recent_by_account import (
    loyalty_entries_recent_by_account,
)
from app.graphql.relay import Connection, Edge, page_of, page_size
from app.kit.pagination import MAX_LIMIT, _encode
from app.kit.schemas import parse_input
from app.loyalty import schemas
from app.loyalty.service import loyalty as loyalty_service
from app.models import LoyaltyEntry, LoyaltyRedemption, LoyaltyReward

RULE_FIELDS = ("earn_rates", "category_multipliers", "first_purchase_bonus", "birthday_multiplier")


def _cursor(row_id: uuid.UUID, descending: bool) -> str:
    return _encode(["-id" if descending else "id", str(row_id), str(row_id)])


@strawberry.type(name="LoyaltyTier")
class LoyaltyTierType:
    id: uuid.UUID
    program_id: uuid.UUID
    name: str
    threshold: int
    earn_multiplier: str = strawberry.field(description='e.g. "1.5".')
    benefits: str | None

    @classmethod
    def from_schema(cls, data: schemas.Tier) -> LoyaltyTierType:
        dumped = data.model_dump(mode="json")
        return cls(
            id=data.id,
            program_id=data.program_id,
            name=data.name,
            threshold=data.threshold,
            earn_multiplier=dumped["earn_multiplier"],
            benefits=data.benefits,
        )


@strawberry.type(name="LoyaltyProgram")
class LoyaltyProgramType:
    id: uuid.UUID
    name: str
    point_name: str
    pending_days: int
    expiry_months: int | None
    clawback_policy: str
    tier_basis: str
    tier_currency: str | None
    tier_window_months: int
    active: bool
    rules: JSON = strawberry.field(
        description="Earn rates, multipliers and bonuses, as the REST programme shows them."
    )
    tiers: list[LoyaltyTierType]
    created_at: datetime
    updated_at: datetime
    version: int

    @classmethod
    def from_schema(cls, data: schemas.Program) -> LoyaltyProgramType:
        dumped = data.model_dump(mode="json")
        return cls(
            id=data.id,
            name=data.name,
            point_name=data.point_name,
            pending_days=data.pending_days,
            expiry_months=data.expiry_months,
            clawback_policy=data.clawback_policy,
            tier_basis=data.tier_basis,
            tier_currency=data.tier_currency,
            tier_window_months=data.tier_window_months,
            active=data.active,
            rules=cast(JSON, {key: dumped[key] for key in RULE_FIELDS}),
            tiers=[LoyaltyTierType.from_schema(tier) for tier in data.tiers],
            created_at=data.created_at,
            updated_at=data.updated_at,
            version=data.version,
        )


@strawberry.type(name="LoyaltyTierRef")
class LoyaltyTierRefType:
    id: uuid.UUID
    name: str
    threshold: int


@strawberry.type(name="LoyaltyProgress")
class LoyaltyProgressType:
    basis: str
    window_months: int
    qualifying: int
    next_tier: LoyaltyTierRefType | None
    needed: int | None


@strawberry.type(name="LoyaltyExpiring", description="Points expiring within 30/60/90 days.")
class LoyaltyExpiringType:
    days_30: int
    days_60: int
    days_90: int


@strawberry.type(name="LoyaltyEntry")
class LoyaltyEntryType:
    id: uuid.UUID
    account_id: uuid.UUID
    seq: int
    kind: str
    amount: int
    available_change: int
    pending_change: int
    balance_after: int
    available_after: int
    pending_after: int
    reference: str | None
    reverses_entry_id: uuid.UUID | None
    clawback_of_entry_id: uuid.UUID | None
    redemption_id: uuid.UUID | None
    reason: str | None
    effective_at: datetime
    recorded_at: datetime
    api_key_id: uuid.UUID | None
    details: JSON

    @classmethod
    def from_model(cls, row: LoyaltyEntry) -> LoyaltyEntryType:
        data = loyalty_service.entry_schema(row)
        values: dict[str, Any] = data.model_dump()
        values["details"] = cast(JSON, data.model_dump(mode="json")["details"])
        return cls(**values)


def _ref(tier: schemas.TierRef | None) -> LoyaltyTierRefType | None:
    if tier is None:
        return None
    return LoyaltyTierRefType(id=tier.id, name=tier.name, threshold=tier.threshold)


@strawberry.type(name="LoyaltyAccount")
class LoyaltyAccountType:
    id: uuid.UUID
    program_id: uuid.UUID
    contact_id: uuid.UUID
    available: int
    pending: int
    balance: int = strawberry.field(description="available + pending = the sum of entries.")
    lifetime_earned: int
    redeemed: int
    expired: int
    tier: LoyaltyTierRefType | None
    progress: LoyaltyProgressType
    expiring: LoyaltyExpiringType
    created_at: datetime
    updated_at: datetime
    version: int

    @strawberry.field(description="The ledger, newest first.")
    async def entries(
        self, info: Info[Context, None], first: int | None = None, after: str | None = None
    ) -> Connection[LoyaltyEntryType]:
        auth = info.context.require(Scope.loyalty_read)
        size = page_size(first)
        if after is None and size < MAX_LIMIT:
            rows = await info.context.loaders.get(loyalty_entries_recent_by_account).load(
                (self.id, size + 1)
            )
            page, more = rows[:size], len(rows) > size
            next_cursor = _cursor(page[-1].id, True) if more else None
        else:
            page, next_cursor = await info.context.read(
                lambda session: loyalty_service.entries(
                    session, auth, self.id, limit=size, cursor=after
                )
            )
        edges = [
            Edge(node=LoyaltyEntryType.from_model(row), cursor=_cursor(row.id, True))
            for row in page
        ]
        return page_of(edges, next_cursor)

    @classmethod
    def from_schema(cls, data: schemas.Account) -> LoyaltyAccountType:
        return cls(
            id=data.id,
            program_id=data.program_id,
            contact_id=data.contact_id,
            available=data.available,
            pending=data.pending,
            balance=data.balance,
            lifetime_earned=data.lifetime_earned,
            redeemed=data.redeemed,
            expired=data.expired,
            tier=_ref(data.tier),
            progress=LoyaltyProgressType(
                basis=data.progress.basis,
                window_months=data.progress.window_months,
                qualifying=data.progress.qualifying,
                next_tier=_ref(data.progress.next_tier),
                needed=data.progress.needed,
            ),
            expiring=LoyaltyExpiringType(
                days_30=data.expiring.days_30,
                days_60=data.expiring.days_60,
                days_90=data.expiring.days_90,
            ),
            created_at=data.created_at,
            updated_at=data.updated_at,
            version=data.version,
        )


@strawberry.type(name="LoyaltyReward")
class LoyaltyRewardType:
    id: uuid.UUID
    program_id: uuid.UUID
    name: str
    description: str | None
    cost_points: int
    stock: int | None = strawberry.field(description="Null: unlimited.")
    valid_from: datetime | None
    valid_to: datetime | None
    min_tier_id: uuid.UUID | None
    active: bool
    created_at: datetime
    updated_at: datetime
    version: int

    @classmethod
    def from_model(cls, row: LoyaltyReward) -> LoyaltyRewardType:
        return cls(**loyalty_service.reward_schema(row).model_dump())


@strawberry.type(name="LoyaltyRedemption")
class LoyaltyRedemptionType:
    id: uuid.UUID
    account_id: uuid.UUID
    reward_id: uuid.UUID | None
    points: int
    status: str
    entry_id: uuid.UUID
    reversal_entry_id: uuid.UUID | None
    reference: str | None
    reason: str | None
    created_at: datetime
    reversed_at: datetime | None

    @classmethod
    def from_model(cls, row: LoyaltyRedemption) -> LoyaltyRedemptionType:
        return cls(**loyalty_service.redemption_schema(row).model_dump())


@strawberry.type(name="LoyaltyEntryResult")
class LoyaltyEntryResultType:
    entry: LoyaltyEntryType
    account: LoyaltyAccountType


@strawberry.type(name="LoyaltyRedemptionResult")
class LoyaltyRedemptionResultType:
    redemption: LoyaltyRedemptionType
    account: LoyaltyAccountType


async def contact_loyalty_accounts(
    root: Any, info: Info[Context, None]
) -> list[LoyaltyAccountType] | None:
    """``Contact.loyaltyAccounts``: batched for a list of contacts."""
    info.context.require(Scope.loyalty_read)
    accounts = await info.context.loaders.get(loyalty_accounts_by_contact).load(root.id)
    return [LoyaltyAccountType.from_schema(account) for account in accounts]


def _plain(value: Any) -> Any:
    return {k: v for k, v in vars(value).items() if v is not strawberry.UNSET}


@strawberry.input
class LoyaltyEntryInput:
    kind: str = strawberry.field(description="`earn` or `adjust`.")
    points: int
    reason: str | None = strawberry.UNSET
    reference: str | None = strawberry.UNSET


@strawberry.input(description="Either points or reward_id.")
class LoyaltyRedemptionInput:
    points: int | None = strawberry.UNSET
    reward_id: uuid.UUID | None = strawberry.UNSET
    reason: str | None = strawberry.UNSET
    reference: str | None = strawberry.UNSET


@strawberry.type
class LoyaltyRootQuery:
    @strawberry.field(description="Loyalty programmes, oldest first (scope: loyalty:read).")
    async def loyalty_programs(
        self, info: Info[Context, None], first: int | None = None, after: str | None = None
    ) -> Connection[LoyaltyProgramType] | None:
        auth = info.context.require(Scope.loyalty_read)
        size = page_size(first)
        rows, next_cursor = await info.context.read(
            lambda session: loyalty_service.find_programs(session, auth, limit=size, cursor=after)
        )
        edges = [
            Edge(
                node=LoyaltyProgramType.from_schema(loyalty_service.program_schema(p, t)),
                cursor=_cursor(p.id, False),
            )
            for p, t in rows
        ]
        return page_of(edges, next_cursor)

    @strawberry.field(description="One programme.")
    async def loyalty_program(
        self, info: Info[Context, None], id: uuid.UUID
    ) -> LoyaltyProgramType | None:
        auth = info.context.require(Scope.loyalty_read)
        program, tiers = await info.context.read(
            lambda session: loyalty_service.get_program(session, auth, id)
        )
        return LoyaltyProgramType.from_schema(loyalty_service.program_schema(program, tiers))

    @strawberry.field(description="One member account.")
    async def loyalty_account(
        self, info: Info[Context, None], id: uuid.UUID
    ) -> LoyaltyAccountType | None:
        auth = info.context.require(Scope.loyalty_read)

        async def work(session: Any) -> schemas.Account:
            account = await loyalty_service.get_account(session, auth, id)
            return await loyalty_service.account_schema(session, auth, account)

        return LoyaltyAccountType.from_schema(await info.context.read(work))

    @strawberry.field(description="The rewards catalogue, oldest first.")
    async def loyalty_rewards(
        self,
        info: Info[Context, None],
        first: int | None = None,
        after: str | None = None,
        program_id: uuid.UUID | None = None,
    ) -> Connection[LoyaltyRewardType] | None:
        auth = info.context.require(Scope.loyalty_read)
        size = page_size(first)
        rows, next_cursor = await info.context.read(
            lambda session: loyalty_service.find_rewards(
                session, auth, program_id=program_id, limit=size, cursor=after
            )
        )
        edges = [
            Edge(node=LoyaltyRewardType.from_model(row), cursor=_cursor(row.id, False))
            for row in rows
        ]
        return page_of(edges, next_cursor)


@strawberry.type
class LoyaltyMutation:
    @strawberry.mutation(description="Create a programme; `input` is the REST body.")
    async def create_loyalty_program(
        self, info: Info[Context, None], input: JSON
    ) -> LoyaltyProgramType | None:
        auth = info.context.require(Scope.loyalty_write)
        data = parse_input(schemas.ProgramCreate, input)
        program, tiers = await info.context.write(
            lambda session: loyalty_service.create_program(session, auth, data)
        )
        return LoyaltyProgramType.from_schema(loyalty_service.program_schema(program, tiers))

    @strawberry.mutation(description="Change a programme; `input` is the REST merge patch.")
    async def update_loyalty_program(
        self, info: Info[Context, None], id: uuid.UUID, input: JSON, if_match: str | None = None
    ) -> LoyaltyProgramType | None:
        auth = info.context.require(Scope.loyalty_write)
        patch = parse_input(schemas.ProgramUpdate, input)
        program, tiers = await info.context.write(
            lambda session: loyalty_service.update_program(
                session, auth, id, patch, if_match=if_match
            )
        )
        return LoyaltyProgramType.from_schema(loyalty_service.program_schema(program, tiers))

    @strawberry.mutation(description="Enrol a contact in a programme.")
    async def enrol_loyalty_member(
        self, info: Info[Context, None], program_id: uuid.UUID, contact_id: uuid.UUID
    ) -> LoyaltyAccountType | None:
        auth = info.context.require(Scope.loyalty_write)
        data = schemas.AccountCreate(program_id=program_id, contact_id=contact_id)

        async def work(session: Any) -> schemas.Account:
            account = await loyalty_service.enrol(session, auth, data)
            return await loyalty_service.account_schema(session, auth, account)

        return LoyaltyAccountType.from_schema(await info.context.write(work))

    @strawberry.mutation(description="A manual earn or an adjust (reason required).")
    async def post_loyalty_entry(
        self, info: Info[Context, None], account_id: uuid.UUID, input: LoyaltyEntryInput
    ) -> LoyaltyEntryResultType | None:
        auth = info.context.require(Scope.loyalty_write)
        data = parse_input(schemas.EntryCreate, _plain(input))

        async def work(session: Any) -> tuple[LoyaltyEntry, schemas.Account]:
            entry, account, _ = await loyalty_service.post_entry(session, auth, account_id, data)
            return entry, await loyalty_service.account_schema(session, auth, account)

        entry, account = await info.context.write(work)
        return LoyaltyEntryResultType(
            entry=LoyaltyEntryType.from_model(entry),
            account=LoyaltyAccountType.from_schema(account),
        )

    @strawberry.mutation(description="Redeem points or a reward.")
    async def redeem_loyalty_points(
        self, info: Info[Context, None], account_id: uuid.UUID, input: LoyaltyRedemptionInput
    ) -> LoyaltyRedemptionResultType | None:
        auth = info.context.require(Scope.loyalty_write)
        data = parse_input(schemas.RedemptionCreate, _plain(input))

        async def work(session: Any) -> tuple[LoyaltyRedemption, schemas.Account]:
            redemption, account, _ = await loyalty_service.redeem(session, auth, account_id, data)
            return redemption, await loyalty_service.account_schema(session, auth, account)

        redemption, account = await info.context.write(work)
        return LoyaltyRedemptionResultType(
            redemption=LoyaltyRedemptionType.from_model(redemption),
            account=LoyaltyAccountType.from_schema(account),
        )

    @strawberry.mutation(description="Reverse a redemption: its points go back to their lots.")
    async def reverse_loyalty_redemption(
        self,
        info: Info[Context, None],
        account_id: uuid.UUID,
        redemption_id: uuid.UUID,
        reason: str | None = None,
    ) -> LoyaltyRedemptionResultType | None:
        auth = info.context.require(Scope.loyalty_write)
        data = parse_input(schemas.RedemptionReverse, {"reason": reason})

        async def work(session: Any) -> tuple[LoyaltyRedemption, schemas.Account]:
            redemption, account = await loyalty_service.reverse_redemption(
                session, auth, account_id, redemption_id, data
            )
            return redemption, await loyalty_service.account_schema(session, auth, account)

        redemption, account = await info.context.write(work)
        return LoyaltyRedemptionResultType(
            redemption=LoyaltyRedemptionType.from_model(redemption),
            account=LoyaltyAccountType.from_schema(account),
        )

    @strawberry.mutation(description="Add a reward; `input` is the REST body.")
    async def create_loyalty_reward(
        self, info: Info[Context, None], input: JSON
    ) -> LoyaltyRewardType | None:
        auth = info.context.require(Scope.loyalty_write)
        data = parse_input(schemas.RewardCreate, input)
        reward = await info.context.write(
            lambda session: loyalty_service.create_reward(session, auth, data)
        )
        return LoyaltyRewardType.from_model(reward)

    @strawberry.mutation(description="Change a reward; `input` is the REST merge patch.")
    async def update_loyalty_reward(
        self, info: Info[Context, None], id: uuid.UUID, input: JSON, if_match: str | None = None
    ) -> LoyaltyRewardType | None:
        auth = info.context.require(Scope.loyalty_write)
        patch = parse_input(schemas.RewardUpdate, input)
        reward = await info.context.write(
            lambda session: loyalty_service.update_reward(
                session, auth, id, patch, if_match=if_match
            )
        )
        return LoyaltyRewardType.from_model(reward)
