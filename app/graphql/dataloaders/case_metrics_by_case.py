"""Each case's metrics (time per status, response and resolution times), in one batch."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.dataloader import DataLoader

from app.auth.scopes import Scope
from app.case import schemas
from app.case.service import case as case_service

if TYPE_CHECKING:
    from app.graphql.context import Context

Key = uuid.UUID
Result = schemas.Metrics | None


def case_metrics_by_case(context: Context) -> DataLoader[Key, Result]:
    auth = context.require(Scope.cases_read)

    async def load(ids: Sequence[Key]) -> list[Result]:
        async def compute(session: AsyncSession) -> dict[uuid.UUID, schemas.Metrics]:
            cases = await case_service.get_many(session, auth, ids)
            return await case_service.metrics_for(session, auth, list(cases.values()))

        found = await context.read(compute)
        return [found.get(case_id) for case_id in ids]

    return DataLoader(load_fn=load)
