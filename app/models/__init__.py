"""Every ORM model, imported in one place so the mapper registry and Alembic see them all."""

from app.models.api_key import ApiKey
from app.models.idempotency_key import IdempotencyKey
from app.models.outbox_event import OutboxEvent
from app.models.workspace import Workspace

# Tables carrying customer data: row-level security applies to each (see the migrations).
TENANT_TABLES = ("workspaces", "api_keys", "idempotency_keys", "outbox_events")

__all__ = ["TENANT_TABLES", "ApiKey", "IdempotencyKey", "OutboxEvent", "Workspace"]
