"""Entity tags from a row's version column: ``ETag``, ``If-None-Match`` and ``If-Match``."""

from __future__ import annotations

from app.kit.errors import PreconditionFailed


def etag_for(version: int) -> str:
    return f'"{version}"'


def _tags(header: str) -> list[str]:
    return [tag.strip().removeprefix("W/") for tag in header.split(",") if tag.strip()]


def not_modified(if_none_match: str | None, version: int) -> bool:
    """True when the client's cached copy is current (weak comparison, RFC 9110 13.1.2)."""
    if not if_none_match:
        return False
    tags = _tags(if_none_match)
    return "*" in tags or etag_for(version) in tags


def check_if_match(if_match: str | None, version: int) -> None:
    """Refuse a write made against a stale copy (strong comparison, RFC 9110 13.1.1)."""
    if if_match is None:
        return
    tags = [tag.strip() for tag in if_match.split(",") if tag.strip()]
    if "*" in tags or etag_for(version) in tags:
        return
    raise PreconditionFailed(
        f"The resource is at version {version}; fetch it again and reapply your change",
        headers={"ETag": etag_for(version)},
    )
