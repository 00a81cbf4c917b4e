"""The single view of a customer: profile, account, history and value in one call.

Every section is one statement whatever the length of the contact's history, so the view
costs the same for a new contact and for one with years of interactions.
"""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from app.account.service import account as account_service
from app.auth.dependencies import AuthContext
from app.auth.scopes import Scope
from app.case.service import case as case_service
from app.contact.relationship_schemas import Relationship
from app.contact.relationships import relationship as relationship_service
from app.contact.service import contact as contact_service
from app.contact_view.schemas import (
    CasesSection,
    ContactView,
    InteractionsSection,
    LoyaltySection,
    PurchasesSection,
)
from app.interaction.service import interaction as interaction_service
from app.loyalty.service import loyalty as loyalty_service
from app.opportunity.service import opportunity as opportunity_service
from app.purchase.service import purchase as purchase_service

DEFAULT_RECENT = 5
OPEN_OPPORTUNITIES = 20
OPEN_CASES_SHOWN = 20


async def view(
    session: AsyncSession, auth: AuthContext, contact_id: uuid.UUID, *, recent: int
) -> ContactView:
    """The contact's single view; sections the key may not read are null.

    Raises:
        ContactNotFound / ContactMerged: no such live contact in the workspace.
    """
    contact = await contact_service.get(session, auth, contact_id)
    ids = [contact.id]
    account = None
    if contact.account_id is not None:
        found = (await account_service.get_many(session, auth, [contact.account_id])).get(
            contact.account_id
        )
        account = account_service.to_schema(found) if found is not None else None
    links = (await relationship_service.by_contacts(session, auth, ids)).get(contact.id, [])
    interactions = open_feedback = None
    if auth.has(Scope.interactions_read):
        counts = (await interaction_service.counts_by_channel(session, auth, ids)).get(
            contact.id, {}
        )
        latest = await interaction_service.recent_for_contacts(session, auth, ids, recent)
        attention = await interaction_service.open_feedback_for_contacts(session, auth, ids, recent)
        interactions = InteractionsSection(
            total=sum(counts.values()),
            by_channel=counts,
            recent=[interaction_service.to_schema(row) for row in latest.get(contact.id, [])],
        )
        open_feedback = [
            interaction_service.to_schema(row) for row in attention.get(contact.id, [])
        ]
    purchases = None
    if auth.has(Scope.purchases_read):
        summaries = await purchase_service.summaries_for_contacts(session, auth, ids)
        latest_purchases = await purchase_service.recent_for_contacts(session, auth, ids, recent)
        purchases = PurchasesSection(
            summary=summaries[contact.id],
            recent=[purchase_service.to_schema(row) for row in latest_purchases[contact.id]],
        )
    loyalty = None
    if auth.has(Scope.loyalty_read):
        memberships = await loyalty_service.accounts_for_contacts(session, auth, ids)
        loyalty = LoyaltySection(accounts=memberships[contact.id])
    opportunities = None
    if auth.has(Scope.opportunities_read):
        open_ones = await opportunity_service.recent_for_contacts(
            session, auth, ids, OPEN_OPPORTUNITIES, statuses=("open",)
        )
        opportunities = [opportunity_service.to_schema(row) for row in open_ones[contact.id]]
    cases = None
    if auth.has(Scope.cases_read):
        open_cases = (
            await case_service.open_for_contacts(session, auth, ids, OPEN_CASES_SHOWN + 1)
        )[contact.id]
        cases = CasesSection(
            open_count=await case_service.count_open(session, auth, contact.id)
            if len(open_cases) > OPEN_CASES_SHOWN
            else len(open_cases),
            open=await case_service.schemas_of(session, auth, open_cases[:OPEN_CASES_SHOWN]),
        )
    return ContactView(
        contact=contact_service.to_schema(contact),
        account=account,
        relationships=[Relationship.model_validate(row) for row in links],
        interactions=interactions,
        open_feedback=open_feedback,
        purchases=purchases,
        loyalty=loyalty,
        opportunities=opportunities,
        cases=cases,
    )
