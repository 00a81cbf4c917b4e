"""Normalising phone numbers (E.164) and e-mail addresses for storage and matching."""

from __future__ import annotations

import phonenumbers
from email_validator import EmailNotValidError, validate_email


def normalize_phone(raw: str, default_region: str) -> str:
    """``081-234-5678`` with region TH -> ``+66812345678``; raises ValueError when invalid."""
    text = raw.strip()
    if not text or len(text) > 64:
        raise ValueError("not a phone number")
    try:
        number = phonenumbers.parse(text, default_region.upper())
    except phonenumbers.NumberParseException:
        raise ValueError("not a phone number") from None
    if not phonenumbers.is_valid_number(number):
        raise ValueError("not a valid phone number for its region")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalize_email(raw: str) -> str:
    """A syntactically valid address, lower-cased whole for matching (no DNS lookup)."""
    try:
        result = validate_email(raw.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValueError(str(exc)) from None
    return result.normalized.lower()
