"""Cases: service requests with a status workflow, routing, SLA clocks, comments and metrics.

Every change of a case's status, queue, assignee or priority appends a history row stamped by
the database clock; time per status and the paused time of the SLA clock are computed from it.
Writes lock the case row (FOR UPDATE) before checking anything, so two agents changing one case
at once are serialised: the second sees the first's result (a stale If-Match is a 412, a status
that no longer allows the change a 409) and the history never interleaves.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.account.service import account as account_service
from app.auth.dependencies import AuthContext
from app.case import schemas
from app.case.business_time import add_business_minutes, business_minutes_between
from app.case.exceptions import (
    CaseClosed,
    CaseNotFound,
    DuplicateCase,
    IllegalTransition,
    ReopenWindowClosed,
)
from app.case.repository import OPEN_STATUSES, CaseFilters, CaseRepository
from app.case.sla import (
    PAUSED_STATUSES,
    PolicyClock,
    choose_policy,
    clock_of,
    paused_minutes_from_history,
    recompute,
    status_of,
)
from app.contact.exceptions import ContactMerged, ContactNotFound
from app.contact.references import register_contact_reference
from app.contact.service import contact as contact_service
from app.db.locking import lock_keys
from app.events import outbox
from app.interaction import schemas as interaction_schemas
from app.interaction.links import register_link_target
from app.interaction.listeners import CreatedInteraction, register_interaction_listener
from app.interaction.service import InteractionQuery
from app.interaction.service import interaction as interaction_service
from app.kit.changes import changed_fields
from app.kit.errors import FieldError, NotFound, ValidationFailed
from app.kit.etag import check_if_match
from app.kit.ids import uuid7
from app.kit.merge_patch import merge_patch
from app.kit.pagination import Keyset, Sort, SortField, parse_datetime, parse_sort
from app.kit.schemas import validate_value
from app.kit.validators import Attributes, ExternalIds
from app.models import (
    BusinessCalendar,
    Case,
    CaseComment,
    CaseExternalId,
    CaseHistory,
    CaseQueue,
    CaseRoutingRule,
    Contact,
    SlaPolicy,
)

# Where each status may go. ``resolved -> open`` is a reopen, allowed within the policy's
# window; ``closed`` is final.
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "new": ("open", "pending", "resolved"),
    "open": ("pending", "resolved"),
    "pending": ("open", "resolved"),
    "resolved": ("open", "closed"),
    "closed": (),
}
DEFAULT_REOPEN_WINDOW = timedelta(hours=168)
SORTS = {
    "created_at": SortField(Case.created_at, parse_datetime),
    "updated_at": SortField(Case.updated_at, parse_datetime),
    "number": SortField(Case.number, int),
}
COMMENT_SORTS = {"created_at": SortField(CaseComment.created_at, parse_datetime)}
MAX_PER_CONTACT = 100
_NUMBER = re.compile(r"^CASE-(\d{1,15})$", re.IGNORECASE)

CaseQuery = CaseFilters


def format_number(number: int) -> str:
    return f"CASE-{number:06d}"


def parse_number(value: str) -> int | None:
    found = _NUMBER.match(value.strip())
    return int(found.group(1)) if found else None


async def _move_cases(
    session: AsyncSession,
    workspace_id: uuid.UUID,
    survivor_id: uuid.UUID,
    absorbed_ids: Sequence[uuid.UUID],
) -> None:
    # A new version, so that cached copies (ETags) of a re-pointed case go stale.
    await session.execute(
        text(
            "UPDATE cases SET contact_id = :survivor, version = version + 1, "
            "updated_at = now() WHERE workspace_id = :workspace_id AND contact_id = ANY(:absorbed)"
        ),
        {"survivor": survivor_id, "workspace_id": workspace_id, "absorbed": list(absorbed_ids)},
    )


register_contact_reference("cases", _move_cases)


@dataclass
class _Routing:
    rule: CaseRoutingRule | None
    queue_changed: bool
    assignee_changed: bool


def _matches(
    rule: CaseRoutingRule, case: Case, account_type: str | None, lifecycle_stage: str | None
) -> bool:
    if rule.categories and case.category not in rule.categories:
        return False
    if rule.priorities and case.priority not in rule.priorities:
        return False
    if rule.channels and case.channel not in rule.channels:
        return False
    if rule.account_types and account_type not in rule.account_types:
        return False
    if rule.lifecycle_stages and lifecycle_stage not in rule.lifecycle_stages:
        return False
    if rule.subject_keywords:
        subject = case.subject.casefold()
        if not any(keyword.casefold() in subject for keyword in rule.subject_keywords):
            return False
    return True


class CaseService:
    # -- SLA context -------------------------------------------------------------------------
    async def clocks(
        self, session: AsyncSession, auth: AuthContext, policy_ids: Sequence[uuid.UUID | None]
    ) -> dict[uuid.UUID, PolicyClock]:
        """Each policy with its calendar, ready for business-time arithmetic: one query."""
        rows = await CaseRepository(session).policies_with_calendars(
            auth.workspace_id, [pid for pid in policy_ids if pid is not None]
        )
        return {policy.id: clock_of(policy, calendar) for policy, calendar in rows}

    async def _clock(
        self, session: AsyncSession, auth: AuthContext, policy_id: uuid.UUID | None
    ) -> PolicyClock | None:
        if policy_id is None:
            return None
        return (await self.clocks(session, auth, [policy_id])).get(policy_id)

    def to_schema(self, case: Case, clock: PolicyClock | None, now: datetime) -> schemas.Case:
        allowed = list(TRANSITIONS[case.status])
        return schemas.Case(
            id=case.id,
            number=format_number(case.number),
            subject=case.subject,
            description=case.description,
            contact_id=case.contact_id,
            account_id=case.account_id,
            channel=case.channel,
            category=case.category,
            priority=case.priority,  # type: ignore[arg-type]
            status=case.status,  # type: ignore[arg-type]
            pending_reason=case.pending_reason,  # type: ignore[arg-type]
            allowed_transitions=allowed,  # type: ignore[arg-type]
            queue_id=case.queue_id,
            assignee=case.assignee,
            routing_rule_id=case.routing_rule_id,
            source_interaction_id=case.source_interaction_id,
            attributes=dict(case.attributes),
            external_ids={
                x.system: x.value for x in sorted(case.external_ids, key=lambda x: x.system)
            },
            first_response_at=case.first_response_at,
            resolved_at=case.resolved_at,
            closed_at=case.closed_at,
            reopen_count=case.reopen_count,
            first_response_due_at=case.first_response_due_at,
            resolution_due_at=case.resolution_due_at,
            sla=status_of(case, clock, now),
            created_at=case.created_at,
            updated_at=case.updated_at,
            version=case.version,
        )

    async def schemas_of(
        self, session: AsyncSession, auth: AuthContext, cases: Sequence[Case]
    ) -> list[schemas.Case]:
        """The REST shape of cases: their policies and calendars in one query, one clock."""
        clocks = await self.clocks(session, auth, [case.sla_policy_id for case in cases])
        now = await CaseRepository(session).clock()
        return [
            self.to_schema(
                case, clocks.get(case.sla_policy_id) if case.sla_policy_id else None, now
            )
            for case in cases
        ]

    async def schema_of(self, session: AsyncSession, auth: AuthContext, case: Case) -> schemas.Case:
        return (await self.schemas_of(session, auth, [case]))[0]

    # -- reading -----------------------------------------------------------------------------
    async def get(self, session: AsyncSession, auth: AuthContext, case_id: uuid.UUID) -> Case:
        """Raises: CaseNotFound: no such case in the caller's workspace."""
        found = await CaseRepository(session).get(auth.workspace_id, case_id)
        if found is None:
            raise CaseNotFound()
        return found

    async def get_many(
        self, session: AsyncSession, auth: AuthContext, case_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, Case]:
        if not case_ids:
            return {}
        rows = await CaseRepository(session).get_many(auth.workspace_id, case_ids)
        return {row.id: row for row in rows}

    async def get_by_number(self, session: AsyncSession, auth: AuthContext, number: str) -> Case:
        """Raises: CaseNotFound: malformed or unknown number."""
        parsed = parse_number(number)
        found = (
            await CaseRepository(session).by_number(auth.workspace_id, parsed)
            if parsed is not None
            else None
        )
        if found is None:
            raise CaseNotFound(f"No case {number!r}")
        return await self.get(session, auth, found)

    async def get_by_external_id(
        self, session: AsyncSession, auth: AuthContext, system: str, value: str
    ) -> Case:
        found = await CaseRepository(session).by_external_id(auth.workspace_id, system, value)
        if found is None:
            raise CaseNotFound(f"No case has {system} id {value!r}")
        return await self.get(session, auth, found)

    async def find(
        self,
        session: AsyncSession,
        auth: AuthContext,
        query: CaseQuery,
        *,
        limit: int,
        cursor: str | None,
        sort: str | None,
    ) -> tuple[list[Case], str | None]:
        """A page of cases, newest first unless ``sort`` says otherwise.

        Raises:
            ValidationFailed: unknown sort field.
            InvalidCursor: the cursor is malformed or from another listing.
        """
        keyset = Keyset.build(
            sort=parse_sort(sort, SORTS, "-created_at"),
            allowed=SORTS,
            id_column=Case.id,
            limit=limit,
            cursor=cursor,
        )
        rows = await CaseRepository(session).find(auth.workspace_id, query, keyset)
        column = keyset.field.column.key
        return keyset.page(rows, lambda row: (getattr(row, column), row.id))

    async def open_for_contacts(
        self,
        session: AsyncSession,
        auth: AuthContext,
        contact_ids: Sequence[uuid.UUID],
        limit: int,
        statuses: Sequence[str] = OPEN_STATUSES,
    ) -> dict[uuid.UUID, list[Case]]:
        """Each contact's newest ``limit`` cases in ``statuses`` (default: not yet resolved),
        in one statement; every contact asked for is a key."""
        if not 1 <= limit <= MAX_PER_CONTACT:
            raise ValidationFailed(
                f"limit must be between 1 and {MAX_PER_CONTACT}",
                errors=[FieldError(field="limit", message=f"1 to {MAX_PER_CONTACT}")],
            )
        grouped: dict[uuid.UUID, list[Case]] = {contact_id: [] for contact_id in contact_ids}
        if contact_ids:
            rows = await CaseRepository(session).recent_for_contacts(
                auth.workspace_id, list(dict.fromkeys(contact_ids)), limit, statuses
            )
            for row in rows:
                grouped.setdefault(row.contact_id, []).append(row)
        return grouped

    async def count_open(
        self, session: AsyncSession, auth: AuthContext, contact_id: uuid.UUID
    ) -> int:
        """How many cases of the contact are not yet resolved."""
        return await CaseRepository(session).count_open(auth.workspace_id, contact_id)

    async def comments(
        self,
        session: AsyncSession,
        auth: AuthContext,
        case_id: uuid.UUID,
        *,
        limit: int,
        cursor: str | None,
        public: bool | None = None,
    ) -> tuple[list[CaseComment], str | None]:
        """The case's comments, oldest first. Raises: CaseNotFound."""
        await self.get(session, auth, case_id)
        keyset = Keyset.build(
            sort=Sort("created_at", False),
            allowed=COMMENT_SORTS,
            id_column=CaseComment.id,
            limit=limit,
            cursor=cursor,
        )
        rows = await CaseRepository(session).comments(auth.workspace_id, case_id, keyset, public)
        return keyset.page(rows, lambda row: (row.created_at, row.id))

    async def comments_for_cases(
        self, session: AsyncSession, auth: AuthContext, case_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, list[CaseComment]]:
        grouped: dict[uuid.UUID, list[CaseComment]] = {case_id: [] for case_id in case_ids}
        if case_ids:
            for row in await CaseRepository(session).comments_of_many(
                auth.workspace_id, list(dict.fromkeys(case_ids))
            ):
                grouped.setdefault(row.case_id, []).append(row)
        return grouped

    async def history_for_cases(
        self, session: AsyncSession, auth: AuthContext, case_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, list[CaseHistory]]:
        """Each case's changes, oldest first, in one statement."""
        grouped: dict[uuid.UUID, list[CaseHistory]] = {case_id: [] for case_id in case_ids}
        if case_ids:
            for row in await CaseRepository(session).history(
                auth.workspace_id, list(dict.fromkeys(case_ids))
            ):
                grouped.setdefault(row.case_id, []).append(row)
        return grouped

    async def status_changes(
        self, session: AsyncSession, auth: AuthContext, history_ids: Sequence[uuid.UUID]
    ) -> list[tuple[CaseHistory, Case]]:
        """History rows by id, each with its case (for the timeline); others are absent."""
        if not history_ids:
            return []
        return await CaseRepository(session).history_with_cases(auth.workspace_id, history_ids)

    async def history(
        self, session: AsyncSession, auth: AuthContext, case_id: uuid.UUID
    ) -> list[CaseHistory]:
        """Raises: CaseNotFound."""
        await self.get(session, auth, case_id)
        return (await self.history_for_cases(session, auth, [case_id]))[case_id]

    # -- writing: cases ----------------------------------------------------------------------
    async def create(
        self, session: AsyncSession, auth: AuthContext, data: schemas.CaseCreate
    ) -> Case:
        """Open a case, route it (unless a queue is given) and start its SLA clock.

        Raises:
            ValidationFailed: no contact or subject, or a reference (source interaction,
                account, queue) that does not exist.
            ContactNotFound / ContactMerged: the contact is unknown or was merged.
            DuplicateCase: an external id belongs to another case.
        """
        repository = CaseRepository(session)
        source = None
        if data.source_interaction_id is not None:
            try:
                source = await interaction_service.get(session, auth, data.source_interaction_id)
            except NotFound:
                raise ValidationFailed(
                    "The source interaction does not exist",
                    errors=[
                        FieldError(field="source_interaction_id", message="no such interaction")
                    ],
                ) from None
            if data.contact_id is not None and data.contact_id != source.contact_id:
                raise ValidationFailed(
                    "The source interaction belongs to another contact",
                    errors=[FieldError(field="contact_id", message="differs from the source's")],
                )
        contact_id = data.contact_id or (source.contact_id if source else None)
        if contact_id is None:
            raise ValidationFailed(
                "A case needs a contact",
                errors=[FieldError(field="contact_id", message="required without a source")],
            )
        subject = data.subject or (source.subject if source else None)
        if subject is None and source is not None:
            subject = f"{source.type.replace('_', ' ').capitalize()} via {source.channel}"
        if subject is None:
            raise ValidationFailed(
                "A case needs a subject",
                errors=[FieldError(field="subject", message="required without a source")],
            )
        contact = await self._contact(session, repository, auth, contact_id)
        account_id = data.account_id if data.account_id is not None else contact.account_id
        account_type = await self._account_type(session, auth, account_id, data.account_id)
        if data.queue_id is not None:
            await self._check_queue(repository, auth, data.queue_id, "queue_id")
        if data.external_ids:
            await self._check_external_ids(session, repository, auth, None, data.external_ids)

        now = await repository.clock()
        case = Case(
            workspace_id=auth.workspace_id,
            id=uuid7(),
            number=await repository.next_number(auth.workspace_id),
            subject=subject,
            description=data.description,
            contact_id=contact_id,
            account_id=account_id,
            channel=data.channel or (source.channel if source else "other"),
            category=data.category,
            priority=data.priority,
            status="new",
            queue_id=data.queue_id,
            assignee=data.assignee,
            source_interaction_id=data.source_interaction_id,
            attributes=dict(data.attributes),
            paused_minutes=0.0,
            reopen_count=0,
            created_at=now,
            updated_at=now,
        )
        case.external_ids = [
            CaseExternalId(workspace_id=auth.workspace_id, case_id=case.id, system=s, value=v)
            for s, v in sorted(data.external_ids.items())
        ]
        if data.queue_id is None:
            await self._route(repository, auth, case, account_type, contact.lifecycle_stage)
        policy = choose_policy(
            await repository.policies_for(auth.workspace_id, case.priority),
            case.category,
            account_type,
        )
        case.sla_policy_id = policy.id if policy is not None else None
        clock = await self._clock(session, auth, case.sla_policy_id)
        recompute(case, clock)
        session.add(case)
        await session.flush()
        self._log(session, auth, case, "status", None, "new", now)
        if case.queue_id is not None:
            self._log(session, auth, case, "queue", None, str(case.queue_id), now)
        if case.assignee is not None:
            self._log(session, auth, case, "assignee", None, case.assignee, now)
        if source is not None and source.case_id is None:
            await interaction_service.update(
                session,
                auth,
                source.id,
                interaction_schemas.InteractionUpdate.model_validate({"case_id": case.id}),
            )
        body = self.to_schema(case, clock, now)
        await self._event(session, auth, "case.created", case, body)
        if case.queue_id is not None or case.assignee is not None:
            await self._event(session, auth, "case.assigned", case, body)
        return case

    async def update(
        self,
        session: AsyncSession,
        auth: AuthContext,
        case_id: uuid.UUID,
        patch: schemas.CaseUpdate,
        *,
        if_match: str | None = None,
    ) -> Case:
        """Apply a merge patch. A new priority, category or account chooses the SLA policy
        again (unless ``sla_policy_id`` is given); a new policy recomputes the due times from
        the status history, keeping the time the clock was paused.

        Raises:
            CaseNotFound, PreconditionFailed, CaseClosed (a closed case is read-only),
            ValidationFailed (unknown account, queue or policy), DuplicateCase.
        """
        repository = CaseRepository(session)
        case = await self._locked(repository, auth, case_id)
        check_if_match(if_match, case.version)
        if case.status == "closed":
            raise CaseClosed(
                "A closed case cannot change",
                errors=[FieldError(field="status", message="the case is closed")],
            )
        clock = await self._clock(session, auth, case.sla_policy_id)
        now = await repository.clock()
        before = self.to_schema(case, clock, now).model_dump(mode="json")
        changes = patch.changes()
        old_queue, old_assignee, old_priority = case.queue_id, case.assignee, case.priority

        for name in ("subject", "description", "channel", "category", "priority", "assignee"):
            if name in changes:
                setattr(case, name, changes[name])
        if "queue_id" in changes:
            if changes["queue_id"] is not None:
                await self._check_queue(repository, auth, changes["queue_id"], "queue_id")
            case.queue_id = changes["queue_id"]
        if "account_id" in changes:
            case.account_id = changes["account_id"]
        if "attributes" in changes:
            patched = merge_patch(case.attributes, changes["attributes"]) or {}
            case.attributes = validate_value(Attributes, patched, "attributes")
        if "external_ids" in changes:
            current = {x.system: x.value for x in case.external_ids}
            merged = validate_value(
                ExternalIds, merge_patch(current, changes["external_ids"]) or {}, "external_ids"
            )
            if merged != current:
                await self._check_external_ids(session, repository, auth, case.id, merged)
                case.external_ids = []
                await session.flush()
                case.external_ids = [
                    CaseExternalId(workspace_id=auth.workspace_id, case_id=case.id, system=s,
                                   value=v)
                    for s, v in sorted(merged.items())
                ]  # fmt: skip

        account_type = await self._account_type(
            session, auth, case.account_id, changes.get("account_id")
        )
        policy_id = case.sla_policy_id
        if "sla_policy_id" in changes and changes["sla_policy_id"] is not None:
            policy_id = changes["sla_policy_id"]
            if await self._clock(session, auth, policy_id) is None:
                raise ValidationFailed(
                    "No such SLA policy",
                    errors=[FieldError(field="sla_policy_id", message="no such SLA policy")],
                )
        elif {"sla_policy_id", "priority", "category", "account_id"} & changes.keys():
            chosen = choose_policy(
                await repository.policies_for(auth.workspace_id, case.priority),
                case.category,
                account_type,
            )
            policy_id = chosen.id if chosen is not None else None
        if policy_id != case.sla_policy_id:
            case.sla_policy_id = policy_id
            clock = await self._clock(session, auth, policy_id)
            await self._replay_pauses(repository, auth, case, clock)
            recompute(case, clock)

        after = self.to_schema(case, clock, now).model_dump(mode="json")
        changed = changed_fields(before, after)
        if not changed:
            return case
        case.updated_at = now
        if case.priority != old_priority:
            self._log(session, auth, case, "priority", old_priority, case.priority, now)
        if case.queue_id != old_queue:
            self._log(session, auth, case, "queue", _text(old_queue), _text(case.queue_id), now)
        if case.assignee != old_assignee:
            self._log(session, auth, case, "assignee", old_assignee, case.assignee, now)
        await session.flush()
        body = self.to_schema(case, clock, now)
        await self._event(session, auth, "case.updated", case, body, changed)
        if case.queue_id != old_queue or case.assignee != old_assignee:
            await self._event(session, auth, "case.assigned", case, body)
        return case

    async def delete(
        self,
        session: AsyncSession,
        auth: AuthContext,
        case_id: uuid.UUID,
        *,
        if_match: str | None = None,
    ) -> None:
        """Delete a case with its comments and history (interactions keep their history).

        Raises: CaseNotFound, PreconditionFailed.
        """
        repository = CaseRepository(session)
        case = await self._locked(repository, auth, case_id)
        check_if_match(if_match, case.version)
        # Interactions stay on the contact's timeline, unlinked (through their own service).
        unlink = interaction_schemas.InteractionUpdate.model_validate({"case_id": None})
        while True:
            linked, _ = await interaction_service.find(
                session, auth, InteractionQuery(case_id=case_id), limit=200, cursor=None,
                sort=None,
            )  # fmt: skip
            for row in linked:
                await interaction_service.update(session, auth, row.id, unlink)
            if len(linked) < 200:
                break
        await repository.delete(case)
        session.expunge(case)
        await outbox.record(
            session,
            workspace_id=auth.workspace_id,
            type="case.deleted",
            aggregate_type="case",
            aggregate_id=case_id,
            data={"id": str(case_id), "contact_id": str(case.contact_id)},
        )

    async def transition(
        self,
        session: AsyncSession,
        auth: AuthContext,
        case_id: uuid.UUID,
        data: schemas.TransitionCreate,
        *,
        if_match: str | None = None,
    ) -> Case:
        """Move the case to another status.

        Resolving notifies the customer (an outbound ``notification`` interaction on the
        channel of origin) and emits ``case.resolved``; ``resolved -> open`` reopens within
        the policy's window. The clock pauses in ``pending`` and ``resolved``.

        Raises:
            CaseNotFound, PreconditionFailed (stale ``if_match``),
            IllegalTransition (409 listing the allowed statuses), ReopenWindowClosed.
        """
        repository = CaseRepository(session)
        case = await self._locked(repository, auth, case_id)
        check_if_match(if_match, case.version)
        allowed = TRANSITIONS[case.status]
        if data.to not in allowed:
            raise IllegalTransition(case.status, data.to, allowed)
        clock = await self._clock(session, auth, case.sla_policy_id)
        now = await repository.clock()
        if case.status == "resolved" and data.to == "open":
            self._check_reopen(case, clock, now)
        await self._apply_status(
            session, auth, case, clock, data.to, now, reason=data.reason, note=data.note
        )
        return case

    async def comment(
        self,
        session: AsyncSession,
        auth: AuthContext,
        case_id: uuid.UUID,
        data: schemas.CommentCreate,
    ) -> tuple[CaseComment, Case]:
        """Add a comment. A public one is sent to the customer as an outbound interaction on
        the case's channel; the first public comment is the first response (and opens a new
        case), and any public comment answers the customer's last reply.

        Raises: CaseNotFound, CaseClosed.
        """
        repository = CaseRepository(session)
        case = await self._locked(repository, auth, case_id)
        if case.status == "closed":
            raise CaseClosed(
                "A closed case takes no more comments",
                errors=[FieldError(field="case_id", message="the case is closed")],
            )
        clock = await self._clock(session, auth, case.sla_policy_id)
        now = await repository.clock()
        comment = CaseComment(
            workspace_id=auth.workspace_id,
            id=uuid7(),
            case_id=case.id,
            body=data.body,
            public=data.public,
            author=data.author,
            api_key_id=auth.api_key_id,
            created_at=now,
        )
        if data.public:
            interaction, _ = await interaction_service.create(
                session,
                auth,
                interaction_schemas.InteractionCreate.model_validate({
                    "contact_id": case.contact_id,
                    "channel": case.channel,
                    "direction": "outbound",
                    "type": "email" if case.channel == "email" else "message",
                    "occurred_at": now,
                    "subject": f"Re: [{format_number(case.number)}] {case.subject}"[:500],
                    "body": data.body,
                    "agent_id": data.author,
                    "case_id": case.id,
                }),
            )  # fmt: skip
            comment.interaction_id = interaction.id
            if case.first_response_at is None:
                case.first_response_at = now
            case.next_response_due_at = None
        session.add(comment)
        if data.public and case.status == "new":
            await self._apply_status(session, auth, case, clock, "open", now, note="first response")
        else:
            case.updated_at = now
            await session.flush()
        if data.public:
            await outbox.record(
                session,
                workspace_id=auth.workspace_id,
                type="case.commented",
                aggregate_type="case",
                aggregate_id=case.id,
                data={
                    "case": self.to_schema(case, clock, now).model_dump(mode="json"),
                    "comment": self.comment_schema(comment).model_dump(mode="json"),
                },
            )
        return comment, case

    async def route(
        self,
        session: AsyncSession,
        auth: AuthContext,
        case_id: uuid.UUID,
        *,
        if_match: str | None = None,
    ) -> Case:
        """Run the routing rules on the case now (e.g. after its category changed).

        Raises: CaseNotFound, PreconditionFailed, CaseClosed.
        """
        repository = CaseRepository(session)
        case = await self._locked(repository, auth, case_id)
        check_if_match(if_match, case.version)
        if case.status == "closed":
            raise CaseClosed(
                "A closed case is not routed",
                errors=[FieldError(field="status", message="the case is closed")],
            )
        contact = await contact_service.get_many(session, auth, [case.contact_id])
        stage = contact[case.contact_id].lifecycle_stage if case.contact_id in contact else None
        account_type = await self._account_type(session, auth, case.account_id, None)
        old_queue, old_assignee = case.queue_id, case.assignee
        routing = await self._route(repository, auth, case, account_type, stage)
        now = await repository.clock()
        clock = await self._clock(session, auth, case.sla_policy_id)
        case.updated_at = now
        if routing.queue_changed:
            self._log(session, auth, case, "queue", _text(old_queue), _text(case.queue_id), now)
        if routing.assignee_changed:
            self._log(session, auth, case, "assignee", old_assignee, case.assignee, now)
        await session.flush()
        if routing.queue_changed or routing.assignee_changed:
            await self._event(
                session, auth, "case.assigned", case, self.to_schema(case, clock, now)
            )
        return case

    # -- metrics -----------------------------------------------------------------------------
    async def metrics(
        self, session: AsyncSession, auth: AuthContext, case_id: uuid.UUID
    ) -> schemas.Metrics:
        """Raises: CaseNotFound."""
        case = await self.get(session, auth, case_id)
        return (await self.metrics_for(session, auth, [case]))[case.id]

    async def metrics_for(
        self, session: AsyncSession, auth: AuthContext, cases: Sequence[Case]
    ) -> dict[uuid.UUID, schemas.Metrics]:
        """Metrics of several cases: their history and calendars in two statements."""
        history = await self.history_for_cases(session, auth, [case.id for case in cases])
        clocks = await self.clocks(session, auth, [case.sla_policy_id for case in cases])
        now = await CaseRepository(session).clock()
        return {
            case.id: _metrics(
                case,
                history.get(case.id, []),
                clocks.get(case.sla_policy_id) if case.sla_policy_id else None,
                now,
            )
            for case in cases
        }

    # -- SLA ---------------------------------------------------------------------------------
    async def recompute_for(
        self, session: AsyncSession, auth: AuthContext, record: BusinessCalendar | SlaPolicy
    ) -> int:
        """After a calendar or policy changed: new due times for its unfinished cases."""
        repository = CaseRepository(session)
        if isinstance(record, SlaPolicy):
            policy_ids = [record.id]
        else:
            policy_ids = await self._policies_on_calendar(session, auth, record.id)
        if not policy_ids:
            return 0
        cases = await repository.cases_of_policy(auth.workspace_id, policy_ids)
        clocks = await self.clocks(session, auth, policy_ids)
        for case in cases:
            clock = clocks.get(case.sla_policy_id) if case.sla_policy_id else None
            await self._replay_pauses(repository, auth, case, clock)
            recompute(case, clock)
        await session.flush()
        return len(cases)

    async def _policies_on_calendar(
        self, session: AsyncSession, auth: AuthContext, calendar_id: uuid.UUID
    ) -> list[uuid.UUID]:
        return await CaseRepository(session).policy_ids_on_calendar(auth.workspace_id, calendar_id)

    async def close_expired(
        self, session: AsyncSession, workspace_id: uuid.UUID, limit: int
    ) -> int:
        """Close resolved cases whose reopen window has passed (the policy's, else 7 days),
        as help desks close solved tickets; how many. Rows another process holds are skipped."""
        repository = CaseRepository(session)
        cases = await repository.resolved_past_window(
            workspace_id, DEFAULT_REOPEN_WINDOW / timedelta(hours=1), limit
        )
        if not cases:
            return 0
        system = AuthContext(workspace_id=workspace_id, api_key_id=uuid.UUID(int=0),
                             scopes=frozenset())  # fmt: skip
        clocks = await self.clocks(session, system, [case.sla_policy_id for case in cases])
        for case in cases:
            now = await repository.clock()
            clock = clocks.get(case.sla_policy_id) if case.sla_policy_id else None
            await self._apply_status(
                session, system, case, clock, "closed", now, note="reopen window passed",
                by_system=True,
            )  # fmt: skip
        return len(cases)

    async def on_interactions_created(
        self, session: AsyncSession, auth: AuthContext, created: Sequence[CreatedInteraction]
    ) -> None:
        """A customer's reply on a case: a pending case opens again, a resolved one reopens
        (within its window), and the next-response target starts."""
        case_ids = sorted(
            {item.case_id for item in created if item.case_id and item.direction == "inbound"}
        )
        repository = CaseRepository(session)
        for case_id in case_ids:
            case = await repository.get(auth.workspace_id, case_id, for_update=True)
            if case is None or case.status == "closed":
                continue
            clock = await self._clock(session, auth, case.sla_policy_id)
            now = await repository.clock()
            if case.status == "pending":
                await self._apply_status(
                    session, auth, case, clock, "open", now, note="customer replied"
                )
            elif case.status == "resolved":
                try:
                    self._check_reopen(case, clock, now)
                except ReopenWindowClosed:
                    continue
                await self._apply_status(
                    session, auth, case, clock, "open", now, note="customer replied"
                )
            if clock is not None and clock.policy.next_response_minutes:
                case.next_response_due_at = add_business_minutes(
                    clock.calendar, now, clock.policy.next_response_minutes
                )
                case.updated_at = now
                await session.flush()

    # -- output ------------------------------------------------------------------------------
    @staticmethod
    def comment_schema(row: CaseComment) -> schemas.Comment:
        return schemas.Comment.model_validate(row)

    @staticmethod
    def history_schema(row: CaseHistory) -> schemas.HistoryEntry:
        return schemas.HistoryEntry.model_validate(row)

    # -- helpers -----------------------------------------------------------------------------
    async def _locked(
        self, repository: CaseRepository, auth: AuthContext, case_id: uuid.UUID
    ) -> Case:
        case = await repository.get(auth.workspace_id, case_id, for_update=True)
        if case is None:
            raise CaseNotFound()
        return case

    async def _contact(
        self,
        session: AsyncSession,
        repository: CaseRepository,
        auth: AuthContext,
        contact_id: uuid.UUID,
    ) -> Contact:
        exists, merged_into = await repository.hold_contact(auth.workspace_id, contact_id)
        if not exists:
            raise ContactNotFound(
                f"No contact {contact_id} in this workspace",
                errors=[FieldError(field="contact_id", message="no such contact")],
            )
        if merged_into is not None:
            raise ContactMerged(merged_into)
        return await contact_service.get(session, auth, contact_id)

    async def _account_type(
        self,
        session: AsyncSession,
        auth: AuthContext,
        account_id: uuid.UUID | None,
        given: uuid.UUID | None,
    ) -> str | None:
        if account_id is None:
            return None
        found = (await account_service.get_many(session, auth, [account_id])).get(account_id)
        if found is None:
            if given is not None:
                raise ValidationFailed(
                    "No such account",
                    errors=[FieldError(field="account_id", message="no such account")],
                )
            return None
        return found.type

    async def _check_queue(
        self, repository: CaseRepository, auth: AuthContext, queue_id: uuid.UUID, field: str
    ) -> None:
        if await repository.get_setup(CaseQueue, auth.workspace_id, queue_id) is None:
            raise ValidationFailed(
                "No such queue", errors=[FieldError(field=field, message="no such queue")]
            )

    async def _check_external_ids(
        self,
        session: AsyncSession,
        repository: CaseRepository,
        auth: AuthContext,
        case_id: uuid.UUID | None,
        external_ids: dict[str, str],
    ) -> None:
        pairs = sorted(external_ids.items())
        await lock_keys(session, auth.workspace_id, [f"case_external_id:{s}:{v}" for s, v in pairs])
        owners = await repository.external_id_owners(auth.workspace_id, pairs)
        for (system, value), owner in sorted(owners.items()):
            if owner != case_id:
                raise DuplicateCase(
                    f"A case with {system} id {value!r} already exists",
                    field=f"external_ids.{system}",
                    existing_id=owner,
                )

    async def _route(
        self,
        repository: CaseRepository,
        auth: AuthContext,
        case: Case,
        account_type: str | None,
        lifecycle_stage: str | None,
    ) -> _Routing:
        """The first active rule (by position) that matches sets the queue, and the assignee
        when it says so; round-robin takes the queue's next member under its row lock."""
        old_queue, old_assignee = case.queue_id, case.assignee
        for rule in await repository.active_rules(auth.workspace_id):
            if not _matches(rule, case, account_type, lifecycle_stage):
                continue
            case.queue_id = rule.queue_id
            case.routing_rule_id = rule.id
            if rule.assign_mode == "fixed":
                case.assignee = rule.assignee
            elif rule.assign_mode == "round_robin":
                member = await repository.take_round_robin(auth.workspace_id, rule.queue_id)
                if member is not None:
                    case.assignee = member
            return _Routing(rule, case.queue_id != old_queue, case.assignee != old_assignee)
        return _Routing(None, False, False)

    async def _replay_pauses(
        self,
        repository: CaseRepository,
        auth: AuthContext,
        case: Case,
        clock: PolicyClock | None,
    ) -> None:
        """Paused business time recomputed from the status history on ``clock``'s calendar."""
        if clock is None:
            return
        rows = await repository.history(auth.workspace_id, [case.id], field="status")
        # Pauses closed so far; an ongoing one is counted when the case resumes.
        paused, _ = paused_minutes_from_history(clock.calendar, rows)
        case.paused_minutes = paused

    def _check_reopen(self, case: Case, clock: PolicyClock | None, now: datetime) -> None:
        window = (
            timedelta(hours=clock.policy.reopen_window_hours)
            if clock is not None
            else DEFAULT_REOPEN_WINDOW
        )
        if case.resolved_at is not None and now > case.resolved_at + window:
            raise ReopenWindowClosed(
                f"The case was resolved more than {window / timedelta(hours=1):g} hours ago; "
                "open a new case instead",
                errors=[FieldError(field="to", message="the reopen window has passed")],
            )

    async def _apply_status(
        self,
        session: AsyncSession,
        auth: AuthContext,
        case: Case,
        clock: PolicyClock | None,
        to: str,
        now: datetime,
        *,
        reason: str | None = None,
        note: str | None = None,
        by_system: bool = False,
    ) -> None:
        old = case.status
        if to in PAUSED_STATUSES and old not in PAUSED_STATUSES:
            case.paused_since = now
        elif to not in PAUSED_STATUSES and old in PAUSED_STATUSES:
            if clock is not None and case.paused_since is not None:
                case.paused_minutes += max(
                    0.0, business_minutes_between(clock.calendar, case.paused_since, now)
                )
            case.paused_since = None
        reopened = old == "resolved" and to == "open"
        case.status = to
        case.pending_reason = reason if to == "pending" else None
        if to == "resolved":
            case.resolved_at = now
        if reopened:
            case.resolved_at = None
            case.reopen_count += 1
        if to == "closed":
            case.closed_at = now
        recompute(case, clock)
        case.updated_at = now
        self._log(
            session, auth, case, "status", old, to, now, reason=note or reason, by_system=by_system
        )
        await session.flush()
        if to == "resolved":
            await interaction_service.create(
                session,
                auth,
                interaction_schemas.InteractionCreate.model_validate({
                    "contact_id": case.contact_id,
                    "channel": case.channel,
                    "direction": "outbound",
                    "type": "notification",
                    "occurred_at": now,
                    "subject": f"[{format_number(case.number)}] resolved: {case.subject}"[:500],
                    "body": note or "Your request has been resolved.",
                    "case_id": case.id,
                }),
            )  # fmt: skip
        body = self.to_schema(case, clock, now)
        await self._event(
            session, auth, "case.status_changed", case,
            {"from": old, "to": to, "reason": reason, "note": note,
             "case": body.model_dump(mode="json")},
        )  # fmt: skip
        if to == "resolved":
            await self._event(session, auth, "case.resolved", case, body)
        if reopened:
            await self._event(session, auth, "case.reopened", case, body)

    @staticmethod
    def _log(
        session: AsyncSession,
        auth: AuthContext,
        case: Case,
        field: str,
        old: str | None,
        new: str | None,
        at: datetime,
        *,
        reason: str | None = None,
        by_system: bool = False,
    ) -> None:
        session.add(
            CaseHistory(
                workspace_id=auth.workspace_id,
                id=uuid7(),
                case_id=case.id,
                field=field,
                from_value=old,
                to_value=new,
                reason=reason,
                # Changes the service makes on its own (the sweep) have no API key.
                api_key_id=None if by_system else auth.api_key_id,
                at=at,
            )
        )

    @staticmethod
    async def _event(
        session: AsyncSession,
        auth: AuthContext,
        type: str,
        case: Case,
        data: schemas.Case | dict[str, Any],
        changed: Sequence[str] = (),
    ) -> None:
        await outbox.record(
            session,
            workspace_id=auth.workspace_id,
            type=type,
            aggregate_type="case",
            aggregate_id=case.id,
            data=data,
            changed_fields=changed,
        )


def _text(value: uuid.UUID | None) -> str | None:
    return str(value) if value is not None else None


def _metrics(
    case: Case, history: Sequence[CaseHistory], clock: PolicyClock | None, now: datetime
) -> schemas.Metrics:
    calendar = clock.calendar if clock is not None else None
    statuses = [row for row in history if row.field == "status"]
    seconds: dict[str, float] = {}
    business: dict[str, float] = {}
    for index, row in enumerate(statuses):
        status = row.to_value or "new"
        if index + 1 < len(statuses):
            end = statuses[index + 1].at
        elif status == "closed":
            # Closed is final: the case spends no more time anywhere.
            end = row.at
        else:
            end = now
        seconds[status] = seconds.get(status, 0.0) + (end - row.at).total_seconds()
        if calendar is not None:
            business[status] = business.get(status, 0.0) + business_minutes_between(
                calendar, row.at, end
            )
    order = [status for status in ("new", "open", "pending", "resolved", "closed")
             if status in seconds]  # fmt: skip

    def wall(end: datetime | None) -> float | None:
        return (end - case.created_at).total_seconds() if end is not None else None

    def biz(end: datetime | None) -> float | None:
        if end is None or calendar is None:
            return None
        return round(business_minutes_between(calendar, case.created_at, end), 2)

    return schemas.Metrics(
        case_id=case.id,
        calendar_id=clock.calendar_row.id if clock is not None else None,
        time_in_status=[
            schemas.StatusTime(
                status=status,
                seconds=round(seconds[status], 3),
                business_minutes=round(business[status], 2) if calendar is not None else None,
            )
            for status in order
        ],
        first_response_seconds=wall(case.first_response_at),
        first_response_business_minutes=biz(case.first_response_at),
        resolution_seconds=wall(case.resolved_at),
        resolution_business_minutes=biz(case.resolved_at),
        reopen_count=case.reopen_count,
        status_changes=max(0, len(statuses) - 1),
        queue_changes=sum(1 for row in history if row.field == "queue"),
        assignee_changes=sum(1 for row in history if row.field == "assignee"),
    )


case = CaseService()


async def _existing_cases(
    session: AsyncSession, workspace_id: uuid.UUID, ids: Collection[uuid.UUID]
) -> set[uuid.UUID]:
    return await CaseRepository(session).existing_ids(workspace_id, ids)


# Interactions may link to cases, and a customer's reply on a case moves it along.
register_link_target("case", _existing_cases)
register_interaction_listener(on_created=case.on_interactions_created)
