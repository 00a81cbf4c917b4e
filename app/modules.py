"""Imports each domain module's registrations: contact references for merges, timeline
sources. Whichever face serves a request (REST or GraphQL), the same modules take part."""

import app.case.tasks
import app.case.timeline
import app.interaction.timeline
import app.purchase.timeline  # noqa: F401
