"""Each case's status, queue, assignee and priority changes, oldest first, in one batch."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING

from strawberry.dataloader import DataLoader

from app.auth.scopes import Scope
from app.case.service import case as case_service
from app.models import CaseHistory

if TYPE_CHECKING:
    from app.graphql.context import Context

Key = uuid.UUID
Result = list[CaseHistory]


def case_history_by_case(context: Context) -> DataLoader[Key, Result]:
    auth = context.require(Scope.cases_read)

    async def load(ids: Sequence[Key]) -> list[Result]:
        found = await context.read(
            lambda session: case_service.history_for_cases(session, auth, ids)
        )
        return [found.get(case_id, []) for case_id in ids]

    return DataLoader(load_fn=load)
