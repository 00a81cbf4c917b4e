"""Every REST router, under /v1."""

import app.modules  # noqa: F401  (registrations)
from app.account.endpoints import router as account_router
from app.api_key.endpoints import router as api_key_router
from app.case.endpoints import router as case_router
from app.case.setup_endpoints import calendar_router, policy_router, queue_router, rule_router
from app.contact.endpoints import HOT_ROUTES as CONTACT_HOT_ROUTES
from app.contact.endpoints import router as contact_router
from app.contact_view.endpoints import router as contact_view_router
from app.interaction.endpoints import router as interaction_router
from app.kit.hot import HotRoute
from app.kit.routing import PrefixedRouter
from app.lead.endpoints import router as lead_router
from app.loyalty.endpoints import HOT_ROUTES as LOYALTY_HOT_ROUTES
from app.loyalty.endpoints import router as loyalty_router
from app.opportunity.commission_endpoints import router as commission_router
from app.opportunity.commission_endpoints import rules_router as commission_rules_router
from app.opportunity.endpoints import router as opportunity_router
from app.opportunity.pipeline_endpoints import router as pipelines_router
from app.opportunity.target_endpoints import router as target_router
from app.purchase.endpoints import router as purchase_router
from app.timeline.endpoints import router as timeline_router
from app.workspace.endpoints import router as workspace_router

router = PrefixedRouter(prefix="/v1")
# High-volume operations answered before the router (app.kit.hot); each is also an operation
# below.
hot_routes: list[HotRoute] = [*CONTACT_HOT_ROUTES, *LOYALTY_HOT_ROUTES]
router.include_router(workspace_router)
router.include_router(api_key_router)
router.include_router(contact_router)
router.include_router(account_router)
router.include_router(interaction_router)
router.include_router(purchase_router)
router.include_router(loyalty_router)
router.include_router(pipelines_router)
router.include_router(opportunity_router)
router.include_router(lead_router)
router.include_router(target_router)
router.include_router(commission_rules_router)
router.include_router(commission_router)
router.include_router(case_router)
router.include_router(queue_router)
router.include_router(rule_router)
router.include_router(calendar_router)
router.include_router(policy_router)
router.include_router(timeline_router)
router.include_router(contact_view_router)
