"""The control API under /_fake/: what merchants and Shopify itself would do, on demand.

No authentication: it is for tests and the demo on 127.0.0.1. Bodies are JSON and
validated by pydantic; answers are JSON. The routes are listed in the package docstring.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, Field, RootModel, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from opspulse.sim.fake_shopify import store
from opspulse.sim.fake_shopify.oauth import host_param, sign_query
from opspulse.sim.fake_shopify.schema import decimal_string
from opspulse.sim.fake_shopify.services import services
from opspulse.sim.fake_shopify.state import Order, Shop
from opspulse.sim.fake_shopify.webhooks import REST_TOPICS, AFTER_UNINSTALL


class ShopIn(BaseModel):
    domain: str
    name: str
    currency: str = "USD"
    timezone: str = "America/New_York"
    email: str | None = None
    plan: str = "Basic"
    orders: int = Field(default=0, ge=0, le=200_000)
    days: int = Field(default=90, ge=1, le=3650)
    seed: int | None = None


class LineIn(BaseModel):
    sku: str
    quantity: int = Field(default=1, ge=1)


class OrderIn(BaseModel):
    lines: list[LineIn] = []
    financial_status: str = "paid"
    seed: int | None = None


class OrderUpdateIn(BaseModel):
    financial_status: str | None = None
    fulfillment_status: str | None = None


class CancelIn(BaseModel):
    restock: bool = True


class InventoryIn(BaseModel):
    sku: str
    available: int


class ProductIn(BaseModel):
    title: str = Field(min_length=1)
    sku: str = Field(min_length=1)
    price: Decimal = Field(gt=0)
    available: int = 0


class CartIn(BaseModel):
    lines: list[LineIn] = Field(min_length=1)


class CustomerIn(BaseModel):
    email: str


class GrantIn(BaseModel):
    scopes: list[str]


class RefreshFailuresIn(BaseModel):
    count: int = Field(ge=0)
    status: int = Field(default=503, ge=400, le=599)
    retry_after: float | None = Field(default=None, ge=0)


class AdvanceIn(BaseModel):
    seconds: float = Field(gt=0)


class AppWebhooksIn(RootModel[dict[str, list[str]]]):
    pass


Handler = Callable[[Request], Awaitable[Response]]


def guarded(handler: Handler) -> Handler:
    """Turn bad input and refused store actions into JSON 400s instead of 500s."""

    async def wrapper(request: Request) -> Response:
        try:
            return await handler(request)
        except ValidationError as error:
            return JSONResponse({"error": error.errors(include_url=False, include_context=False)}, 400)
        except store.StoreError as error:
            return JSONResponse({"error": str(error)}, 400)
        except LookupError as error:
            return JSONResponse({"error": str(error.args[0])}, 404)

    return wrapper


async def _body(request: Request, model: type[BaseModel]) -> Any:
    raw = await request.body()
    return model.model_validate_json(raw or b"{}")


def _shop(request: Request) -> Shop:
    domain = request.path_params["shop"]
    shop = services(request).world.shops.get(domain)
    if shop is None:
        raise LookupError(f"no shop {domain}")
    return shop


def _order(request: Request, shop: Shop) -> Order:
    order = shop.orders.get(int(request.path_params["order_id"]))
    if order is None:
        raise LookupError(f"no order {request.path_params['order_id']} in {shop.domain}")
    return order


def _lines(shop: Shop, lines: list[LineIn]) -> list[store.LineRequest]:
    requests = []
    for line in lines:
        variant = shop.variant_by_sku(line.sku)
        if variant is None:
            raise store.StoreError(f"no variant with SKU {line.sku!r} in {shop.domain}")
        requests.append(store.LineRequest(variant, line.quantity))
    return requests


def shop_summary(shop: Shop) -> dict[str, Any]:
    first_order_at = min((order.created_at for order in shop.orders.values()), default=None)
    return {
        "id": shop.id,
        "domain": shop.domain,
        "name": shop.name,
        "currency": shop.currency,
        "timezone": shop.timezone,
        "installed": shop.installed,
        "scopes": shop.scopes,
        "orders": len(shop.orders),
        "first_order_at": first_order_at.isoformat() if first_order_at else None,
    }


def order_summary(order: Order) -> dict[str, Any]:
    return {
        "id": order.id,
        "admin_graphql_api_id": f"gid://shopify/Order/{order.id}",
        "name": f"#{order.number}",
        "total_price": decimal_string(order.total),
        "financial_status": order.financial_status,
        "fulfillment_status": order.fulfillment_status,
        "cancelled": order.cancelled_at is not None,
        "customer_email": order.customer.email,
        "line_items": [{"id": line.line_id, "sku": line.sku, "quantity": line.quantity} for line in order.lines],
    }


@guarded
async def list_shops(request: Request) -> Response:
    return JSONResponse({"shops": [shop_summary(s) for s in services(request).world.shops.values()]})


@guarded
async def create_shop(request: Request) -> Response:
    data: ShopIn = await _body(request, ShopIn)
    shop = store.create_shop(services(request).world, **data.model_dump())
    return JSONResponse(shop_detail(shop), 201)


@guarded
async def get_shop(request: Request) -> Response:
    return JSONResponse(shop_detail(_shop(request)))


def shop_detail(shop: Shop) -> dict[str, Any]:
    return shop_summary(shop) | {
        "location_id": shop.location_id,
        "variants": [
            {
                "sku": v.sku,
                "title": v.title,
                "price": decimal_string(v.price),
                "variant_id": v.variant_id,
                "inventory_item_id": v.inventory_item_id,
                "available": v.available,
            }
            for v in shop.variants
        ],
        "subscriptions": [
            {"id": s.id, "topic": s.topic, "uri": s.uri} for s in shop.subscriptions.values()
        ],
    }


@guarded
async def place_order(request: Request) -> Response:
    shop = _shop(request)
    data: OrderIn = await _body(request, OrderIn)
    order = store.place_order(
        services(request).world,
        shop,
        lines=_lines(shop, data.lines),
        financial_status=data.financial_status,
        seed=data.seed,
    )
    return JSONResponse(order_summary(order), 201)


@guarded
async def update_order(request: Request) -> Response:
    shop = _shop(request)
    data: OrderUpdateIn = await _body(request, OrderUpdateIn)
    order = store.update_order(services(request).world, shop, _order(request, shop), **data.model_dump())
    return JSONResponse(order_summary(order))


@guarded
async def cancel_order(request: Request) -> Response:
    shop = _shop(request)
    data: CancelIn = await _body(request, CancelIn)
    order = store.cancel_order(services(request).world, shop, _order(request, shop), restock=data.restock)
    return JSONResponse(order_summary(order))


@guarded
async def set_inventory(request: Request) -> Response:
    shop = _shop(request)
    data: InventoryIn = await _body(request, InventoryIn)
    (line,) = _lines(shop, [LineIn(sku=data.sku)])
    variant = store.set_inventory(services(request).world, shop, line.variant, available=data.available)
    return JSONResponse({"sku": variant.sku, "inventory_item_id": variant.inventory_item_id, "available": variant.available})


@guarded
async def create_product(request: Request) -> Response:
    shop = _shop(request)
    data: ProductIn = await _body(request, ProductIn)
    variant = store.create_product(
        services(request).world, shop, title=data.title, sku=data.sku, price=data.price, available=data.available
    )
    return JSONResponse(
        {"sku": variant.sku, "inventory_item_id": variant.inventory_item_id, "available": variant.available},
        status_code=201,
    )


@guarded
async def create_cart(request: Request) -> Response:
    shop = _shop(request)
    data: CartIn = await _body(request, CartIn)
    token = store.create_cart(services(request).world, shop, lines=_lines(shop, data.lines))
    return JSONResponse({"token": token}, 201)


@guarded
async def uninstall(request: Request) -> Response:
    shop = _shop(request)
    store.uninstall(services(request).world, shop)
    return JSONResponse(shop_summary(shop))


@guarded
async def redact_shop(request: Request) -> Response:
    store.redact_shop(services(request).world, _shop(request))
    return JSONResponse({"sent": "shop/redact"})


@guarded
async def redact_customer(request: Request) -> Response:
    data: CustomerIn = await _body(request, CustomerIn)
    store.redact_customer(services(request).world, _shop(request), email=data.email)
    return JSONResponse({"sent": "customers/redact"})


@guarded
async def request_customer_data(request: Request) -> Response:
    data: CustomerIn = await _body(request, CustomerIn)
    store.request_customer_data(services(request).world, _shop(request), email=data.email)
    return JSONResponse({"sent": "customers/data_request"})


@guarded
async def narrow_grant(request: Request) -> Response:
    shop = _shop(request)
    data: GrantIn = await _body(request, GrantIn)
    shop.next_grant = data.scopes
    return JSONResponse({"next_grant": shop.next_grant})


@guarded
async def expire_tokens(request: Request) -> Response:
    return JSONResponse({"expired": services(request).world.expire_tokens(_shop(request))})


@guarded
async def fail_refreshes(request: Request) -> Response:
    """Answer the shop's next `count` token refreshes with `status` (429, 503…)."""
    shop = _shop(request)
    data: RefreshFailuresIn = await _body(request, RefreshFailuresIn)
    shop.refresh_failures, shop.refresh_failure_status = data.count, data.status
    shop.refresh_failure_retry_after = data.retry_after
    return JSONResponse({"refresh_failures": shop.refresh_failures, "status": shop.refresh_failure_status})


@guarded
async def calls(request: Request) -> Response:
    """Return the shop's GraphQL calls and the most made within any one second."""
    records = services(request).world.calls.get(_shop(request).domain, [])
    times = sorted(record.at for record in records)
    busiest, start = 0, 0
    for end, moment in enumerate(times):
        while moment - times[start] >= 1.0:
            start += 1
        busiest = max(busiest, end - start + 1)
    return JSONResponse(
        {
            "calls": [
                {
                    "at": record.at,
                    "status": record.status,
                    "throttled": record.throttled,
                    "requested_cost": record.requested_cost,
                    "actual_cost": record.actual_cost,
                }
                for record in records
            ],
            "max_per_second": busiest,
        }
    )


@guarded
async def launch(request: Request) -> Response:
    """Open the app from the shop's admin: redirect to app_url with Shopify's signed query."""
    shop = _shop(request)
    app_url = request.query_params.get("app_url")
    if not app_url:
        raise store.StoreError("app_url is required")
    world = services(request).world
    params = {
        "host": host_param(shop.domain),
        "shop": shop.domain,
        "timestamp": str(int(world.clock.now().timestamp())),
    }
    params["hmac"] = sign_query(params, world.app.client_secret)
    separator = "&" if "?" in app_url else "?"
    return RedirectResponse(f"{app_url}{separator}{'&'.join(f'{k}={v}' for k, v in params.items())}", 302)


@guarded
async def advance_clock(request: Request) -> Response:
    data: AdvanceIn = await _body(request, AdvanceIn)
    clock = services(request).world.clock
    clock.advance(data.seconds)
    return JSONResponse({"offset": clock.offset, "now": clock.now().isoformat()})


@guarded
async def deliveries(request: Request) -> Response:
    shop = request.query_params.get("shop")
    topic = request.query_params.get("topic")
    attempts = [
        attempt.as_json()
        for attempt in services(request).world.deliveries
        if (shop is None or attempt.shop == shop) and (topic is None or attempt.topic == topic)
    ]
    return JSONResponse({"deliveries": attempts})


@guarded
async def flush(request: Request) -> Response:
    """Answer once every pending webhook delivery (and bulk run) has finished."""
    svc = services(request)
    while svc.bulk.tasks or svc.webhooks.pending:
        for task in list(svc.bulk.tasks):
            await task
        await svc.webhooks.flush()
    return JSONResponse({"deliveries": len(svc.world.deliveries)})


class BulkDelayIn(BaseModel):
    seconds: float = Field(ge=0, le=600)


@guarded
async def bulk_delay(request: Request) -> Response:
    """Set how long each bulk operation waits before running, and again before finishing."""
    data: BulkDelayIn = await _body(request, BulkDelayIn)
    services(request).bulk.step_delay = data.seconds
    return JSONResponse({"seconds": data.seconds})


@guarded
async def app_webhooks(request: Request) -> Response:
    """GET or PUT the app's own subscriptions ({topic: [uri, …]}), compliance topics included."""
    app = services(request).world.app
    if request.method == "PUT":
        raw = await _body(request, AppWebhooksIn)
        unknown = [topic for topic in raw.root if topic not in REST_TOPICS and topic not in AFTER_UNINSTALL]
        if unknown:
            raise store.StoreError(f"unknown topics: {', '.join(unknown)}")
        app.app_subscriptions = dict(raw.root)
    return JSONResponse(app.app_subscriptions)


@guarded
async def bulk_file(request: Request) -> Response:
    number = int(request.path_params["operation_id"])
    for shop in services(request).world.shops.values():
        for operation in shop.bulk_operations:
            if operation.id == number and operation.url:
                return Response(operation.body, media_type="application/jsonl")
    raise LookupError(f"no bulk operation result {number}")
