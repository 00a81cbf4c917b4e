"""Every ORM model, imported in one place so the mapper registry and Alembic see them all."""

from app.models.account import Account, AccountExternalId
from app.models.api_key import ApiKey
from app.models.case import (
    BusinessCalendar,
    Case,
    CaseComment,
    CaseCounter,
    CaseExternalId,
    CaseHistory,
    CaseQueue,
    CaseRoutingRule,
    SlaPolicy,
)
from app.models.contact import Contact, ContactEmail, ContactExternalId, ContactPhone
from app.models.contact_merge import ContactMerge
from app.models.contact_relationship import ContactRelationship
from app.models.idempotency_key import IdempotencyKey
from app.models.interaction import Interaction, InteractionExternalId
from app.models.outbox_event import OutboxEvent
from app.models.purchase import Purchase, PurchaseExternalId, PurchaseItem, PurchaseRefund
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
    "business_calendars",
    "sla_policies",
    "case_queues",
    "case_routing_rules",
    "case_counters",
    "cases",
    "case_external_ids",
    "case_comments",
    "case_history",
)

__all__ = [
    "TENANT_TABLES",
    "Account",
    "AccountExternalId",
    "ApiKey",
    "BusinessCalendar",
    "Case",
    "CaseComment",
    "CaseCounter",
    "CaseExternalId",
    "CaseHistory",
    "CaseQueue",
    "CaseRoutingRule",
    "Contact",
    "ContactEmail",
    "ContactExternalId",
    "ContactMerge",
    "ContactPhone",
    "ContactRelationship",
    "IdempotencyKey",
    "Interaction",
    "InteractionExternalId",
    "OutboxEvent",
    "Purchase",
    "PurchaseExternalId",
    "PurchaseItem",
    "PurchaseRefund",
    "SlaPolicy",
    "Workspace",
]
