"""The GraphQL schema, assembled from each domain's query and mutation types."""

from __future__ import annotations

import strawberry
from strawberry.extensions import (
    AddValidationRules,
    MaxAliasesLimiter,
    ParserCache,
    QueryDepthLimiter,
    ValidationCache,
)
from strawberry.tools import merge_types

import app.modules  # noqa: F401  (registrations)
from app.account.graphql import AccountMutation, AccountRootQuery
from app.api_key.graphql import ApiKeyMutation, ApiKeyQuery
from app.case.graphql import CaseMutation, CaseRootQuery
from app.config import Settings
from app.contact.graphql import ContactMutation, ContactRootQuery
from app.graphql.extensions import ProblemCodes, cost_limit_rule
from app.interaction.graphql import InteractionMutation, InteractionRootQuery
from app.loyalty.graphql import LoyaltyMutation, LoyaltyRootQuery
from app.opportunity.graphql import SalesMutation, SalesRootQuery
from app.purchase.graphql import PurchaseMutation, PurchaseRootQuery
from app.workspace.graphql import WorkspaceMutation, WorkspaceQuery

GRAPHQL_CACHED_QUERIES = 256

Query = merge_types(
    "Query",
    (
        WorkspaceQuery,
        ApiKeyQuery,
        ContactRootQuery,
        AccountRootQuery,
        InteractionRootQuery,
        PurchaseRootQuery,
        LoyaltyRootQuery,
        SalesRootQuery,
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
        LoyaltyMutation,
        SalesMutation,
        CaseMutation,
    ),
)


def create_schema(settings: Settings) -> strawberry.Schema:
    # The rule classes are made once: the validation cache is keyed by them, and the limiters
    # would otherwise make new ones for every request.
    rules = [
        *QueryDepthLimiter(max_depth=settings.graphql_max_depth).validation_rules,
        *MaxAliasesLimiter(max_alias_count=settings.graphql_max_aliases).validation_rules,
        cost_limit_rule(settings.graphql_max_cost),
    ]
    return strawberry.Schema(
        query=Query,
        mutation=Mutation,
        extensions=[
            ProblemCodes,
            # A client sends the same few query texts over and over: parse and validate each
            # once (validation does not depend on variables). Bounded, so distinct texts from
            # a hostile client cannot grow memory.
            lambda: ParserCache(maxsize=GRAPHQL_CACHED_QUERIES),
            lambda: ValidationCache(maxsize=GRAPHQL_CACHED_QUERIES),
            lambda: AddValidationRules(rules),
        ],
    )
