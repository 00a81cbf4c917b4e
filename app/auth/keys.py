"""API key secrets: ``crm_<prefix>_<secret>``.

The prefix is public and indexes the row; the whole key is stored only as a SHA-256 digest.
A slow password hash would add milliseconds to every request for no gain: these keys carry
256 bits of randomness, so a digest cannot be brute-forced.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

_KEY_PATTERN = re.compile(r"^crm_([a-z0-9]{12})_([A-Za-z0-9_-]{43})$")


@dataclass(frozen=True)
class NewKey:
    prefix: str
    token: str
    digest: str


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def generate() -> NewKey:
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    prefix = "".join(secrets.choice(alphabet) for _ in range(12))
    token = f"crm_{prefix}_{secrets.token_urlsafe(32)}"
    return NewKey(prefix=prefix, token=token, digest=digest(token))


def parse_prefix(token: str) -> str | None:
    match = _KEY_PATTERN.match(token)
    return match.group(1) if match else None


def matches(token: str, stored_digest: str) -> bool:
    return hmac.compare_digest(digest(token), stored_digest)
