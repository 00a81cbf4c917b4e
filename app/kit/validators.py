"""Reusable field types for request bodies: bounded text, tags, JSON attributes, ids."""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated, Any
from zoneinfo import available_timezones

import orjson
from babel import Locale, UnknownLocaleError
from pydantic import AfterValidator, Field, StringConstraints

MAX_ATTRIBUTES_BYTES = 16 * 1024
MAX_ATTRIBUTES_DEPTH = 5


@lru_cache(maxsize=1)
def _timezones() -> frozenset[str]:
    return frozenset(available_timezones())


@lru_cache(maxsize=1)
def _countries() -> frozenset[str]:
    codes = [str(code) for code in Locale("en").territories]
    return frozenset(code for code in codes if len(code) == 2 and code.isalpha())


def _timezone(value: str) -> str:
    if value not in _timezones():
        raise ValueError(f"{value!r} is not an IANA time zone")
    return value


def _locale(value: str) -> str:
    try:
        parsed = Locale.parse(value, sep="-")
    except (UnknownLocaleError, ValueError):
        raise ValueError(f"{value!r} is not a known locale (BCP 47, e.g. th-TH)") from None
    return "-".join(part for part in (parsed.language, parsed.territory) if part)


def _country(value: str) -> str:
    value = value.upper()
    if value not in _countries():
        raise ValueError(f"{value!r} is not an ISO 3166-1 alpha-2 country code")
    return value


def _nested_deeper_than(value: dict[str, Any], limit: int) -> bool:
    """Whether anything sits deeper than ``limit`` levels: the object is level 1, and each
    value (a scalar too) one level below its container. A flat object, the usual case,
    costs one pass over its values."""
    waiting: list[tuple[Any, int]] = [(value, 1)]
    while waiting:
        node, level = waiting.pop()
        items = node.values() if isinstance(node, dict) else node
        if level >= limit and items:
            return True
        for item in items:
            if isinstance(item, (dict, list)):
                waiting.append((item, level + 1))
    return False


def _attributes(value: dict[str, Any]) -> dict[str, Any]:
    try:
        size = len(orjson.dumps(value))
    except TypeError:  # orjson (and so the database driver) takes 64-bit integers only
        raise ValueError("numbers must fit in 64 bits") from None
    if size > MAX_ATTRIBUTES_BYTES:
        raise ValueError(f"at most {MAX_ATTRIBUTES_BYTES} bytes of JSON, got {size}")
    if _nested_deeper_than(value, MAX_ATTRIBUTES_DEPTH):
        raise ValueError(f"nested at most {MAX_ATTRIBUTES_DEPTH} levels deep")
    if any(len(key) > 64 or not key for key in value):
        raise ValueError("keys must be 1 to 64 characters")
    return value


def _unique_tags(tags: list[str]) -> list[str]:
    seen: dict[str, str] = {}
    for tag in tags:
        seen.setdefault(tag.casefold(), tag)
    return list(seen.values())


TimeZone = Annotated[str, Field(min_length=1, max_length=64), AfterValidator(_timezone)]
LocaleTag = Annotated[str, Field(min_length=2, max_length=35), AfterValidator(_locale)]
Country = Annotated[str, Field(min_length=2, max_length=2), AfterValidator(_country)]
Tag = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
Tags = Annotated[list[Tag], Field(max_length=50), AfterValidator(_unique_tags)]
Attributes = Annotated[
    dict[str, Any],
    AfterValidator(_attributes),
    Field(description=f"Free-form JSON object, at most {MAX_ATTRIBUTES_BYTES} bytes."),
]
SystemName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=64,
                      pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$"),
]  # fmt: skip
ExternalIdValue = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255)
]
ExternalIds = Annotated[
    dict[SystemName, ExternalIdValue],
    Field(max_length=20, description='Partner keys, e.g. `{"shopify": "7781", "pos": "C-9"}`.'),
]
ShortText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
