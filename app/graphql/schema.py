"""The GraphQL schema, assembled from each domain's query and mutation types."""

from __future__ import annotations

import strawberry
from strawberry.extensions import AddValidationRules, MaxAliasesLimiter, QueryDepthLimiter
from strawberry.tools import merge_types

import app.modules  # noqa: F401  (registrations)
from app.account.graphql import AccountMutation, AccountRootQuery
from app.api_key.graphql import ApiKeyMutation, ApiKeyQuery
from app.case.graphql import CaseMutation, CaseRootQuery
from app.config import Settings
from app.contact.graphql import ContactMutation, ContactRootQuery
from app.graphql.extensions import ProblemCodes, cost_limit_rule
from app.interaction.graphql import InteractionMutation, InteractionRootQuery
from app.purchase.graphql import PurchaseMutation, PurchaseRootQuery
from app.workspace.graphql import WorkspaceMutation, WorkspaceQuery

Query = merge_types(
    "Query",
    (
        WorkspaceQuery,
        ApiKeyQuery,
        ContactRootQuery,
        AccountRootQuery,
        InteractionRootQuery,
        PurchaseRootQuery,
        CaseRootQuery,
    ),
)
Mutation = merge_types(
    "Mutation",
    (
        WorkspaceMutation,
        ApiKeyMutation,
        ContactMutation,
        AccountMutation,
        InteractionMutation,
        PurchaseMutation,
        CaseMutation,
    ),
)


def create_schema(settings: Settings) -> strawberry.Schema:
    return strawberry.Schema(
        query=Query,
        mutation=Mutation,
        extensions=[
            ProblemCodes,
            lambda: QueryDepthLimiter(max_depth=settings.graphql_max_depth),
            lambda: MaxAliasesLimiter(max_alias_count=settings.graphql_max_aliases),
            lambda: AddValidationRules([cost_limit_rule(settings.graphql_max_cost)]),
        ],
    )
