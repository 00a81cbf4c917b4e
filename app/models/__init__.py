"""Every ORM model, imported in one place so the mapper registry and Alembic see them all."""

from app.models.account import Account, AccountExternalId
from app.models.api_key import ApiKey
from app.models.contact import Contact, ContactEmail, ContactExternalId, ContactPhone
from app.models.contact_merge import ContactMerge
from app.models.contact_relationship import ContactRelationship
from app.models.idempotency_key import IdempotencyKey
from app.models.interaction import Interaction, InteractionExternalId
from app.models.loyalty import (
    LoyaltyAccount,
    LoyaltyAllocation,
    LoyaltyEntry,
    LoyaltyLot,
    LoyaltyProgram,
    LoyaltyRedemption,
    LoyaltyReward,
    LoyaltyTier,
)
from app.models.outbox_event import OutboxEvent
from app.models.purchase import Purchase, PurchaseExternalId, PurchaseItem, PurchaseRefund
from app.models.sales import (
    CommissionRule,
    Lead,
    Opportunity,
    OpportunityCompetitor,
    OpportunityExternalId,
    OpportunityStageChange,
    Pipeline,
    PipelineStage,
    SalesTarget,
)
from app.models.workspace import Workspace

# Tables carrying customer data: row-level security applies to each (see the migrations).
TENANT_TABLES = (
    "workspaces",
    "api_keys",
    "idempotency_keys",
    "outbox_events",
    "accounts",
    "account_external_ids",
    "contacts",
    "contact_emails",
    "contact_phones",
    "contact_external_ids",
    "contact_relationships",
    "contact_merges",
    "interactions",
    "interaction_external_ids",
    "purchases",
    "purchase_items",
    "purchase_refunds",
    "purchase_external_ids",
    "loyalty_programs",
    "loyalty_tiers",
    "loyalty_accounts",
    "loyalty_entries",
    "loyalty_lots",
    "loyalty_allocations",
    "loyalty_rewards",
    "loyalty_redemptions",
    "pipelines",
    "pipeline_stages",
    "opportunities",
    "opportunity_stage_changes",
    "opportunity_competitors",
    "opportunity_external_ids",
    "leads",
    "sales_targets",
    "commission_rules",
)

__all__ = [
    "TENANT_TABLES",
    "Account",
    "AccountExternalId",
    "ApiKey",
    "CommissionRule",
    "Contact",
    "ContactEmail",
    "ContactExternalId",
    "ContactMerge",
    "ContactPhone",
    "ContactRelationship",
    "IdempotencyKey",
    "Interaction",
    "InteractionExternalId",
    "Lead",
    "LoyaltyAccount",
    "LoyaltyAllocation",
    "LoyaltyEntry",
    "LoyaltyLot",
    "LoyaltyProgram",
    "LoyaltyRedemption",
    "LoyaltyReward",
    "LoyaltyTier",
    "Opportunity",
    "OpportunityCompetitor",
    "OpportunityExternalId",
    "OpportunityStageChange",
    "OutboxEvent",
    "Pipeline",
    "PipelineStage",
    "Purchase",
    "PurchaseExternalId",
    "PurchaseItem",
    "PurchaseRefund",
    "SalesTarget",
    "Workspace",
]
