"""One error base class: each subclass carries its HTTP status and a stable ``code``.

Rendered as ``application/problem+json`` (RFC 9457) by ``app.kit.problems`` for REST and as
``extensions.code`` for GraphQL.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, Field


class FieldError(BaseModel):
    field: str = Field(description="Dotted path of the offending input, e.g. `body.emails.0`.")
    message: str


class Problem(BaseModel):
    """An error response (RFC 9457 problem details)."""

    type: str = Field(description="A URI naming the kind of problem.")
    title: str
    status: int
    detail: str
    code: str = Field(description="Stable, machine-readable error code.")
    errors: list[FieldError] = Field(default_factory=list)
    request_id: str | None = None


class CRMError(Exception):
    status_code: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"
    title: ClassVar[str] = "Internal error"

    def __init__(
        self,
        detail: str | None = None,
        *,
        errors: list[FieldError] | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        self.detail = detail or self.title
        self.errors = errors or []
        self.headers = headers or {}
        # Extra members of the problem document (e.g. ``existing_id`` on a duplicate).
        self.extra = extra or {}
        super().__init__(self.detail)

    def problem(self, request_id: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": f"https://crm.dev/problems/{self.code.replace('_', '-')}",
            "title": self.title,
            "status": self.status_code,
            "detail": self.detail,
            "code": self.code,
            "errors": [error.model_dump() for error in self.errors],
        }
        if request_id is not None:
            body["request_id"] = request_id
        body.update(self.extra)
        return body

    @classmethod
    def openapi_response(cls) -> dict[str, Any]:
        # ``model`` registers Problem as a component (FastAPI files it under application/json);
        # the schema is repeated under the media type the error is actually sent as.
        return {
            "model": Problem,
            "description": cls.title,
            "content": {
                "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
            },
        }


class BadRequest(CRMError):
    status_code = 400
    code = "bad_request"
    title = "Bad request"


class MalformedBody(CRMError):
    status_code = 400
    code = "malformed_body"
    title = "The request body is not valid JSON"


class InvalidCursor(CRMError):
    status_code = 400
    code = "invalid_cursor"
    title = "The pagination cursor is invalid"


class Unauthenticated(CRMError):
    status_code = 401
    code = "unauthenticated"
    title = "Missing or invalid API key"

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": 'Bearer realm="crm"'})


class Forbidden(CRMError):
    status_code = 403
    code = "forbidden"
    title = "The API key lacks the scope this needs"


class NotFound(CRMError):
    status_code = 404
    code = "not_found"
    title = "Not found"


class MethodNotAllowed(CRMError):
    status_code = 405
    code = "method_not_allowed"
    title = "Method not allowed"


class NotAcceptable(CRMError):
    status_code = 406
    code = "not_acceptable"
    title = "Not acceptable"


class Conflict(CRMError):
    status_code = 409
    code = "conflict"
    title = "Conflict"


class Duplicate(CRMError):
    status_code = 409
    code = "duplicate"
    title = "A record with the same unique value exists"


class IdempotencyKeyInFlight(CRMError):
    status_code = 409
    code = "idempotency_key_in_progress"
    title = "A request with this Idempotency-Key is still being processed"


class PreconditionFailed(CRMError):
    status_code = 412
    code = "precondition_failed"
    title = "The resource changed since the given ETag"


class PayloadTooLarge(CRMError):
    status_code = 413
    code = "payload_too_large"
    title = "Request body too large"


class UnsupportedMediaType(CRMError):
    status_code = 415
    code = "unsupported_media_type"
    title = "Unsupported media type"


class ValidationFailed(CRMError):
    status_code = 422
    code = "validation_error"
    title = "The request is not valid"


class IdempotencyKeyReused(CRMError):
    status_code = 422
    code = "idempotency_key_reused"
    title = "This Idempotency-Key was used with a different request"


class PreconditionRequired(CRMError):
    status_code = 428
    code = "precondition_required"
    title = "This request needs an If-Match header"


class RateLimited(CRMError):
    status_code = 429
    code = "rate_limited"
    title = "Too many requests"


class ServiceUnavailable(CRMError):
    status_code = 503
    code = "service_unavailable"
    title = "The service cannot reach its database"

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail, headers={"Retry-After": "1"})


COMMON_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: Unauthenticated.openapi_response(),
    403: Forbidden.openapi_response(),
    422: ValidationFailed.openapi_response(),
}
# What any request with a body can get before its endpoint runs: the request guard's size and
# media-type checks, and a body that is not JSON at all (documented by ``UnitOfWorkRoute``).
BODY_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: MalformedBody.openapi_response(),
    413: PayloadTooLarge.openapi_response(),
    415: UnsupportedMediaType.openapi_response(),
}
