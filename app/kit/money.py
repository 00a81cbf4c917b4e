"""Money as a decimal string and an ISO 4217 code, with the currency's own minor unit.

Minor units come from CLDR (through Babel): THB has 2 decimals, VND and JPY none.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Annotated, Any

from babel.numbers import get_currency_precision, list_currencies
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer

MAX_AMOUNT = Decimal("1e15")


@lru_cache(maxsize=1)
def _known_currencies() -> frozenset[str]:
    return frozenset(code for code in list_currencies() if len(code) == 3 and code.isupper())


def currency_exponent(code: str) -> int:
    return int(get_currency_precision(code))


def validate_currency(code: str) -> str:
    code = code.strip().upper()
    if code not in _known_currencies():
        raise ValueError(f"{code!r} is not an ISO 4217 currency code")
    return code


def _parse_amount(value: Any) -> Decimal:
    # Floats are refused: 0.1 + 0.2 is not money. Decimals come from code, not from JSON.
    if isinstance(value, bool) or not isinstance(value, (str, int, Decimal)):
        raise ValueError('amount must be a decimal string such as "1250.50"')
    try:
        amount = value if isinstance(value, Decimal) else Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError('amount must be a decimal string such as "1250.50"') from None
    if not amount.is_finite():
        raise ValueError("amount must be finite")
    if abs(amount) >= MAX_AMOUNT:
        raise ValueError("amount is out of range")
    return amount


Currency = Annotated[str, Field(min_length=3, max_length=3), AfterValidator(validate_currency)]
Amount = Annotated[
    Decimal,
    BeforeValidator(_parse_amount),
    PlainSerializer(lambda d: format(d, "f"), return_type=str),
]


class Money(BaseModel):
    """An amount in one currency, e.g. `{"amount": "1250.50", "currency": "THB"}`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    amount: Amount = Field(description="Decimal string, at most the currency's minor digits.")
    currency: Currency = Field(description="ISO 4217 code.")

    def model_post_init(self, context: Any, /) -> None:
        exponent = currency_exponent(self.currency)
        places = -int(self.amount.as_tuple().exponent)
        if places > exponent:
            raise ValueError(
                f"{self.currency} allows at most {exponent} decimal places, got {places}"
            )

    def to_minor_units(self) -> int:
        return int(self.amount.scaleb(currency_exponent(self.currency)))

    @classmethod
    def from_minor_units(cls, minor: int, currency: str) -> Money:
        exponent = currency_exponent(currency)
        return cls(amount=Decimal(minor).scaleb(-exponent), currency=currency)
