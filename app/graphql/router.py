"""/graphql: POST runs queries (bearer key required), GET serves the GraphiQL explorer."""

from __future__ import annotations

from typing import Any

from fastapi import Depends, Request
from starlette.responses import HTMLResponse
from strawberry.fastapi import GraphQLRouter
from strawberry.http import GraphQLHTTPResponse
from strawberry.types import ExecutionResult

from app.auth.dependencies import authenticate
from app.config import Settings
from app.db.session import SessionDep
from app.graphql.context import Context
from app.graphql.schema import create_schema
from app.kit.routing import UnitOfWorkRoute
from app.web.docs import graphiql_html


async def get_context(request: Request, session: SessionDep) -> Context:
    # Only POST executes operations; GET just serves the explorer page.
    auth = await authenticate(request, session) if request.method == "POST" else None
    context = Context(http_request=request, session=session, auth_context=auth)
    request.state.before_finish = context.close
    return context


class CRMGraphQLRouter(GraphQLRouter[Context, None]):
    async def render_graphql_ide(self, request: Request) -> HTMLResponse:
        return HTMLResponse(graphiql_html())

    async def process_result(
        self, request: Request, result: ExecutionResult
    ) -> GraphQLHTTPResponse:
        if result.errors:
            # A response carrying errors is not an outcome worth replaying for an
            # Idempotency-Key: the failed mutations rolled back and may be retried.
            request.state.idempotency = None
        return await super().process_result(request, result)


def create_graphql_router(settings: Settings) -> CRMGraphQLRouter:
    context_dependency: Any = Depends(get_context)
    return CRMGraphQLRouter(
        create_schema(settings),
        context_getter=context_dependency.dependency,
        allow_queries_via_get=False,
        route_class=UnitOfWorkRoute,
        include_in_schema=False,
    )
