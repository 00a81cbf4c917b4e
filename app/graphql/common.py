"""GraphQL types more than one domain uses."""

from __future__ import annotations

import strawberry

from app.kit.money import Money


@strawberry.type(name="ExternalId")
class ExternalIdType:
    system: str
    value: str

    @classmethod
    def from_dict(cls, external_ids: dict[str, str]) -> list[ExternalIdType]:
        return [cls(system=system, value=value) for system, value in sorted(external_ids.items())]


@strawberry.input
class ExternalIdInput:
    system: str
    value: str | None = strawberry.field(
        default=None, description="In an update, null removes the key."
    )


def external_ids_dict(items: list[ExternalIdInput] | None) -> dict[str, str | None] | None:
    """The REST shape, ``{"system": "value"}``, of a list of external id inputs."""
    if items is None:
        return None
    return {item.system: item.value for item in items}


@strawberry.type(name="Money")
class MoneyType:
    amount: str = strawberry.field(description='Decimal string, e.g. "1250.50".')
    currency: str = strawberry.field(description="ISO 4217 code.")

    @classmethod
    def from_money(cls, money: Money) -> MoneyType:
        return cls(amount=format(money.amount, "f"), currency=money.currency)


@strawberry.input(description='An amount, e.g. {amount: "1250.50", currency: "THB"}.')
class MoneyInput:
    amount: str
    currency: str
