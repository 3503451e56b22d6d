"""Bulk query operations: CREATED → RUNNING → COMPLETED, with a JSONL result file.

As on Shopify, the query's connections are paged through completely, each node is one
JSON line, nodes of a nested connection follow as their own lines with `__parentId`,
and a bulk_operations/finish webhook announces the end.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Iterator
from typing import Any

from graphql import (
    DocumentNode,
    ExecutionResult,
    FieldNode,
    FragmentDefinitionNode,
    GraphQLError,
    GraphQLObjectType,
    OperationDefinitionNode,
    OperationType,
    execute,
    get_named_type,
    parse,
    validate,
)

from opspulse.sim.fake_shopify import resources
from opspulse.sim.fake_shopify.cost import Walk, fields_of, is_connection, response_key
from opspulse.sim.fake_shopify.schema import SCHEMA, Context, gid, root_value
from opspulse.sim.fake_shopify.state import BulkOperation, FakeShopify

MAX_CONNECTIONS = 5
MAX_DEPTH = 2


class BulkRunner:
    """Starts bulk queries and runs them in the background of the server's event loop."""

    def __init__(self, world: FakeShopify, *, step_delay: float = 0.05) -> None:
        self.world = world
        self.step_delay = step_delay
        self.tasks: set[asyncio.Task[None]] = set()

    def start(self, context: Context, query: str) -> tuple[BulkOperation | None, list[dict[str, Any]]]:
        """Return the new CREATED operation, or None and Shopify-style userErrors."""
        shop = context.shop
        running = next(
            (op for op in shop.bulk_operations if op.status in ("CREATED", "RUNNING")), None
        )
        if running is not None:
            return None, [
                _user_error(
                    "A bulk query operation for this app and shop is already in progress: "
                    f"{gid('BulkOperation', running.id)}.",
                    code="OPERATION_IN_PROGRESS",
                )
            ]
        try:
            document = parse(query)
        except GraphQLError as error:
            return None, [_user_error(f"Invalid bulk query: {error.message}", field=["query"])]
        problem = _bulk_query_problem(document)
        if problem:
            return None, [_user_error(problem, field=["query"])]
        operation = BulkOperation(
            id=next(self.world.ids.bulk_operation),
            query=query,
            status="CREATED",
            created_at=self.world.clock.now(),
        )
        shop.bulk_operations.append(operation)
        # A snapshot, so the run can read it off the event loop while orders keep coming.
        snapshot = dataclasses.replace(shop, orders=dict(shop.orders), variants=list(shop.variants))
        bulk_context = dataclasses.replace(context, shop=snapshot, bulk=True)
        task = asyncio.get_running_loop().create_task(self._run(bulk_context, operation, document))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return operation, []

    async def _run(self, context: Context, operation: BulkOperation, document: DocumentNode) -> None:
        await asyncio.sleep(self.step_delay)
        operation.status = "RUNNING"
        await asyncio.sleep(self.step_delay)
        # Off the event loop, so the shop's API keeps answering (and timing its calls) meanwhile.
        result, body, line_count, roots = await asyncio.to_thread(_run_query, context, document)
        operation.completed_at = self.world.clock.now()
        if result.errors or result.data is None:
            codes = {(error.extensions or {}).get("code") for error in result.errors or []}
            operation.status = "FAILED"
            operation.error_code = "ACCESS_DENIED" if "ACCESS_DENIED" in codes else "INTERNAL_SERVER_ERROR"
        else:
            operation.body = body
            operation.object_count = line_count
            operation.root_object_count = roots
            if line_count:
                operation.url = f"{context.base_url}_fake/bulk/{operation.id}.jsonl"
            operation.status = "COMPLETED"
        shop = self.world.shops[context.shop.domain]
        self.world.notify(shop, "bulk_operations/finish", resources.bulk_operation_finish(operation))


def _run_query(context: Context, document: DocumentNode) -> tuple[ExecutionResult, bytes, int, int]:
    """Execute a bulk query; return its result, JSONL file, line count and root object count."""
    result = execute(SCHEMA, document, root_value=root_value(), context_value=context)
    if result.errors or result.data is None:
        return result, b"", 0, 0
    lines, roots = jsonl_lines(document, result.data)
    body = b"".join(
        json.dumps(line, separators=(",", ":"), ensure_ascii=False).encode() + b"\n" for line in lines
    )
    return result, body, len(lines), roots


def _user_error(
    message: str, *, code: str = "INVALID", field: list[str] | None = None
) -> dict[str, Any]:
    return {"field": field, "message": message, "code": code}


def _bulk_query_problem(document: DocumentNode) -> str | None:
    """Return why Shopify would refuse this bulk query, or None."""
    errors = validate(SCHEMA, document)
    if errors:
        return f"Invalid bulk query: {errors[0].message}"
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if len(operations) != 1 or operations[0].operation != OperationType.QUERY:
        return "Bulk queries must contain exactly one query operation."
    walk = _walk(document)
    assert SCHEMA.query_type is not None
    top = list(fields_of(operations[0].selection_set, walk))
    if len(top) != 1 or not _is_connection_field(SCHEMA.query_type, top[0]):
        return "Bulk queries must contain at least one connection."
    count = 0
    pending = [(top[0], SCHEMA.query_type, 1)]
    while pending:
        node, parent, depth = pending.pop()
        count += 1
        if depth > MAX_DEPTH:
            return f"Bulk queries cannot contain connections with a nesting depth greater than {MAX_DEPTH}."
        connection = get_named_type(parent.fields[node.name.value].type)
        for node_field, node_type in _node_fields(node, connection, walk):
            nested = [f for f in fields_of(node_field.selection_set, walk) if _is_connection_field(node_type, f)]
            if nested and not any(f.name.value == "id" for f in fields_of(node_field.selection_set, walk)):
                return f"The parent '{node_field.name.value}' field for a nested connection must select the 'id' field."
            pending.extend((f, node_type, depth + 1) for f in nested)
    if count > MAX_CONNECTIONS:
        return f"Bulk queries cannot contain more than {MAX_CONNECTIONS} connections."
    return None


def jsonl_lines(document: DocumentNode, data: dict[str, Any]) -> tuple[list[dict[str, Any]], int]:
    """Return the result as Shopify's JSONL objects, and how many are top-level nodes."""
    walk = _walk(document)
    operation = next(d for d in document.definitions if isinstance(d, OperationDefinitionNode))
    assert SCHEMA.query_type is not None
    top = next(fields_of(operation.selection_set, walk))
    connection = get_named_type(SCHEMA.query_type.fields[top.name.value].type)
    lines: list[dict[str, Any]] = []
    roots = 0
    for node_field, node_type, node in _nodes(top, connection, data[response_key(top)], walk):
        roots += 1
        _emit(node_field, node_type, node, None, lines, walk)
    return lines, roots


def _emit(
    node_field: FieldNode,
    node_type: GraphQLObjectType,
    node: dict[str, Any],
    parent_id: str | None,
    lines: list[dict[str, Any]],
    walk: Walk,
) -> None:
    line: dict[str, Any] = {}
    children = []
    for field in fields_of(node_field.selection_set, walk):
        key = response_key(field)
        if _is_connection_field(node_type, field):
            children.append((field, get_named_type(node_type.fields[field.name.value].type), node[key]))
        else:
            line[key] = node[key]
    if parent_id is not None:
        line["__parentId"] = parent_id
    lines.append(line)
    for field, connection, value in children:
        for child_field, child_type, child in _nodes(field, connection, value, walk):
            _emit(child_field, child_type, child, node["id"], lines, walk)


def _nodes(
    connection_field: FieldNode, connection: GraphQLObjectType, value: dict[str, Any], walk: Walk
) -> Iterator[tuple[FieldNode, GraphQLObjectType, dict[str, Any]]]:
    """Yield (node field, node type, node data) for each node a connection returned."""
    for child in fields_of(connection_field.selection_set, walk):
        if child.name.value == "nodes":
            node_type = get_named_type(connection.fields["nodes"].type)
            for node in value[response_key(child)]:
                yield child, node_type, node
        elif child.name.value == "edges":
            edge_type = get_named_type(connection.fields["edges"].type)
            for edge_child in fields_of(child.selection_set, walk):
                if edge_child.name.value == "node":
                    node_type = get_named_type(edge_type.fields["node"].type)
                    for edge in value[response_key(child)]:
                        yield edge_child, node_type, edge[response_key(edge_child)]


def _node_fields(
    connection_field: FieldNode, connection: GraphQLObjectType, walk: Walk
) -> list[tuple[FieldNode, GraphQLObjectType]]:
    """Return the `edges { node }` and `nodes` fields selected on a connection, with types."""
    found = []
    for child in fields_of(connection_field.selection_set, walk):
        if child.name.value == "nodes":
            found.append((child, get_named_type(connection.fields["nodes"].type)))
        elif child.name.value == "edges":
            edge_type = get_named_type(connection.fields["edges"].type)
            for edge_child in fields_of(child.selection_set, walk):
                if edge_child.name.value == "node":
                    found.append((edge_child, get_named_type(edge_type.fields["node"].type)))
    return found


def _is_connection_field(parent: GraphQLObjectType, field: FieldNode) -> bool:
    if field.name.value.startswith("__"):
        return False
    named = get_named_type(parent.fields[field.name.value].type)
    return isinstance(named, GraphQLObjectType) and is_connection(named)


def _walk(document: DocumentNode) -> Walk:
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    return Walk(fragments=fragments, variables={}, bulk=True)
