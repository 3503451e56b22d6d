"""POST /admin/api/<version>/graphql.json: authentication, cost limits, execution.

Every call is recorded per shop (`FakeShopify.calls`), so a test can check the
client's pace; every answered query carries `extensions.cost` from the shop's bucket.
"""

from __future__ import annotations

import re
import time
from typing import Any

from graphql import (
    FragmentDefinitionNode,
    GraphQLError,
    execute,
    get_operation_ast,
    parse,
    validate,
)
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from opspulse.sim.fake_shopify.cost import Walk, actual_cost, requested_cost
from opspulse.sim.fake_shopify.schema import SCHEMA, Context, root_value
from opspulse.sim.fake_shopify.services import Services, services
from opspulse.sim.fake_shopify.state import API_VERSIONS, CallRecord, CostBucket, Shop

MAX_QUERY_COST = 1000
VERSION = re.compile(r"^(\d{4}-\d{2}|unstable)$")
INVALID_TOKEN = {"errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"}
RATE_LIMITS_DOC = "https://shopify.dev/api/usage/rate-limits"


async def graphql(request: Request) -> Response:
    # A call counts when it arrives, as Shopify's limits do, not when its answer is ready.
    arrived = time.monotonic()
    svc = services(request)
    world = svc.world
    shop = world.shops.get(request.path_params["shop"])
    version = request.path_params["version"]
    if shop is None or not VERSION.match(version):
        return JSONResponse({"errors": "Not Found"}, 404)
    # An unsupported version is served by the oldest supported one, and the header says so.
    served = version if version in API_VERSIONS or version == "unstable" else API_VERSIONS[0]
    headers = {"X-Shopify-API-Version": served}
    access = world.authenticate(shop, request.headers.get("x-shopify-access-token"))
    if access is None:
        _record(svc, shop, arrived, status=401)
        return JSONResponse(INVALID_TOKEN, 401, headers=headers)
    try:
        body = await request.json()
        query = body["query"]
        variables = body.get("variables") or {}
        if not isinstance(query, str) or not isinstance(variables, dict):
            raise TypeError
    except (ValueError, KeyError, TypeError):
        _record(svc, shop, arrived, status=400)
        return JSONResponse({"errors": {"query": "Required parameter missing or invalid"}}, 400, headers=headers)
    context = Context(
        world=world,
        shop=shop,
        scopes=access.scopes,
        api_version=served,
        base_url=str(request.base_url),
        start_bulk=svc.bulk.start,
    )
    answer = _answer(svc, shop, arrived, context, query, variables, body.get("operationName"))
    return JSONResponse(answer, headers=headers)


def _answer(
    svc: Services,
    shop: Shop,
    arrived: float,
    context: Context,
    query: str,
    variables: dict[str, Any],
    operation_name: str | None,
) -> dict[str, Any]:
    try:
        document = parse(query)
    except GraphQLError as error:
        _record(svc, shop, arrived, status=200)
        return {"errors": [error.formatted]}
    errors = validate(SCHEMA, document)
    operation = get_operation_ast(document, operation_name)
    if errors or operation is None:
        _record(svc, shop, arrived, status=200)
        messages = [error.formatted for error in errors] or [{"message": "An operation name is required"}]
        return {"errors": messages}
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    walk = Walk(fragments=fragments, variables=variables)
    requested = requested_cost(SCHEMA, operation, walk)
    if walk.errors:
        _record(svc, shop, arrived, status=200)
        return {"errors": [{"message": message} for message in walk.errors]}
    if requested > MAX_QUERY_COST:
        _record(svc, shop, arrived, status=200, requested=requested)
        return {"errors": [_max_cost_error(requested)]}
    bucket = svc.world.bucket(shop)
    if requested > bucket.available(svc.world.clock.monotonic()):
        _record(svc, shop, arrived, status=200, requested=requested, throttled=True)
        return {
            "errors": [
                {
                    "message": "Throttled",
                    "extensions": {"code": "THROTTLED", "documentation": RATE_LIMITS_DOC},
                }
            ],
            "extensions": {"cost": _cost_extension(requested, None, bucket)},
        }
    bucket.level -= requested
    result = execute(
        SCHEMA,
        document,
        root_value=root_value(),
        context_value=context,
        variable_values=variables,
        operation_name=operation_name,
    )
    actual = actual_cost(SCHEMA, operation, walk, result.data or {})
    bucket.level += requested - actual
    _record(svc, shop, arrived, status=200, requested=requested, actual=actual)
    answer: dict[str, Any] = {}
    if result.errors:
        answer["errors"] = [error.formatted for error in result.errors]
    answer["data"] = result.data
    answer["extensions"] = {"cost": _cost_extension(requested, actual, bucket)}
    return answer


def _max_cost_error(requested: int) -> dict[str, Any]:
    return {
        "message": f"Query cost is {requested}, which exceeds the single query max cost limit "
        f"({MAX_QUERY_COST}).\n\nSee {RATE_LIMITS_DOC} for more information on how the cost of "
        "a query is calculated.\n\nTo query larger amounts of data with fewer limits, bulk "
        "operations should be used instead.",
        "extensions": {
            "code": "MAX_COST_EXCEEDED",
            "cost": requested,
            "maxCost": MAX_QUERY_COST,
            "documentation": RATE_LIMITS_DOC,
        },
    }


def _cost_extension(requested: int, actual: int | None, bucket: CostBucket) -> dict[str, Any]:
    return {
        "requestedQueryCost": requested,
        "actualQueryCost": actual,
        "throttleStatus": {
            "maximumAvailable": bucket.maximum,
            "currentlyAvailable": int(bucket.level),
            "restoreRate": bucket.restore_rate,
        },
    }


def _record(
    svc: Services,
    shop: Shop,
    arrived: float,
    *,
    status: int,
    requested: int | None = None,
    actual: int | None = None,
    throttled: bool = False,
) -> None:
    svc.world.calls.setdefault(shop.domain, []).append(
        CallRecord(
            at=arrived,
            status=status,
            throttled=throttled,
            requested_cost=requested,
            actual_cost=actual,
        )
    )
