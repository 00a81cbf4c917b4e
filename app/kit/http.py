"""Small helpers for conditional requests and resource responses."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Header, Query
from pydantic import BaseModel
from starlette.responses import Response

from app.kit.etag import etag_for, not_modified
from app.kit.pagination import DEFAULT_LIMIT, MAX_LIMIT

IfMatch = Annotated[
    str | None,
    Header(alias="If-Match", max_length=512,
           description="The ETag the change was made against; a stale one is a 412."),
]  # fmt: skip
IF_NONE_MATCH_MAX_LENGTH = 2048
IfNoneMatch = Annotated[
    str | None,
    Header(alias="If-None-Match", max_length=IF_NONE_MATCH_MAX_LENGTH,
           description="A cached ETag; a 304 with no body when it is still current."),
]  # fmt: skip
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size (1-200).")]
Cursor = Annotated[
    str | None, Query(max_length=1024, description="`next_cursor` of the previous page.")
]


def json_response(
    body: BaseModel, *, status_code: int = 200, version: int | None = None,
    headers: dict[str, str] | None = None,
) -> Response:  # fmt: skip
    all_headers = dict(headers or {})
    if version is not None:
        all_headers["ETag"] = etag_for(version)
    return Response(
        content=body.__pydantic_serializer__.to_json(body),
        status_code=status_code,
        media_type="application/json",
        headers=all_headers,
    )


def conditional_document(body: bytes, *, version: int, if_none_match: str | None) -> Response:
    """``conditional_get`` for a document already serialised (by the database)."""
    etag = etag_for(version)
    if not_modified(if_none_match, version):
        return Response(status_code=304, headers={"ETag": etag})
    return Response(content=body, media_type="application/json", headers={"ETag": etag})


def conditional_get(body: BaseModel, *, version: int, if_none_match: str | None) -> Response:
    if not_modified(if_none_match, version):
        return Response(status_code=304, headers={"ETag": etag_for(version)})
    return json_response(body, version=version)


DEFAULT_PAGE: dict[str, Any] = {"limit": DEFAULT_LIMIT}
