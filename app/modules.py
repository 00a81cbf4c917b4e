"""Imports each domain module's registrations: contact references for merges, timeline
sources, interaction link targets, purchase listeners, periodic jobs. Whichever face serves a
request (REST or GraphQL), the same modules take part."""

import app.case.tasks
import app.case.timeline
import app.interaction.timeline
import app.lead.service
import app.loyalty.purchases
import app.loyalty.tasks
import app.loyalty.timeline
import app.opportunity.timeline
import app.purchase.timeline  # noqa: F401
