"""Error codes, and refusing over-deep or over-costly queries before they run."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLInterfaceType,
    GraphQLNamedType,
    GraphQLObjectType,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationContext,
    ValidationRule,
    VariableNode,
    get_named_type,
)
from strawberry.extensions import SchemaExtension

from app.kit.context import request_id_var
from app.kit.errors import CRMError

logger = logging.getLogger("crm.graphql")


class ProblemCodes(SchemaExtension):
    """Gives every error ``extensions.code``; hides the message of unexpected ones."""

    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        if result is None or not result.errors:
            return
        for index, error in enumerate(result.errors):
            result.errors[index] = self._coded(error)

    @staticmethod
    def _coded(error: GraphQLError) -> GraphQLError:
        original = error.original_error
        if isinstance(original, CRMError):
            extensions = {"code": original.code, "status": original.status_code}
            if original.errors:
                extensions["errors"] = [item.model_dump() for item in original.errors]
            extensions.update(original.extra)
            message = original.detail
        elif original is None:
            # Parse and validation errors: the client's query, safe to show.
            extensions = {"code": "graphql_validation_failed", "status": 400}
            message = error.message
        else:
            logger.error("unhandled error in resolver", exc_info=original)
            extensions = {"code": "internal_error", "status": 500}
            message = "An unexpected error occurred"
        request_id = request_id_var.get()
        if request_id is not None:
            extensions["request_id"] = request_id
        return GraphQLError(
            message, nodes=error.nodes, source=error.source, positions=error.positions,
            path=error.path, original_error=None, extensions=extensions,
        )  # fmt: skip


DEFAULT_PAGE_SIZE = 50


def cost_limit_rule(max_cost: int) -> type[ValidationRule]:
    """A validation rule estimating the rows a query can touch.

    Each field costs 1 times the product of the page sizes (``first``/``last``) of the
    connections above it; a connection without a size counts as the default page.
    """

    class CostLimit(ValidationRule):
        def __init__(self, context: ValidationContext) -> None:
            super().__init__(context)
            self.fragments: dict[str, FragmentDefinitionNode] = {}

        def enter_document(self, node: Any, *_: Any) -> None:
            self.fragments = {
                definition.name.value: definition
                for definition in node.definitions
                if isinstance(definition, FragmentDefinitionNode)
            }

        def enter_operation_definition(self, node: OperationDefinitionNode, *_: Any) -> None:
            schema = self.context.schema
            root = {
                "query": schema.query_type,
                "mutation": schema.mutation_type,
                "subscription": schema.subscription_type,
            }[node.operation.value]
            if root is None:
                return
            cost = self._cost(node.selection_set, root, 1, set())
            if cost > max_cost:
                self.report_error(GraphQLError(
                    f"Query cost {cost} exceeds the limit of {max_cost}; ask for smaller pages",
                    nodes=[node],
                ))  # fmt: skip

        def _page_size(self, field: FieldNode) -> int | None:
            for argument in field.arguments or ():
                if argument.name.value in ("first", "last"):
                    if isinstance(argument.value, IntValueNode):
                        return max(int(argument.value.value), 1)
                    if isinstance(argument.value, VariableNode):
                        # Validation runs before variables are known; resolvers still refuse
                        # pages over the maximum.
                        return DEFAULT_PAGE_SIZE
            return None

        def _cost(
            self,
            selection_set: SelectionSetNode | None,
            parent: GraphQLNamedType,
            multiplier: int,
            seen_fragments: set[str],
        ) -> int:
            if selection_set is None or not isinstance(
                parent, (GraphQLObjectType, GraphQLInterfaceType)
            ):
                return 0
            total = 0
            for selection in selection_set.selections:
                if isinstance(selection, FieldNode):
                    definition = parent.fields.get(selection.name.value)
                    if definition is None:
                        continue
                    child_type = get_named_type(definition.type)
                    size = self._page_size(selection)
                    if size is None and child_type.name.endswith("Connection"):
                        size = DEFAULT_PAGE_SIZE
                    child_multiplier = multiplier * (size or 1)
                    total += multiplier + self._cost(
                        selection.selection_set, child_type, child_multiplier, seen_fragments
                    )
                elif isinstance(selection, InlineFragmentNode):
                    fragment_type: GraphQLNamedType = parent
                    if selection.type_condition is not None:
                        fragment_type = (
                            self.context.schema.get_type(selection.type_condition.name.value)
                            or parent
                        )
                    total += self._cost(
                        selection.selection_set, fragment_type, multiplier, seen_fragments
                    )
                elif isinstance(selection, FragmentSpreadNode):
                    name = selection.name.value
                    fragment = self.fragments.get(name)
                    if fragment is None or name in seen_fragments:
                        continue
                    spread_type: GraphQLNamedType = (
                        self.context.schema.get_type(fragment.type_condition.name.value) or parent
                    )
                    total += self._cost(
                        fragment.selection_set, spread_type, multiplier, seen_fragments | {name}
                    )
            return total

    return CostLimit
