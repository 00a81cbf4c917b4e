from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    StringConstraints,
    ValidationInfo,
    field_validator,
)

from app.kit.errors import Problem
from app.kit.schemas import InputSchema, PatchSchema, Schema, UTCDateTime
from app.kit.validators import (
    Attributes,
    ExternalIds,
    ExternalIdValue,
    ShortText,
    SystemName,
)

# The same values as the CHECK constraints of app.models.interaction (a test keeps them equal).
Channel = Literal[
    "phone", "email", "sms", "web", "mobile_app", "push", "store", "social", "chat", "ivr",
    "meeting", "other",
]  # fmt: skip
Direction = Literal["inbound", "outbound"]
InteractionKind = Literal[
    "call", "email", "message", "visit", "meeting", "note", "survey_response", "feedback",
    "complaint", "compliment", "inquiry", "web_event", "app_event", "notification", "other",
]  # fmt: skip
FeedbackKind = Literal["direct", "indirect", "inferred"]
Sentiment = Literal["positive", "neutral", "negative", "mixed"]
ScoreScale = Literal["nps", "csat", "ces"]
Urgency = Literal["low", "normal", "high", "critical"]

# Inclusive bounds of each survey scale.
SCORE_RANGES: dict[str, tuple[int, int]] = {"nps": (0, 10), "csat": (1, 5), "ces": (1, 7)}
MAX_BODY_BYTES = 64 * 1024
MAX_BATCH_ITEMS = 1000
# Interactions are dated within this window: beyond it is a typo or a unit mistake, and
# far-off years would not survive the conversion to UTC.
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)


def _plausible_time(value: datetime) -> datetime:
    try:
        in_utc = value.astimezone(UTC)
    except (OverflowError, ValueError):
        raise ValueError("must be between 1900 and 2199") from None
    if not EARLIEST <= in_utc < LATEST:
        raise ValueError("must be between 1900 and 2199")
    return value


def _iso_text(value: Any) -> Any:
    # Pydantic would also read a number as Unix time, which the API does not offer.
    if not isinstance(value, (str, datetime)):
        raise ValueError(
            "expected an ISO 8601 timestamp with an offset, e.g. 2026-01-01T09:00+07:00"
        )
    return value


def _bounded_body(value: str) -> str:
    if len(value) * 4 <= MAX_BODY_BYTES:  # no character takes more than 4 bytes in UTF-8
        return value
    size = len(value.encode("utf-8", errors="surrogatepass"))
    if size > MAX_BODY_BYTES:
        raise ValueError(f"at most {MAX_BODY_BYTES} bytes in UTF-8, got {size}")
    return value


Timestamp = Annotated[UTCDateTime, BeforeValidator(_iso_text), AfterValidator(_plausible_time)]
Subject = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
Body = Annotated[
    str,
    Field(max_length=MAX_BODY_BYTES, description="At most 64 KiB of UTF-8."),
    AfterValidator(_bounded_body),
]
Topic = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Duration = Annotated[int, Strict(), Field(ge=0, le=2_147_483_647)]
Score = Annotated[int, Strict(), Field(ge=0, le=10)]

NEEDS_ATTENTION_RULES = (
    "`needs_attention` is derived: true when the feedback's sentiment is `negative`, its "
    "urgency `high` or `critical`, or its score a detractor's (NPS 0-6, CSAT 1-2, CES 5-7)."
)


class FeedbackIn(InputSchema):
    """What the contact said or showed about us, and how it was captured."""

    kind: FeedbackKind = Field(
        description="`direct` (asked: a survey, a rating), `indirect` (volunteered: a review, a "
        "post) or `inferred` (derived, e.g. by sentiment analysis of a call)."
    )
    sentiment: Sentiment | None = None
    # ``scale`` comes before ``score`` so that the score's check can see it.
    scale: ScoreScale | None = Field(
        default=None, description="The survey scale of `score`: `nps` 0-10, `csat` 1-5, `ces` 1-7."
    )
    score: Score | None = Field(
        default=None,
        validate_default=True,
        description="A survey score, within the range of its `scale` (required with a score).",
    )
    topic: Topic | None = Field(default=None, description="What it is about, e.g. `delivery`.")
    urgency: Urgency | None = None

    @field_validator("score", mode="after")
    @classmethod
    def _score_fits_scale(cls, score: int | None, info: ValidationInfo) -> int | None:
        if "scale" not in info.data:
            return score  # the scale itself is invalid and reported as such
        scale = info.data["scale"]
        if score is None:
            if scale is not None:
                raise ValueError("a scale needs a score")
            return None
        if scale is None:
            raise ValueError("a score needs its scale (nps, csat or ces)")
        low, high = SCORE_RANGES[scale]
        if not low <= score <= high:
            raise ValueError(f"{scale} scores are {low} to {high}")
        return score


class FeedbackPatch(InputSchema):
    """Merged into the stored feedback member by member; ``null`` removes a member."""

    kind: FeedbackKind | None = None
    sentiment: Sentiment | None = None
    scale: ScoreScale | None = None
    score: Score | None = None
    topic: Topic | None = None
    urgency: Urgency | None = None


class InteractionCreate(InputSchema):
    contact_id: uuid.UUID = Field(description="The contact, in this workspace.")
    channel: Channel
    direction: Direction | None = None
    type: InteractionKind
    occurred_at: Timestamp = Field(description="When it happened, with an offset.")
    subject: Subject | None = None
    body: Body | None = None
    agent_id: ShortText | None = Field(default=None, description="Who handled it on our side.")
    duration_seconds: Duration | None = None
    attributes: Attributes = Field(default_factory=dict)
    external_ids: ExternalIds = Field(
        default_factory=dict,
        description='Partner keys, e.g. `{"zendesk": "T-1881"}`. Creating an interaction '
        "with a key that is already stored creates nothing and returns the stored one.",
    )
    feedback: FeedbackIn | None = None
    attention_resolved_at: Timestamp | None = Field(
        default=None,
        description="When feedback needing attention was dealt with; only for such feedback.",
    )
    case_id: uuid.UUID | None = Field(default=None, description="A case of this workspace.")
    opportunity_id: uuid.UUID | None = Field(
        default=None, description="An opportunity of this workspace."
    )
    campaign_id: uuid.UUID | None = Field(default=None, description="A campaign of this workspace.")


class InteractionUpdate(PatchSchema):
    """Merge patch: ``attributes``, ``external_ids`` and ``feedback`` are merged key by key, a
    ``null`` value removing the key; ``null`` for the whole member empties it. Set
    ``attention_resolved_at`` to mark feedback needing attention as dealt with (``null``
    re-opens it)."""

    not_nullable = frozenset({"contact_id", "channel", "type", "occurred_at"})

    contact_id: uuid.UUID | None = None
    channel: Channel | None = None
    direction: Direction | None = None
    type: InteractionKind | None = None
    occurred_at: Timestamp | None = None
    subject: Subject | None = None
    body: Body | None = None
    agent_id: ShortText | None = None
    duration_seconds: Duration | None = None
    attributes: dict[str, Any] | None = None
    external_ids: dict[SystemName, ExternalIdValue | None] | None = None
    feedback: FeedbackPatch | None = None
    attention_resolved_at: Timestamp | None = None
    case_id: uuid.UUID | None = None
    opportunity_id: uuid.UUID | None = None
    campaign_id: uuid.UUID | None = None


class Feedback(Schema):
    kind: FeedbackKind
    sentiment: Sentiment | None
    scale: ScoreScale | None
    score: int | None
    topic: str | None
    urgency: Urgency | None


class Interaction(Schema):
    """One touch with a contact on any channel: a call, an e-mail, a visit, a survey answer."""

    id: uuid.UUID
    contact_id: uuid.UUID
    channel: Channel
    direction: Direction | None
    type: InteractionKind
    occurred_at: UTCDateTime
    subject: str | None
    body: str | None
    agent_id: str | None
    duration_seconds: int | None
    attributes: dict[str, Any]
    external_ids: dict[str, str]
    feedback: Feedback | None
    needs_attention: bool = Field(
        description=f"{NEEDS_ATTENTION_RULES} Stays true once resolved; open = needing "
        "attention and not resolved."
    )
    attention_resolved_at: UTCDateTime | None
    case_id: uuid.UUID | None
    opportunity_id: uuid.UUID | None
    campaign_id: uuid.UUID | None
    created_at: UTCDateTime
    updated_at: UTCDateTime
    version: int


# -- batch ingest ----------------------------------------------------------------------------


class InteractionBatch(BaseModel):
    # Not an InputSchema: items are validated one by one, so that a bad item (a NUL character
    # included) is an error of that item rather than of the whole batch.
    model_config = ConfigDict(extra="forbid")

    items: Annotated[
        list[dict[str, Any]],
        Field(
            min_length=1,
            max_length=MAX_BATCH_ITEMS,
            description="Up to 1,000 interactions, each with the fields of "
            "`InteractionCreate`. An item whose external id is already stored (or listed by "
            "an earlier item) creates nothing and is reported `existing` with the stored id.",
        ),
    ]
    all_or_none: Annotated[bool, Strict()] = Field(
        default=False,
        description="When true, any failed item rolls the whole batch back (a 422 whose "
        "`results` lists every item); when false, each item succeeds or fails on its own.",
    )


class InteractionBatchItemProblem(Problem):
    """The problem the item alone would have had; ``errors`` name fields of the item."""

    existing_id: uuid.UUID | None = None
    merged_into: uuid.UUID | None = None


class InteractionBatchItemResult(Schema):
    index: int = Field(description="Position of the item in the request.")
    status: Literal["created", "existing", "error", "rolled_back"] = Field(
        description="`existing`: an interaction with one of the item's external ids was "
        "already stored, and is returned unchanged. `rolled_back` only in the 422 of an "
        "`all_or_none` batch: the item was valid, but nothing was written."
    )
    id: uuid.UUID | None = Field(default=None, description="The interaction created or found.")
    error: InteractionBatchItemProblem | None = None


class InteractionBatchResult(Schema):
    results: list[InteractionBatchItemResult]
    created: int
    existing: int
    errors: int = Field(description="How many items failed.")


class InteractionBatchProblem(Problem):
    """A 422. For an `all_or_none` batch with a failed item, `results` holds every item's
    result and `errors` each failed field as `items.<index>.<field>`."""

    results: list[InteractionBatchItemResult] = Field(default_factory=list)
