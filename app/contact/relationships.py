"""Typed links between contacts. Each link is stored in both directions, so either contact
lists it (with the type seen from its own side) and deleting either side removes both."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import delete, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.dependencies import AuthContext
from app.contact.references import register_contact_reference
from app.contact.relationship_schemas import Relationship, RelationshipCreate
from app.contact.service import contact as contact_service
from app.db.params import rows_among
from app.events import outbox
from app.kit.errors import Conflict, FieldError, NotFound, ValidationFailed
from app.kit.ids import uuid7
from app.models import ContactRelationship
from app.models.contact_relationship import RELATIONSHIP_INVERSES


class RelationshipNotFound(NotFound):
    title = "No such relationship"


# Built once with bound parameters (app.db.params): every contact page reads its links.
_BY_CONTACTS = rows_among(
    ContactRelationship, ContactRelationship.contact_id, "contact_ids"
).order_by(ContactRelationship.contact_id, ContactRelationship.id)


class RelationshipService:
    async def list_for(
        self, session: AsyncSession, auth: AuthContext, contact_id: uuid.UUID
    ) -> list[ContactRelationship]:
        await contact_service.get(session, auth, contact_id)
        return (await self.by_contacts(session, auth, [contact_id])).get(contact_id, [])

    async def by_contacts(
        self, session: AsyncSession, auth: AuthContext, contact_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, list[ContactRelationship]]:
        """Each contact's links, in one query (the DataLoader's batch)."""
        result = await session.execute(
            _BY_CONTACTS, {"workspace_id": auth.workspace_id, "contact_ids": list(contact_ids)}
        )
        grouped: dict[uuid.UUID, list[ContactRelationship]] = {}
        for row in result.scalars():
            grouped.setdefault(row.contact_id, []).append(row)
        return grouped

    async def create(
        self,
        session: AsyncSession,
        auth: AuthContext,
        contact_id: uuid.UUID,
        data: RelationshipCreate,
    ) -> ContactRelationship:
        """Link two contacts; the inverse link appears on the other contact.

        Raises:
            ValidationFailed: a self-link, or the related contact does not exist.
            Conflict: the same link exists already.
        """
        if data.related_contact_id == contact_id:
            raise ValidationFailed(
                "A contact cannot be related to itself",
                errors=[FieldError(field="related_contact_id", message="is the contact itself")],
            )
        await contact_service.get(session, auth, contact_id)
        related = await contact_service.get_many(session, auth, [data.related_contact_id])
        if data.related_contact_id not in related:
            raise ValidationFailed(
                "No such related contact",
                errors=[FieldError(field="related_contact_id", message="no such contact")],
            )
        exists = await session.execute(
            select(ContactRelationship.id).where(
                ContactRelationship.workspace_id == auth.workspace_id,
                ContactRelationship.contact_id == contact_id,
                ContactRelationship.related_contact_id == data.related_contact_id,
                ContactRelationship.type == data.type,
            )
        )
        if exists.first() is not None:
            raise Conflict("These contacts are already linked this way")
        pair_id = uuid7()
        forward = ContactRelationship(
            workspace_id=auth.workspace_id,
            id=uuid7(),
            contact_id=contact_id,
            related_contact_id=data.related_contact_id,
            type=data.type,
            pair_id=pair_id,
            note=data.note,
        )
        inverse = ContactRelationship(
            workspace_id=auth.workspace_id,
            id=uuid7(),
            contact_id=data.related_contact_id,
            related_contact_id=contact_id,
            type=RELATIONSHIP_INVERSES[data.type],
            pair_id=pair_id,
            note=data.note,
        )
        session.add_all([forward, inverse])
        # A concurrent identical link trips the unique constraint here: a 409 (duplicate).
        await session.flush()
        await session.refresh(forward, ["created_at"])
        await outbox.record(
            session,
            workspace_id=auth.workspace_id,
            type="relationship.created",
            aggregate_type="contact",
            aggregate_id=contact_id,
            data=Relationship.model_validate(forward),
        )
        return forward

    async def delete(
        self,
        session: AsyncSession,
        auth: AuthContext,
        contact_id: uuid.UUID,
        relationship_id: uuid.UUID,
    ) -> None:
        """Remove a link, both directions."""
        await contact_service.get(session, auth, contact_id)
        row = (
            await session.execute(
                select(ContactRelationship).where(
                    ContactRelationship.workspace_id == auth.workspace_id,
                    ContactRelationship.contact_id == contact_id,
                    ContactRelationship.id == relationship_id,
                )
            )
        ).scalar_one_or_none()
        if row is None:
            raise RelationshipNotFound()
        data = Relationship.model_validate(row)
        await session.execute(
            delete(ContactRelationship).where(
                ContactRelationship.workspace_id == auth.workspace_id,
                ContactRelationship.pair_id == row.pair_id,
            )
        )
        await outbox.record(
            session,
            workspace_id=auth.workspace_id,
            type="relationship.deleted",
            aggregate_type="contact",
            aggregate_id=contact_id,
            data=data,
        )


async def _move_relationships(
    session: AsyncSession,
    workspace_id: uuid.UUID,
    survivor_id: uuid.UUID,
    absorbed_ids: Sequence[uuid.UUID],
) -> None:
    """Absorbed contacts' links become the survivor's; links that would point at the survivor
    itself, or repeat one it has, are dropped."""
    params = {"w": workspace_id, "s": survivor_id, "a": list(absorbed_ids)}
    involved = [survivor_id, *absorbed_ids]
    await session.execute(
        text(
            "DELETE FROM contact_relationships WHERE workspace_id = :w AND "
            "contact_id = ANY(:all) AND related_contact_id = ANY(:all)"
        ),
        {**params, "all": involved},
    )
    for column, other in (
        ("contact_id", "related_contact_id"),
        ("related_contact_id", "contact_id"),
    ):
        await session.execute(
            text(
                f"DELETE FROM contact_relationships r WHERE r.workspace_id = :w "
                f"AND r.{column} = ANY(:a) AND EXISTS (SELECT 1 FROM contact_relationships k "
                f"WHERE k.workspace_id = :w AND k.{column} = :s AND k.{other} = r.{other} "
                f"AND k.type = r.type)"
            ),
            params,
        )
        await session.execute(
            text(
                f"DELETE FROM contact_relationships r WHERE r.workspace_id = :w "
                f"AND r.{column} = ANY(:a) AND r.id NOT IN (SELECT DISTINCT ON "
                f"({other}, type) id FROM contact_relationships WHERE workspace_id = :w "
                f"AND {column} = ANY(:a) ORDER BY {other}, type, id)"
            ),
            params,
        )
        await session.execute(
            text(
                f"UPDATE contact_relationships SET {column} = :s "
                f"WHERE workspace_id = :w AND {column} = ANY(:a)"
            ),
            params,
        )


register_contact_reference("contact_relationships", _move_relationships)
relationship = RelationshipService()
