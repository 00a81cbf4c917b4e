from __future__ import annotations

import uuid

from app.kit.errors import Conflict, Duplicate, FieldError, NotFound, ValidationFailed


class ProgramNotFound(NotFound):
    title = "No such loyalty programme"


class TierNotFound(NotFound):
    title = "No such tier"


class AccountNotFound(NotFound):
    title = "No such loyalty account"


class EntryNotFound(NotFound):
    title = "No such ledger entry"


class RedemptionNotFound(NotFound):
    title = "No such redemption"


class RewardNotFound(NotFound):
    title = "No such reward"


class AlreadyEnrolled(Duplicate):
    title = "The contact is already enrolled in this programme"

    def __init__(self, existing_id: uuid.UUID) -> None:
        super().__init__(
            "The contact already has an account in this programme",
            errors=[FieldError(field="contact_id", message="already enrolled")],
            extra={"existing_id": str(existing_id)},
        )


class DuplicateTier(Duplicate):
    title = "Another tier has this name or threshold"


class InsufficientPoints(Conflict):
    code = "insufficient_points"
    title = "Not enough available points"

    def __init__(self, *, available: int, needed: int) -> None:
        super().__init__(
            f"{needed} points are needed and {max(available, 0)} are available",
            errors=[FieldError(field="points", message=f"at most {max(available, 0)}")],
            extra={"available": available, "needed": needed},
        )


class OutOfStock(Conflict):
    code = "out_of_stock"
    title = "The reward is out of stock"


class RewardUnavailable(Conflict):
    code = "reward_unavailable"
    title = "The reward cannot be redeemed now"


class TierTooLow(Conflict):
    code = "tier_too_low"
    title = "The member's tier is below the reward's minimum"


class AlreadyReversed(Conflict):
    code = "already_reversed"
    title = "The redemption was already reversed"


class ReferenceReused(Conflict):
    code = "reference_reused"
    title = "This reference was already used for a different entry"

    def __init__(self, existing_id: uuid.UUID) -> None:
        super().__init__(
            "An entry with this reference exists with different values",
            errors=[FieldError(field="reference", message="already used")],
            extra={"existing_id": str(existing_id)},
        )


class ProgramInactive(Conflict):
    title = "The programme is inactive"


class InvalidRule(ValidationFailed):
    title = "The programme's rules are not valid"
