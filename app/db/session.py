"""The request's unit of work: one session, one transaction, bound to one workspace."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.config import Settings
from app.db.direct import DirectPool
from app.db.engine import create_engine, create_sessionmaker

_BIND_WORKSPACE = text("SELECT set_config('app.workspace_id', :workspace_id, true)")


@dataclass
class Database:
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    direct: DirectPool

    @classmethod
    def connect(cls, url: str, settings: Settings) -> Database:
        engine = create_engine(url, settings)
        return cls(
            engine=engine,
            sessionmaker=create_sessionmaker(engine),
            direct=DirectPool(url, settings),
        )

    async def dispose(self) -> None:
        await self.direct.close()
        await self.engine.dispose()


async def bind_workspace(session: AsyncSession, workspace_id: uuid.UUID) -> None:
    """Scope the current transaction to one workspace for row-level security.

    ``set_config(..., true)`` lasts until the transaction ends, so a pooled connection never
    carries one request's workspace into the next.
    """
    await session.execute(_BIND_WORKSPACE, {"workspace_id": str(workspace_id)})


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    database: Database = request.app.state.database
    session = database.sessionmaker()
    # The route class commits this session before the response goes out (app.kit.routing).
    request.state.session = session
    try:
        yield session
    finally:
        await session.close()


SessionDep = Annotated[AsyncSession, Depends(get_session)]
