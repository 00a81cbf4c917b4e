"""Scopes an API key can carry: ``<area>:read`` / ``<area>:write``, and ``admin`` for all."""

from __future__ import annotations

from enum import StrEnum

AREAS = (
    "contacts",
    "interactions",
    "purchases",
    "opportunities",
    "cases",
    "loyalty",
    "offers",
    "webhooks",
)


class Scope(StrEnum):
    admin = "admin"
    contacts_read = "contacts:read"
    contacts_write = "contacts:write"
    interactions_read = "interactions:read"
    interactions_write = "interactions:write"
    purchases_read = "purchases:read"
    purchases_write = "purchases:write"
    opportunities_read = "opportunities:read"
    opportunities_write = "opportunities:write"
    cases_read = "cases:read"
    cases_write = "cases:write"
    loyalty_read = "loyalty:read"
    loyalty_write = "loyalty:write"
    offers_read = "offers:read"
    offers_write = "offers:write"
    webhooks_read = "webhooks:read"
    webhooks_write = "webhooks:write"


def grants(held: frozenset[str], required: Scope) -> bool:
    return Scope.admin.value in held or required.value in held
