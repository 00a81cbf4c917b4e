"""Sort keys from the Unicode Collation Algorithm (DUCET), as bytes PostgreSQL can order.

The database's collation is deliberately "C" (codepoint order, the same everywhere), which puts
"Zebra" before "apple" and Thai words with a leading vowel (เ แ โ ใ ไ) after every other word.
Names are sorted by this key instead: Thai in dictionary order (leading vowels are skipped at
the primary level), case and accents as secondary and tertiary differences. Vietnamese letters
ă, â, đ, ê, ô, ơ, ư sort with their base letter (root collation, no Vietnamese tailoring).
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache

import pyuca

MAX_KEY_CHARS = 256


@lru_cache(maxsize=1)
def _collator() -> pyuca.Collator:
    return pyuca.Collator()


def sort_key(text: str) -> bytes:
    """Byte string whose ``memcmp`` order is the UCA order of ``text`` (first 256 chars)."""
    weights = _collator().sort_key(unicodedata.normalize("NFC", text[:MAX_KEY_CHARS]))
    # Fixed-width big-endian weights: byte order equals tuple order, and a key that is a
    # prefix of another sorts first, as with tuples.
    return b"".join(weight.to_bytes(3, "big") for weight in weights)
