"""Load interactions and purchases (with items) for seeded contacts, fast, with PostgreSQL COPY.

Items are generated as API bodies (``bench.history.Generator``: Thai and Vietnamese subjects
and bodies, chat / phone / e-mail / store channels, feedback on some, THB baskets), parsed by
the service's own input schemas and turned into rows by the service's own functions
(``InteractionCreate`` and the interaction service's row builder, ``PurchaseCreate`` and the
purchase service's pricing): what is loaded is what the API would have stored for the same
bodies. Then ``COPY`` writes them, one transaction per chunk, as the embedded server's
superuser (no row-level security to evaluate per row).

Contacts get a skewed share of the history (a few with many entries, most with a few), as in
a real customer base.
"""

from __future__ import annotations

import json
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from random import Random
from typing import Any

import asyncpg

from app.interaction import schemas as interaction_schemas
from app.interaction.service import _Pending, _row
from app.kit.ids import uuid7
from app.purchase import schemas as purchase_schemas
from app.purchase.service import _priced
from bench.history import Generator, contact_weights

CHUNK = 20_000

INTERACTION_COLUMNS = (
    "workspace_id", "id", "contact_id", "channel", "direction", "type", "occurred_at",
    "subject", "body", "agent_id", "duration_seconds", "attributes", "feedback_kind",
    "sentiment", "score", "score_scale", "topic", "urgency", "needs_attention",
    "attention_resolved_at", "case_id", "opportunity_id", "campaign_id", "created_at",
    "updated_at",
)  # fmt: skip
INTERACTION_ID_COLUMNS = ("workspace_id", "system", "value", "interaction_id")
PURCHASE_COLUMNS = (
    "workspace_id", "id", "contact_id", "occurred_at", "channel", "store_id", "status",
    "currency", "total_minor", "refunded_minor", "attributes", "created_at", "updated_at",
)  # fmt: skip
ITEM_COLUMNS = (
    "workspace_id", "purchase_id", "line", "sku", "name", "category", "quantity",
    "unit_price_minor", "discount_minor", "refunded_quantity",
)  # fmt: skip
PURCHASE_ID_COLUMNS = ("workspace_id", "system", "value", "purchase_id")


@dataclass
class Rows:
    interactions: list[tuple[Any, ...]]
    interaction_ids: list[tuple[Any, ...]]
    purchases: list[tuple[Any, ...]]
    items: list[tuple[Any, ...]]
    purchase_ids: list[tuple[Any, ...]]


def _interaction_rows(
    workspace: uuid.UUID, bodies: Sequence[dict[str, Any]], rows: Rows, now: datetime
) -> None:
    for index, body in enumerate(bodies):
        data = interaction_schemas.InteractionCreate.model_validate(body)
        row = _row(_Pending(index=index, data=data))
        row["attributes"] = json.dumps(row["attributes"], ensure_ascii=False)
        values = {**row, "workspace_id": workspace, "created_at": now, "updated_at": now}
        rows.interactions.append(tuple(values[column] for column in INTERACTION_COLUMNS))
        for system, value in data.external_ids.items():
            rows.interaction_ids.append((workspace, system, value, row["id"]))


def _purchase_rows(
    workspace: uuid.UUID, bodies: Sequence[dict[str, Any]], rows: Rows, now: datetime
) -> None:
    for body in bodies:
        data = purchase_schemas.PurchaseCreate.model_validate(body)
        total, lines = _priced(data)
        purchase_id = uuid7()
        rows.purchases.append((
            workspace, purchase_id, data.contact_id, data.occurred_at, data.channel,
            data.store_id, data.status, data.total.currency, total, 0,
            json.dumps(dict(data.attributes), ensure_ascii=False), now, now,
        ))  # fmt: skip
        for number, line in enumerate(lines, start=1):
            rows.items.append((
                workspace, purchase_id, number, line.item.sku, line.item.name,
                line.item.category, line.item.quantity, line.unit_price_minor,
                line.discount_minor, 0,
            ))  # fmt: skip
        for system, value in data.external_ids.items():
            rows.purchase_ids.append((workspace, system, value, purchase_id))


async def _copy(connection: asyncpg.Connection, rows: Rows) -> None:
    async with connection.transaction():
        for table, records, columns in (
            ("interactions", rows.interactions, INTERACTION_COLUMNS),
            ("interaction_external_ids", rows.interaction_ids, INTERACTION_ID_COLUMNS),
            ("purchases", rows.purchases, PURCHASE_COLUMNS),
            ("purchase_items", rows.items, ITEM_COLUMNS),
            ("purchase_external_ids", rows.purchase_ids, PURCHASE_ID_COLUMNS),
        ):
            if records:
                await connection.copy_records_to_table(table, records=records, columns=columns)


async def seed_history(
    dsn: str,
    workspace_id: str,
    contact_ids: Sequence[str],
    *,
    interactions: int,
    purchases: int,
    seed: int = 42,
    tag: str = "seed",
) -> dict[str, Any]:
    """Add ``interactions`` and ``purchases`` over ``contact_ids``; counts and timings."""
    rng = Random(seed)
    workspace = uuid.UUID(workspace_id)
    now = datetime.now(UTC)
    generator = Generator(rng, now, tag)
    weights = contact_weights(len(contact_ids))
    shuffled = list(contact_ids)
    rng.shuffle(shuffled)
    language = {contact: "th" if rng.random() < 0.6 else "vi" for contact in shuffled}
    connection = await asyncpg.connect(dsn)
    began = time.perf_counter()
    generate_s = 0.0
    try:
        await connection.execute("SET synchronous_commit = off")
        done_interactions = done_purchases = 0
        while done_interactions < interactions or done_purchases < purchases:
            started = time.perf_counter()
            rows = Rows([], [], [], [], [])
            count = min(CHUNK, interactions - done_interactions)
            chosen = rng.choices(shuffled, weights=weights, k=count)
            _interaction_rows(
                workspace, [generator.interaction(c, language[c]) for c in chosen], rows, now
            )
            share = min(CHUNK // 5, purchases - done_purchases)
            buyers = rng.choices(shuffled, weights=weights, k=share)
            _purchase_rows(workspace, [generator.purchase(c) for c in buyers], rows, now)
            generate_s += time.perf_counter() - started
            await _copy(connection, rows)
            done_interactions += count
            done_purchases += share
            print(
                f"\r  history: {done_interactions:,}/{interactions:,} interactions, "
                f"{done_purchases:,}/{purchases:,} purchases",
                end="",
                file=sys.stderr,
                flush=True,
            )
        print(file=sys.stderr)
        analyze_began = time.perf_counter()
        for table in ("interactions", "interaction_external_ids", "purchases", "purchase_items"):
            await connection.execute(f"VACUUM (ANALYZE) {table}")
        analyze_s = time.perf_counter() - analyze_began
    finally:
        await connection.close()
    total_s = time.perf_counter() - began
    return {
        "interactions": interactions,
        "purchases": purchases,
        "seconds": total_s,
        "generate_and_validate_s": generate_s,
        "vacuum_analyze_s": analyze_s,
        "rows_per_s": (interactions + purchases) / total_s if total_s else None,
    }
