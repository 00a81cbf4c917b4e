from __future__ import annotations

from pydantic import Field

from app.account.schemas import Account
from app.case.schemas import Case
from app.contact.relationship_schemas import Relationship
from app.contact.schemas import Contact
from app.interaction.schemas import Interaction
from app.kit.schemas import Schema
from app.loyalty.schemas import Account as LoyaltyAccount
from app.opportunity.schemas import Opportunity
from app.purchase.schemas import Purchase, PurchaseSummary


class InteractionsSection(Schema):
    total: int = Field(description="Interactions on every channel.")
    by_channel: dict[str, int] = Field(description="Channels without any are left out.")
    recent: list[Interaction] = Field(description="The newest first.")


class PurchasesSection(Schema):
    summary: PurchaseSummary
    recent: list[Purchase] = Field(description="The newest first.")


class LoyaltySection(Schema):
    accounts: list[LoyaltyAccount] = Field(
        description="Memberships with balance, tier, progress and points expiring soon."
    )


class CasesSection(Schema):
    open_count: int = Field(description="Cases not yet resolved (new, open, pending).")
    open: list[Case] = Field(description="The newest open cases first.")


class ContactView(Schema):
    """Everything an agent needs before picking up the phone, in one answer.

    A section the key has no read scope for is null: `interactions` and `open_feedback` need
    `interactions:read`, `purchases` needs `purchases:read`, `loyalty` needs `loyalty:read`,
    `opportunities` needs `opportunities:read`, `cases` needs `cases:read`.
    """

    contact: Contact
    account: Account | None
    relationships: list[Relationship]
    interactions: InteractionsSection | None
    open_feedback: list[Interaction] | None = Field(
        description="Negative or urgent feedback not yet resolved, the newest first."
    )
    purchases: PurchasesSection | None
    loyalty: LoyaltySection | None
    opportunities: list[Opportunity] | None = Field(
        description="Open opportunities, the most recently updated first (at most 20)."
    )
    cases: CasesSection | None = Field(description="Open cases, with their SLA status.")
