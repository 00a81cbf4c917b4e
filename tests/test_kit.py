"""Domain-free helpers: money, phones, e-mails, ETags, cursors, ids."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import Field, ValidationError

from app.kit.contact_points import normalize_email, normalize_phone
from app.kit.errors import PreconditionFailed, ValidationFailed
from app.kit.etag import check_if_match, etag_for, not_modified
from app.kit.ids import uuid7
from app.kit.money import Money
from app.kit.schemas import InputSchema, parse_input
from app.kit.validators import Tags


class TestMoney:
    def test_amounts_are_decimal_strings_in_iso_currencies(self) -> None:
        money = Money(amount="1250.50", currency="thb")
        assert money.currency == "THB"
        assert money.model_dump(mode="json") == {"amount": "1250.50", "currency": "THB"}
        assert money.to_minor_units() == 125050

    def test_vnd_has_no_minor_unit(self) -> None:
        assert Money(amount="150000", currency="VND").to_minor_units() == 150000
        with pytest.raises(ValidationError, match="at most 0 decimal places"):
            Money(amount="150000.5", currency="VND")

    @pytest.mark.parametrize(
        "amount", ["1.234", "abc", "", "NaN", "Infinity", "1e20", 12.5, True, None]
    )
    def test_bad_amounts_are_refused(self, amount: object) -> None:
        with pytest.raises(ValidationError):
            Money(amount=amount, currency="THB")  # type: ignore[arg-type]

    @pytest.mark.parametrize("currency", ["ZZZ", "baht", "", "US"])
    def test_unknown_currencies_are_refused(self, currency: str) -> None:
        with pytest.raises(ValidationError):
            Money(amount="1", currency=currency)

    @given(minor=st.integers(min_value=-(10**12), max_value=10**12),
           currency=st.sampled_from(["THB", "VND", "USD", "JPY", "KWD"]))  # fmt: skip
    def test_minor_units_round_trip(self, minor: int, currency: str) -> None:
        assert Money.from_minor_units(minor, currency).to_minor_units() == minor

    def test_integer_input_is_accepted(self) -> None:
        assert Money(amount=100, currency="THB").amount == Decimal(100)  # type: ignore[arg-type]


class TestPhones:
    @pytest.mark.parametrize(
        ("raw", "region", "expected"),
        [
            ("081-234-5678", "TH", "+66812345678"),
            ("02 123 4567", "TH", "+6621234567"),
            ("+66 81 234 5678", "VN", "+66812345678"),
            ("0912 345 678", "VN", "+84912345678"),
            ("+84 912-345-678", "TH", "+84912345678"),
        ],
    )
    def test_numbers_are_stored_in_e164(self, raw: str, region: str, expected: str) -> None:
        assert normalize_phone(raw, region) == expected

    @pytest.mark.parametrize("raw", ["", "12", "hello", "081-234", "+999 1234", "1" * 80])
    def test_invalid_numbers_are_refused(self, raw: str) -> None:
        with pytest.raises(ValueError, match="phone"):
            normalize_phone(raw, "TH")


class TestEmails:
    def test_addresses_are_lower_cased_for_matching(self) -> None:
        assert normalize_email("  Somchai.J@Example.CO.TH ") == "somchai.j@example.co.th"

    def test_international_domains_are_kept(self) -> None:
        assert normalize_email("an@Bücher.example") == "an@bücher.example"

    @pytest.mark.parametrize("raw", ["", "plain", "a@", "@b.com", "a b@c.com", "a@b..com"])
    def test_invalid_addresses_are_refused(self, raw: str) -> None:
        with pytest.raises(ValueError):  # noqa: PT011 - the library words its own messages
            normalize_email(raw)


class TestEtags:
    def test_if_none_match_uses_weak_comparison(self) -> None:
        assert not_modified('"3"', 3)
        assert not_modified('W/"3"', 3)
        assert not_modified('"1", "3"', 3)
        assert not_modified("*", 3)
        assert not not_modified('"2"', 3)
        assert not not_modified(None, 3)

    def test_if_match_uses_strong_comparison(self) -> None:
        check_if_match(None, 4)
        check_if_match('"4"', 4)
        check_if_match("*", 4)
        for stale in ('"3"', 'W/"4"', "garbage"):
            with pytest.raises(PreconditionFailed) as raised:
                check_if_match(stale, 4)
            assert raised.value.headers["ETag"] == etag_for(4)


def test_ids_are_time_ordered_uuid7() -> None:
    ids = [uuid7() for _ in range(1000)]
    assert all(isinstance(value, uuid.UUID) and value.version == 7 for value in ids)
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)


def test_attributes_refuse_numbers_json_storage_cannot_hold() -> None:
    from pydantic import TypeAdapter

    from app.kit.validators import Attributes

    adapter = TypeAdapter(Attributes)
    assert adapter.validate_python({"points": 2**63 - 1}) == {"points": 2**63 - 1}
    with pytest.raises(ValidationError, match="64 bits"):
        adapter.validate_python({"points": 2**64})
    with pytest.raises(ValidationError, match="levels deep"):
        adapter.validate_python({"a": {"b": {"c": {"d": {"e": {"f": 1}}}}}})


@pytest.mark.parametrize(
    ("attributes", "too_deep"),
    [
        ({}, False),
        ({"flat": 1, "list": [1, 2]}, False),
        # The object is level 1, and each value one level below its container.
        ({"a": {"b": {"c": {"d": 1}}}}, False),
        ({"a": {"b": {"c": {"d": {}}}}}, False),
        ({"a": [[[1]]]}, False),
        ({"a": [{}, {"b": [1]}]}, False),
        ({"a": {"b": {"c": {"d": {"e": 1}}}}}, True),
        ({"a": {"b": {"c": {"d": [None]}}}}, True),
        ({"a": [[[[1]]]]}, True),
        ({"ok": 1, "deep": [1, {"b": {"c": [2]}}]}, True),
    ],
)
def test_attributes_nest_at_most_five_levels(attributes: dict[str, Any], too_deep: bool) -> None:
    from pydantic import TypeAdapter

    from app.kit.validators import Attributes

    adapter = TypeAdapter(Attributes)
    if too_deep:
        with pytest.raises(ValidationError, match="levels deep"):
            adapter.validate_python(attributes)
    else:
        assert adapter.validate_python(attributes) == attributes


class _Thing(InputSchema):
    name: str
    tags: Tags = Field(default_factory=list)
    attributes: dict[str, Any] = Field(default_factory=dict)


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"name": "a\x00b"}, "name"),
        ({"name": "ok", "tags": ["x", "y\x00"]}, "tags"),
        ({"name": "ok", "attributes": {"k": ["v\x00"]}}, "attributes"),
        ({"name": "ok", "attributes": {"k\x00": 1}}, "attributes"),
        # Not plain JSON (an integer beyond 64 bits): the fields are looked at one by one.
        ({"name": "ok\x00", "attributes": {"big": 2**70}}, "name"),
    ],
)
def test_a_nul_anywhere_in_an_input_is_refused_naming_its_field(
    raw: dict[str, Any], field: str
) -> None:
    with pytest.raises(ValidationFailed) as refused:
        parse_input(_Thing, raw)
    (error,) = refused.value.errors
    assert "NUL" in error.message
    assert error.field == field


def test_text_that_spells_the_nul_escape_is_accepted() -> None:
    assert parse_input(_Thing, {"name": "\\u0000"}).name == "\\u0000"
