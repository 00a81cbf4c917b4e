"""GraphQL types more than one domain uses."""

from __future__ import annotations

from collections.abc import Iterable

import strawberry
from strawberry.types.nodes import FragmentSpread, InlineFragment, SelectedField, Selection

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


def selects(selections: Iterable[Selection], *path: str) -> bool:
    """Whether the query asks for ``path`` (field names, one level each) among
    ``selections``, fragments included. Errs towards yes: a caller skips work on a no."""
    first, *rest = path
    for selection in selections:
        if isinstance(selection, SelectedField):
            if selection.name == first and (not rest or selects(selection.selections, *rest)):
                return True
        elif isinstance(selection, FragmentSpread | InlineFragment):
            if selects(selection.selections, *path):
                return True
        else:  # pragma: no cover - a kind of selection this does not know
            return True
    return False
