"""How many points a purchase earns: exact integer arithmetic, rounded down once per purchase.

points = floor(sum(line amount x category multiplier) x tier multiplier x birthday multiplier
               x points per spend / spend), plus the first-purchase bonus.

Multipliers are hundredths (150 = x1.5), amounts minor units, so nothing is ever a float. A
purchase without lines counts its total at x1. A purchase below the rate's minimum spend
earns nothing (no bonus either).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class PurchaseLine:
    amount_minor: int
    category: str | None


def purchase_points(
    *,
    spend_minor: int,
    points_per_spend: int,
    min_spend_minor: int,
    total_minor: int,
    lines: Sequence[PurchaseLine],
    category_multipliers: Mapping[str, int],
    tier_multiplier: int,
    birthday_multiplier: int,
    first_purchase_bonus: int,
) -> tuple[int, dict[str, Any]]:
    """The points and how they were reached (stored with the entry)."""
    if total_minor < min_spend_minor or total_minor <= 0:
        return 0, {}
    if lines:
        weighted = sum(
            line.amount_minor * category_multipliers.get(line.category or "", 100) for line in lines
        )
    else:
        weighted = total_minor * 100
    numerator = weighted * tier_multiplier * birthday_multiplier * points_per_spend
    base = numerator // (100 * 100 * 100 * spend_minor)
    return base + first_purchase_bonus, {
        "base_points": base,
        "bonus_points": first_purchase_bonus,
        "tier_multiplier": tier_multiplier,
        "birthday_multiplier": birthday_multiplier,
    }
