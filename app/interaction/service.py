"""Interactions: every touch with a contact, on any channel, and the feedback it carried."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, NoReturn

import orjson
from sqlalchemy import func, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.dependencies import AuthContext
from app.contact.references import register_contact_reference
from app.events import outbox
from app.interaction import schemas
from app.interaction.exceptions import (
    BatchFailed,
    DuplicateInteraction,
    InteractionContactMerged,
    InteractionContactNotFound,
    InteractionNotFound,
)
from app.interaction.links import LINK_FIELDS, existing_targets
from app.interaction.listeners import CreatedInteraction, interactions_created
from app.interaction.repository import InteractionFilters, InteractionRepository
from app.kit.changes import changed_fields
from app.kit.errors import CRMError, FieldError, ValidationFailed
from app.kit.etag import check_if_match
from app.kit.ids import uuid7
from app.kit.merge_patch import merge_patch
from app.kit.pagination import Keyset, SortField, _encode, parse_datetime, parse_sort
from app.kit.schemas import parse_input, validate_value
from app.kit.validators import Attributes, ExternalIds
from app.models import Interaction

SORTS = {
    "occurred_at": SortField(Interaction.occurred_at, parse_datetime),
    "created_at": SortField(Interaction.created_at, parse_datetime),
}
DEFAULT_SORT = "-occurred_at"
MAX_PER_CONTACT = 100

# What a caller asks of the interaction list (the same fields the repository filters on).
InteractionQuery = InteractionFilters

# NPS 0-6 are detractors; CSAT 1-2 unsatisfied; CES 5-7 "hard to deal with".
_DETRACTOR: dict[str, Callable[[int], bool]] = {
    "nps": lambda score: score <= 6,
    "csat": lambda score: score <= 2,
    "ces": lambda score: score >= 5,
}


def needs_attention(feedback: schemas.FeedbackIn | None) -> bool:
    """Whether feedback calls for someone to act: the rule routing and cases rely on.

    True when the sentiment is ``negative``, the urgency ``high`` or ``critical``, or the score
    a detractor's: NPS 0-6, CSAT 1-2 (of 5), CES 5-7 (of 7, higher meaning harder). ``mixed``
    sentiment alone does not count: most mixed feedback is a compliment with a remark.
    """
    if feedback is None:
        return False
    if feedback.sentiment == "negative" or feedback.urgency in ("high", "critical"):
        return True
    if feedback.score is not None and feedback.scale is not None:
        return _DETRACTOR[feedback.scale](feedback.score)
    return False


def _move_interactions(
    session: AsyncSession,
    workspace_id: uuid.UUID,
    survivor_id: uuid.UUID,
    absorbed_ids: Sequence[uuid.UUID],
) -> Any:
    # A new version: the moved interactions' ETags must change with their contact_id.
    return session.execute(
        text(
            "UPDATE interactions SET contact_id = :survivor, version = version + 1, "
            "updated_at = now() WHERE workspace_id = :workspace_id "
            "AND contact_id = ANY(:absorbed)"
        ),
        {"survivor": survivor_id, "workspace_id": workspace_id, "absorbed": list(absorbed_ids)},
    )


# Merging contacts re-points their interactions to the survivor.
register_contact_reference("interactions", _move_interactions)


@dataclass
class _Outcome:
    status: Literal["created", "existing", "error"]
    interaction_id: uuid.UUID | None = None
    error: CRMError | None = None


@dataclass
class _Pending:
    """A valid item on its way in."""

    index: int
    data: schemas.InteractionCreate
    id: uuid.UUID = field(default_factory=uuid7)
    # The earlier item of the batch with one of the same external ids, if any.
    same_as: int | None = None


class InteractionService:
    # -- reading -----------------------------------------------------------------------------
    async def get(
        self, session: AsyncSession, auth: AuthContext, interaction_id: uuid.UUID
    ) -> Interaction:
        """Raises: InteractionNotFound: no such interaction in the caller's workspace."""
        found = await InteractionRepository(session).get(auth.workspace_id, interaction_id)
        if found is None:
            raise InteractionNotFound()
        return found

    async def get_many(
        self, session: AsyncSession, auth: AuthContext, interaction_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, Interaction]:
        """Interactions of the caller's workspace by id; others are simply absent."""
        if not interaction_ids:
            return {}
        rows = await InteractionRepository(session).get_many(auth.workspace_id, interaction_ids)
        return {row.id: row for row in rows}

    async def get_by_external_id(
        self, session: AsyncSession, auth: AuthContext, system: str, value: str
    ) -> Interaction:
        """Raises: InteractionNotFound: no interaction has this partner key."""
        found = await InteractionRepository(session).by_external_id(
            auth.workspace_id, system, value
        )
        if found is None:
            raise InteractionNotFound(f"No interaction has {system} id {value!r}")
        return await self.get(session, auth, found)

    async def find(
        self,
        session: AsyncSession,
        auth: AuthContext,
        query: InteractionQuery,
        *,
        limit: int,
        cursor: str | None,
        sort: str | None,
    ) -> tuple[list[Interaction], str | None]:
        """A page of interactions, newest first unless ``sort`` says otherwise.

        ``query.contact_id`` gives one contact's history (the contact is not checked: an
        unknown one simply has none).

        Raises:
            ValidationFailed: unknown sort field.
            InvalidCursor: the cursor is malformed or from another listing.
        """
        keyset = Keyset.build(
            sort=parse_sort(sort, SORTS, DEFAULT_SORT),
            allowed=SORTS,
            id_column=Interaction.id,
            limit=limit,
            cursor=cursor,
        )
        rows = await InteractionRepository(session).find(auth.workspace_id, query, keyset)
        column = keyset.field.column.key
        return keyset.page(rows, lambda row: (getattr(row, column), row.id))

    def cursor_of(self, interaction: Interaction, sort: str | None) -> str:
        """The cursor that continues a listing in ``sort`` order after ``interaction``."""
        order = parse_sort(sort, SORTS, DEFAULT_SORT)
        value = getattr(interaction, SORTS[order.name].column.key)
        return _encode([order.token, value.isoformat(), str(interaction.id)])

    async def recent_for_contacts(
        self,
        session: AsyncSession,
        auth: AuthContext,
        contact_ids: Sequence[uuid.UUID],
        limit: int,
    ) -> dict[uuid.UUID, list[Interaction]]:
        """Each contact's newest ``limit`` interactions (newest first), in one statement.

        Contacts without any are absent from the result.

        Raises:
            ValidationFailed: ``limit`` is not 1 to 100.
        """
        rows = await InteractionRepository(session).latest_per_contact(
            auth.workspace_id, contact_ids, _per_contact(limit)
        )
        return _grouped(rows)

    async def open_feedback_for_contacts(
        self,
        session: AsyncSession,
        auth: AuthContext,
        contact_ids: Sequence[uuid.UUID],
        limit: int,
    ) -> dict[uuid.UUID, list[Interaction]]:
        """Each contact's newest ``limit`` interactions whose feedback needs attention and is
        not resolved, newest first, in one statement. Contacts without any are absent.

        Raises:
            ValidationFailed: ``limit`` is not 1 to 100.
        """
        rows = await InteractionRepository(session).latest_per_contact(
            auth.workspace_id, contact_ids, _per_contact(limit), open_feedback_only=True
        )
        return _grouped(rows)

    async def counts_by_channel(
        self, session: AsyncSession, auth: AuthContext, contact_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, dict[str, int]]:
        """How many interactions each contact has per channel, in one statement.

        Contacts without any are absent; channels without any are absent from a contact's
        counts.
        """
        counts: dict[uuid.UUID, dict[str, int]] = {}
        for contact_id, channel, count in await InteractionRepository(session).counts_by_channel(
            auth.workspace_id, contact_ids
        ):
            counts.setdefault(contact_id, {})[channel] = count
        return counts

    # -- writing -----------------------------------------------------------------------------
    async def create(
        self, session: AsyncSession, auth: AuthContext, data: schemas.InteractionCreate
    ) -> tuple[Interaction, bool]:
        """Record an interaction, idempotently by external id.

        Returns the interaction and whether it was created: when one of ``data.external_ids``
        is already stored, nothing is written and the stored interaction is returned (also
        when a concurrent request stored it first).

        Raises:
            InteractionContactNotFound: no such contact in the workspace.
            InteractionContactMerged: the contact was merged into another one.
            ValidationFailed: a link (case, opportunity, campaign) does not exist, or
                ``attention_resolved_at`` is set on feedback that needs no attention.
        """
        outcomes = await self._ingest(session, auth, [(0, data)])
        outcome = outcomes[0]
        if outcome.error is not None or outcome.interaction_id is None:
            raise outcome.error or CRMError("The interaction was not recorded")
        interaction = await self.get(session, auth, outcome.interaction_id)
        return interaction, outcome.status == "created"

    async def ingest(
        self, session: AsyncSession, auth: AuthContext, batch: schemas.InteractionBatch
    ) -> schemas.InteractionBatchResult:
        """Record up to 1,000 interactions with set-based statements, reporting each item.

        Each item is validated on its own; an item whose external id is stored already (or
        listed by an earlier item) is ``existing``; the others are created together.

        Raises:
            BatchFailed: ``all_or_none`` was asked and an item failed; nothing is written.
        """
        outcomes: dict[int, _Outcome] = {}
        parsed: list[tuple[int, schemas.InteractionCreate]] = []
        for index, raw in enumerate(batch.items):
            try:
                parsed.append((index, parse_input(schemas.InteractionCreate, raw)))
            except CRMError as error:
                outcomes[index] = _Outcome("error", error=error)
        if batch.all_or_none and outcomes:
            # Invalid items are known already: no need to look anything up.
            self._fail_batch(len(batch.items), outcomes)
        outcomes.update(
            await self._ingest(session, auth, parsed, dry_run_on_error=batch.all_or_none)
        )
        if batch.all_or_none and any(outcome.error for outcome in outcomes.values()):
            self._fail_batch(len(batch.items), outcomes)
        ordered = [outcomes[index] for index in range(len(batch.items))]
        return schemas.InteractionBatchResult(
            results=[_result(index, outcome) for index, outcome in enumerate(ordered)],
            created=sum(1 for outcome in ordered if outcome.status == "created"),
            existing=sum(1 for outcome in ordered if outcome.status == "existing"),
            errors=sum(1 for outcome in ordered if outcome.status == "error"),
        )

    async def update(
        self,
        session: AsyncSession,
        auth: AuthContext,
        interaction_id: uuid.UUID,
        patch: schemas.InteractionUpdate,
        *,
        if_match: str | None = None,
    ) -> Interaction:
        """Apply a merge patch; ``needs_attention`` follows the resulting feedback.

        Raises:
            InteractionNotFound: no such interaction in the caller's workspace.
            PreconditionFailed: ``if_match`` names an older version.
            InteractionContactNotFound, InteractionContactMerged: as for ``create``.
            DuplicateInteraction: an external id belongs to another interaction.
            ValidationFailed: as for ``create``; or merged feedback or attributes are invalid.
        """
        repository = InteractionRepository(session)
        interaction = await repository.get(auth.workspace_id, interaction_id, for_update=True)
        if interaction is None:
            raise InteractionNotFound()
        check_if_match(if_match, interaction.version)
        before = self.to_schema(interaction).model_dump(mode="json")
        changes = patch.changes()

        if "contact_id" in changes and changes["contact_id"] != interaction.contact_id:
            await self._check_contacts(repository, auth, [changes["contact_id"]])
            interaction.contact_id = changes["contact_id"]
        for name in (
            "channel", "direction", "type", "occurred_at", "subject", "body", "agent_id",
            "duration_seconds",
        ):  # fmt: skip
            if name in changes:
                setattr(interaction, name, changes[name])
        if "attributes" in changes:
            patched = merge_patch(interaction.attributes, changes["attributes"]) or {}
            interaction.attributes = validate_value(Attributes, patched, "attributes")
        links = {name: changes[name] for name in LINK_FIELDS.values() if name in changes}
        await self._check_links(session, auth, links)
        for name, value in links.items():
            setattr(interaction, name, value)

        feedback = _stored_feedback(interaction)
        if "feedback" in changes:
            if patch.feedback is None:
                feedback = None
            else:
                given = patch.feedback.model_dump(include=patch.feedback.model_fields_set)
                current = feedback.model_dump() if feedback is not None else {}
                merged = merge_patch(current, given)
                feedback = (
                    validate_value(schemas.FeedbackIn, merged, "feedback") if merged else None
                )
        _set_feedback(interaction, feedback)
        if "attention_resolved_at" in changes:
            resolved_at = changes["attention_resolved_at"]
            _check_resolution(interaction.needs_attention, resolved_at)
            interaction.attention_resolved_at = resolved_at
        elif not interaction.needs_attention:
            interaction.attention_resolved_at = None

        external_ids = dict(interaction.external_id_map or {})
        if "external_ids" in changes:
            wanted = merge_patch(external_ids, changes["external_ids"]) or {}
            wanted = validate_value(ExternalIds, wanted, "external_ids")
            await self._replace_external_ids(repository, auth, interaction.id, external_ids, wanted)
            external_ids = wanted
        interaction.external_id_map = external_ids

        after = self.to_schema(interaction).model_dump(mode="json")
        changed = changed_fields(before, after)
        if not changed:
            return interaction
        # Assigned even when only external ids (rows of their own) changed, so that the
        # interaction's version and ETag move with every change.
        interaction.updated_at = func.now()
        await session.flush()
        await session.refresh(interaction, ["updated_at"])
        interaction.external_id_map = external_ids
        await outbox.record(
            session,
            workspace_id=auth.workspace_id,
            type="interaction.updated",
            aggregate_type="interaction",
            aggregate_id=interaction.id,
            data=self.to_schema(interaction),
            changed_fields=changed,
        )
        return interaction

    async def delete(
        self,
        session: AsyncSession,
        auth: AuthContext,
        interaction_id: uuid.UUID,
        *,
        if_match: str | None = None,
    ) -> None:
        """Delete an interaction and its external ids (which can then be ingested again).

        Raises:
            InteractionNotFound: no such interaction in the caller's workspace.
            PreconditionFailed: ``if_match`` names an older version.
        """
        repository = InteractionRepository(session)
        interaction = await repository.get(auth.workspace_id, interaction_id, for_update=True)
        if interaction is None:
            raise InteractionNotFound()
        check_if_match(if_match, interaction.version)
        contact_id = interaction.contact_id
        await repository.delete_many(auth.workspace_id, [interaction_id])
        session.expunge(interaction)
        await outbox.record(
            session,
            workspace_id=auth.workspace_id,
            type="interaction.deleted",
            aggregate_type="interaction",
            aggregate_id=interaction_id,
            data={"id": str(interaction_id), "contact_id": str(contact_id)},
        )

    # -- output ------------------------------------------------------------------------------
    def to_schema(self, interaction: Interaction) -> schemas.Interaction:
        """The REST shape of an interaction loaded by this service."""
        external_ids = interaction.external_id_map
        if external_ids is None and "external_ids" in interaction.__dict__:
            external_ids = {item.system: item.value for item in interaction.external_ids}
        return _schema(lambda name: getattr(interaction, name), external_ids or {})

    # -- ingest ------------------------------------------------------------------------------
    async def _ingest(
        self,
        session: AsyncSession,
        auth: AuthContext,
        items: Sequence[tuple[int, schemas.InteractionCreate]],
        *,
        dry_run_on_error: bool = False,
    ) -> dict[int, _Outcome]:
        """Create valid items whose external ids are new; a constant number of statements.

        With ``dry_run_on_error``, nothing is written when any item fails.
        """
        repository = InteractionRepository(session)
        outcomes: dict[int, _Outcome] = {}
        pending: list[_Pending] = []
        for index, data in items:
            try:
                _check_resolution(needs_attention(data.feedback), data.attention_resolved_at)
            except CRMError as error:
                outcomes[index] = _Outcome("error", error=error)
                continue
            pending.append(_Pending(index, data))

        # A stored external id makes the item a repeat: checked before the contact, so that a
        # re-sent item is `existing` even if its contact has since been merged or deleted.
        owners = await repository.external_id_owners(
            auth.workspace_id,
            [pair for item in pending for pair in item.data.external_ids.items()],
        )
        fresh: list[_Pending] = []
        for item in pending:
            owner = _first_owner(item.data.external_ids, owners)
            if owner is not None:
                outcomes[item.index] = _Outcome("existing", owner)
            else:
                fresh.append(item)

        errors = await self._validate_references(session, repository, auth, fresh)
        outcomes.update(errors)
        fresh = [item for item in fresh if item.index not in errors]
        if dry_run_on_error and any(outcome.error for outcome in outcomes.values()):
            return outcomes

        leaders = _deduplicate(fresh)
        winners = await self._insert(session, repository, auth, leaders)
        by_index = {item.index: item for item in fresh}
        for item in fresh:
            leader = by_index[item.same_as] if item.same_as is not None else item
            winner = winners.get(leader.index)
            if winner is not None:
                outcomes[item.index] = _Outcome("existing", winner)
            elif item.same_as is not None:
                outcomes[item.index] = _Outcome("existing", leader.id)
            else:
                outcomes[item.index] = _Outcome("created", leader.id)
        return outcomes

    async def _validate_references(
        self,
        session: AsyncSession,
        repository: InteractionRepository,
        auth: AuthContext,
        items: Sequence[_Pending],
    ) -> dict[int, _Outcome]:
        """Contacts (one query for all items) and links (one query per kind) that exist."""
        outcomes: dict[int, _Outcome] = {}
        states = await repository.contact_states(
            auth.workspace_id, [item.data.contact_id for item in items]
        )
        found_links: dict[str, set[uuid.UUID]] = {}
        for kind, name in LINK_FIELDS.items():
            ids = {getattr(item.data, name) for item in items} - {None}
            found_links[name] = await existing_targets(session, auth.workspace_id, kind, ids)
        for item in items:
            contact_id = item.data.contact_id
            if contact_id not in states:
                outcomes[item.index] = _Outcome(
                    "error", error=InteractionContactNotFound(contact_id)
                )
                continue
            survivor = states[contact_id]
            if survivor is not None:
                outcomes[item.index] = _Outcome(
                    "error", error=InteractionContactMerged(contact_id, survivor)
                )
                continue
            missing = _missing_links(
                {name: getattr(item.data, name) for name in LINK_FIELDS.values()}, found_links
            )
            if missing is not None:
                outcomes[item.index] = _Outcome("error", error=missing)
        return outcomes

    async def _insert(
        self,
        session: AsyncSession,
        repository: InteractionRepository,
        auth: AuthContext,
        items: Sequence[_Pending],
    ) -> dict[int, uuid.UUID]:
        """Insert the items and claim their external ids; the items that lost a claim to a
        concurrent writer are removed again and mapped to the winner's interaction."""
        if not items:
            return {}
        rows = [_row(item) for item in items]
        stamps = await repository.insert_many(auth.workspace_id, rows)
        claims = [
            (system, value, item.id)
            for item in items
            for system, value in sorted(item.data.external_ids.items())
        ]
        claimed = await repository.claim_external_ids(auth.workspace_id, claims)
        lost: dict[int, tuple[str, str]] = {}
        for item in items:
            for pair in sorted(item.data.external_ids.items()):
                if pair not in claimed:
                    lost.setdefault(item.index, pair)
        winners: dict[int, uuid.UUID] = {}
        if lost:
            losers = [item for item in items if item.index in lost]
            await repository.delete_many(auth.workspace_id, [item.id for item in losers])
            owners = await repository.external_id_owners(auth.workspace_id, lost.values())
            for item in losers:
                owner = owners.get(lost[item.index])
                if owner is None:
                    # The pair was taken and freed again meanwhile; a retry will store it.
                    raise DuplicateInteraction(
                        "A concurrent request is recording the same interaction; retry",
                        field=f"external_ids.{lost[item.index][0]}",
                        existing_id=item.id,
                    )
                winners[item.index] = owner
        events: list[tuple[uuid.UUID, bytes]] = []
        for item, row in zip(items, rows, strict=True):
            if item.index in winners:
                continue
            stamp = stamps[item.id]
            values = {
                **row,
                "created_at": stamp.created_at,
                "updated_at": stamp.updated_at,
                "version": 1,
            }
            events.append(
                (item.id, _event_json(_fields(values.__getitem__, item.data.external_ids)))
            )
        await repository.insert_events(auth.workspace_id, "interaction.created", events)
        await interactions_created(
            session,
            auth,
            [
                CreatedInteraction(
                    id=item.id,
                    contact_id=item.data.contact_id,
                    channel=item.data.channel,
                    direction=item.data.direction,
                    type=item.data.type,
                    occurred_at=item.data.occurred_at,
                    case_id=item.data.case_id,
                    opportunity_id=item.data.opportunity_id,
                    campaign_id=item.data.campaign_id,
                )
                for item in items
                if item.index not in winners
            ],
        )
        return winners

    async def _check_contacts(
        self, repository: InteractionRepository, auth: AuthContext, ids: Sequence[uuid.UUID]
    ) -> None:
        states = await repository.contact_states(auth.workspace_id, ids)
        for contact_id in ids:
            if contact_id not in states:
                raise InteractionContactNotFound(contact_id)
            survivor = states[contact_id]
            if survivor is not None:
                raise InteractionContactMerged(contact_id, survivor)

    async def _check_links(
        self, session: AsyncSession, auth: AuthContext, links: dict[str, uuid.UUID | None]
    ) -> None:
        found: dict[str, set[uuid.UUID]] = {}
        for kind, name in LINK_FIELDS.items():
            value = links.get(name)
            ids = {value} if value is not None else set()
            found[name] = await existing_targets(session, auth.workspace_id, kind, ids)
        missing = _missing_links(links, found)
        if missing is not None:
            raise missing

    async def _replace_external_ids(
        self,
        repository: InteractionRepository,
        auth: AuthContext,
        interaction_id: uuid.UUID,
        current: dict[str, str],
        wanted: dict[str, str],
    ) -> None:
        added = {system: value for system, value in wanted.items() if current.get(system) != value}
        owners = await repository.external_id_owners(auth.workspace_id, added.items())
        for system, value in sorted(added.items()):
            owner = owners.get((system, value))
            if owner is not None and owner != interaction_id:
                raise DuplicateInteraction(
                    f"An interaction with {system} id {value!r} already exists",
                    field=f"external_ids.{system}",
                    existing_id=owner,
                )
        dropped = [system for system, value in current.items() if wanted.get(system) != value]
        await repository.release_external_ids(auth.workspace_id, interaction_id, dropped)
        claims = [(system, value, interaction_id) for system, value in sorted(added.items())]
        claimed = await repository.claim_external_ids(auth.workspace_id, claims)
        for system, value in sorted(added.items()):
            if (system, value) not in claimed:
                holders = await repository.external_id_owners(auth.workspace_id, [(system, value)])
                raise DuplicateInteraction(
                    f"An interaction with {system} id {value!r} already exists",
                    field=f"external_ids.{system}",
                    existing_id=holders.get((system, value), interaction_id),
                )

    @staticmethod
    def _fail_batch(size: int, outcomes: dict[int, _Outcome]) -> NoReturn:
        failed = sorted(index for index, outcome in outcomes.items() if outcome.error is not None)
        results = [
            _result(index, outcomes.get(index, _Outcome("created")), rolled_back=True)
            for index in range(size)
        ]
        raise BatchFailed(
            f"{len(failed)} of {size} items failed (items "
            f"{', '.join(str(index) for index in failed[:20])}"
            f"{', ...' if len(failed) > 20 else ''}); nothing was written",
            errors=[error for index in failed for error in _item_errors(index, outcomes[index])],
            results=[result.model_dump(mode="json") for result in results],
        )


# -- helpers ---------------------------------------------------------------------------------


def _per_contact(limit: int) -> int:
    if not 1 <= limit <= MAX_PER_CONTACT:
        raise ValidationFailed(
            f"limit must be between 1 and {MAX_PER_CONTACT}",
            errors=[FieldError(field="limit", message=f"1 to {MAX_PER_CONTACT}")],
        )
    return limit


def _grouped(rows: Sequence[Interaction]) -> dict[uuid.UUID, list[Interaction]]:
    grouped: dict[uuid.UUID, list[Interaction]] = {}
    for row in rows:
        grouped.setdefault(row.contact_id, []).append(row)
    return grouped


def _first_owner(
    external_ids: dict[str, str], owners: dict[tuple[str, str], uuid.UUID]
) -> uuid.UUID | None:
    for pair in sorted(external_ids.items()):
        if pair in owners:
            return owners[pair]
    return None


def _deduplicate(items: Sequence[_Pending]) -> list[_Pending]:
    """The items to insert: a later item sharing an external id with an earlier one is a
    repeat of it (``same_as``) and is not inserted."""
    first_with: dict[tuple[str, str], int] = {}
    leaders: list[_Pending] = []
    for item in items:
        pairs = sorted(item.data.external_ids.items())
        earlier = next((first_with[pair] for pair in pairs if pair in first_with), None)
        if earlier is not None:
            item.same_as = earlier
            continue
        for pair in pairs:
            first_with[pair] = item.index
        leaders.append(item)
    return leaders


def _missing_links(
    links: dict[str, uuid.UUID | None], found: dict[str, set[uuid.UUID]]
) -> ValidationFailed | None:
    errors = [
        FieldError(field=name, message=f"no {kind} with this id in the workspace")
        for kind, name in LINK_FIELDS.items()
        if links.get(name) is not None and links[name] not in found.get(name, set())
    ]
    if not errors:
        return None
    return ValidationFailed(
        f"Linked record not found: {', '.join(error.field for error in errors)}", errors=errors
    )


def _check_resolution(attention: bool, resolved_at: datetime | None) -> None:
    if resolved_at is not None and not attention:
        raise ValidationFailed(
            "Only feedback that needs attention can be resolved",
            errors=[
                FieldError(
                    field="attention_resolved_at",
                    message="the interaction's feedback does not need attention",
                )
            ],
        )


def _stored_feedback(interaction: Interaction) -> schemas.FeedbackIn | None:
    if interaction.feedback_kind is None:
        return None
    values: dict[str, Any] = {
        "kind": interaction.feedback_kind,
        "sentiment": interaction.sentiment,
        "scale": interaction.score_scale,
        "score": interaction.score,
        "topic": interaction.topic,
        "urgency": interaction.urgency,
    }
    return schemas.FeedbackIn.model_construct(**values)


def _set_feedback(interaction: Interaction, feedback: schemas.FeedbackIn | None) -> None:
    for name, value in _feedback_columns(feedback).items():
        setattr(interaction, name, value)


def _feedback_columns(feedback: schemas.FeedbackIn | None) -> dict[str, Any]:
    return {
        "feedback_kind": feedback.kind if feedback else None,
        "sentiment": feedback.sentiment if feedback else None,
        "score": feedback.score if feedback else None,
        "score_scale": feedback.scale if feedback else None,
        "topic": feedback.topic if feedback else None,
        "urgency": feedback.urgency if feedback else None,
        "needs_attention": needs_attention(feedback),
    }


def _row(item: _Pending) -> dict[str, Any]:
    data = item.data
    return {
        "id": item.id,
        "contact_id": data.contact_id,
        "channel": data.channel,
        "direction": data.direction,
        "type": data.type,
        "occurred_at": data.occurred_at,
        "subject": data.subject,
        "body": data.body,
        "agent_id": data.agent_id,
        "duration_seconds": data.duration_seconds,
        "attributes": dict(data.attributes),
        **_feedback_columns(data.feedback),
        "attention_resolved_at": data.attention_resolved_at,
        "case_id": data.case_id,
        "opportunity_id": data.opportunity_id,
        "campaign_id": data.campaign_id,
    }


def _fields(get: Callable[[str], Any], external_ids: dict[str, str]) -> dict[str, Any]:
    """The fields of an interaction's REST shape from its columns (``get`` reads a column)."""
    feedback = None
    if get("feedback_kind") is not None:
        feedback = {
            "kind": get("feedback_kind"),
            "sentiment": get("sentiment"),
            "scale": get("score_scale"),
            "score": get("score"),
            "topic": get("topic"),
            "urgency": get("urgency"),
        }
    return {
        "id": get("id"),
        "contact_id": get("contact_id"),
        "channel": get("channel"),
        "direction": get("direction"),
        "type": get("type"),
        "occurred_at": get("occurred_at"),
        "subject": get("subject"),
        "body": get("body"),
        "agent_id": get("agent_id"),
        "duration_seconds": get("duration_seconds"),
        "attributes": dict(get("attributes") or {}),
        "external_ids": dict(sorted(external_ids.items())),
        "feedback": feedback,
        "needs_attention": bool(get("needs_attention")),
        "attention_resolved_at": get("attention_resolved_at"),
        "case_id": get("case_id"),
        "opportunity_id": get("opportunity_id"),
        "campaign_id": get("campaign_id"),
        "created_at": get("created_at"),
        "updated_at": get("updated_at"),
        "version": get("version"),
    }


def _schema(get: Callable[[str], Any], external_ids: dict[str, str]) -> schemas.Interaction:
    return schemas.Interaction.model_validate(_fields(get, external_ids))


def _event_json(fields: dict[str, Any]) -> bytes:
    """``schemas.Interaction``'s JSON for ``fields`` of a validated item, without building the
    model: a batch writes a thousand events, and the model cost three times orjson's work.
    orjson writes UUIDs as pydantic does, and UTC times with a "Z" as ``UTCDateTime`` does."""
    return orjson.dumps(
        {
            name: value.astimezone(UTC) if isinstance(value, datetime) else value
            for name, value in fields.items()
        },
        default=_uuid_subclass,
        option=orjson.OPT_UTC_Z,
    )


def _uuid_subclass(value: Any) -> str:
    # orjson writes uuid.UUID itself, not the driver's subclass of it (ids read from rows).
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _item_errors(index: int, outcome: _Outcome) -> list[FieldError]:
    """An item's errors as paths into the batch request: ``items.3.channel``."""
    if outcome.error is None:
        return []
    if not outcome.error.errors:
        return [FieldError(field=f"items.{index}", message=outcome.error.detail)]
    return [
        FieldError(
            field=f"items.{index}" if error.field == "body" else f"items.{index}.{error.field}",
            message=error.message,
        )
        for error in outcome.error.errors
    ]


def _result(
    index: int, outcome: _Outcome, *, rolled_back: bool = False
) -> schemas.InteractionBatchItemResult:
    if outcome.error is not None:
        return schemas.InteractionBatchItemResult(
            index=index,
            status="error",
            error=schemas.InteractionBatchItemProblem.model_validate(outcome.error.problem()),
        )
    return schemas.InteractionBatchItemResult(
        index=index,
        status="rolled_back" if rolled_back else outcome.status,
        id=None if rolled_back else outcome.interaction_id,
    )


interaction = InteractionService()
