"""GraphQL Admin query costs, computed the way Shopify documents them.

shopify.dev/docs/api/usage/limits: scalars and enums cost 0, objects 1, mutations 10,
and a connection costs 2 plus its page size times the cost of one node. The requested
cost is computed before running the query from `first`; the actual cost after, from
the number of nodes each connection really returned.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    VariableNode,
    get_named_type,
)

MAX_PAGE_SIZE = 250
MUTATION_COST = 10


@dataclass
class Walk:
    """What walking one operation needs: its fragments and variables, and what it found."""

    fragments: dict[str, FragmentDefinitionNode]
    variables: dict[str, Any]
    # Bulk queries page through everything, so their connections need no `first`.
    bulk: bool = False
    errors: list[str] = field(default_factory=list)


def fields_of(selection_set: SelectionSetNode | None, walk: Walk) -> Iterator[FieldNode]:
    """Yield the fields of a selection set, with fragments spread in."""
    if selection_set is None:
        return
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            yield selection
        elif isinstance(selection, InlineFragmentNode):
            yield from fields_of(selection.selection_set, walk)
        elif isinstance(selection, FragmentSpreadNode):
            fragment = walk.fragments.get(selection.name.value)
            if fragment is not None:
                yield from fields_of(fragment.selection_set, walk)


def response_key(node: FieldNode) -> str:
    return node.alias.value if node.alias else node.name.value


def int_argument(node: FieldNode, name: str, walk: Walk) -> int | None:
    for argument in node.arguments or ():
        if argument.name.value != name:
            continue
        if isinstance(argument.value, IntValueNode):
            return int(argument.value.value)
        if isinstance(argument.value, VariableNode):
            value = walk.variables.get(argument.value.name.value)
            return value if isinstance(value, int) else None
    return None


def is_connection(type_: GraphQLObjectType) -> bool:
    return type_.name.endswith("Connection")


def requested_cost(
    schema: GraphQLSchema, operation: OperationDefinitionNode, walk: Walk
) -> int:
    """Return the cost Shopify would reserve for the operation; problems go to walk.errors."""
    if operation.operation == OperationType.MUTATION:
        return MUTATION_COST * sum(
            1 for node in fields_of(operation.selection_set, walk) if not node.name.value.startswith("__")
        )
    assert schema.query_type is not None
    return _cost(operation.selection_set, schema.query_type, walk, None)


def actual_cost(
    schema: GraphQLSchema, operation: OperationDefinitionNode, walk: Walk, data: dict[str, Any]
) -> int:
    """Return the operation's cost counting the nodes the response really holds."""
    if operation.operation == OperationType.MUTATION:
        return requested_cost(schema, operation, walk)
    assert schema.query_type is not None
    return _cost(operation.selection_set, schema.query_type, walk, data)


def _cost(
    selection_set: SelectionSetNode | None,
    parent: GraphQLObjectType,
    walk: Walk,
    data: dict[str, Any] | None,
) -> int:
    total = 0
    for node in fields_of(selection_set, walk):
        name = node.name.value
        if name.startswith("__"):
            continue
        definition = parent.fields[name]
        named = get_named_type(definition.type)
        if not isinstance(named, GraphQLObjectType):
            continue
        value = None if data is None else data.get(response_key(node))
        if data is not None and value is None:
            continue
        if is_connection(named):
            total += _connection_cost(node, named, walk, value)
        else:
            sample = value[0] if isinstance(value, list) and value else value
            total += 1 + _cost(node.selection_set, named, walk, sample if data is not None else None)
    return total


def _connection_cost(
    node: FieldNode, connection: GraphQLObjectType, walk: Walk, data: dict[str, Any] | None
) -> int:
    first = int_argument(node, "first", walk)
    if data is None and not walk.bulk:
        if first is None:
            walk.errors.append("you must provide one of first or last")
        elif not 0 <= first <= MAX_PAGE_SIZE:
            walk.errors.append(
                f"The first argument on {node.name.value} must be between 0 and {MAX_PAGE_SIZE}."
            )
    page = max(0, min(first or 0, MAX_PAGE_SIZE))
    total = 2
    for child in fields_of(node.selection_set, walk):
        if child.name.value == "nodes":
            node_type = get_named_type(connection.fields["nodes"].type)
            items = None if data is None else data.get(response_key(child)) or []
            total += _nodes_cost(child, node_type, walk, items, page)
        elif child.name.value == "edges":
            edge_type = get_named_type(connection.fields["edges"].type)
            edges = None if data is None else data.get(response_key(child)) or []
            for edge_child in fields_of(child.selection_set, walk):
                if edge_child.name.value == "node":
                    node_type = get_named_type(edge_type.fields["node"].type)
                    key = response_key(edge_child)
                    items = None if edges is None else [edge.get(key) for edge in edges]
                    total += _nodes_cost(edge_child, node_type, walk, items, page)
    return total


def _nodes_cost(
    node: FieldNode, node_type: Any, walk: Walk, items: list[Any] | None, page: int
) -> int:
    """Return the cost of a connection's nodes: `page` of them when estimating."""
    if items is None:
        return page * (1 + _cost(node.selection_set, node_type, walk, None))
    return sum(1 + _cost(node.selection_set, node_type, walk, item or {}) for item in items)
