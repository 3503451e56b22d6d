"""The GraphQL Admin API subset the fake serves: SDL, resolvers and Shopify's shapes.

Ids are global ids ("gid://shopify/Order/123"), legacy ids and counts are
UnsignedInt64 strings, money amounts are Decimal strings ("18.0", "138.99"), and
timestamps are UTC DateTimes ("2025-10-14T14:12:33Z"), as Shopify serialises them.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

from graphql import GraphQLError, GraphQLResolveInfo, build_schema

from opspulse.sim.fake_shopify.resources import utc_z
from opspulse.sim.fake_shopify.state import (
    BulkOperation,
    FakeShopify,
    Order,
    Shop,
    Variant,
    WebhookSubscription,
)

SDL = """
scalar DateTime
scalar Decimal
scalar UnsignedInt64
scalar URL

enum CurrencyCode { AUD CAD CHF EUR GBP JPY NZD SEK USD }
enum OrderDisplayFinancialStatus { AUTHORIZED EXPIRED PAID PARTIALLY_PAID PARTIALLY_REFUNDED PENDING REFUNDED VOIDED }
enum OrderDisplayFulfillmentStatus { FULFILLED PARTIALLY_FULFILLED UNFULFILLED }
enum OrderCancelReason { CUSTOMER DECLINED FRAUD INVENTORY OTHER STAFF }
enum OrderSortKeys { CREATED_AT ID PROCESSED_AT UPDATED_AT }
enum WebhookSubscriptionTopic {
  APP_UNINSTALLED BULK_OPERATIONS_FINISH CARTS_CREATE INVENTORY_LEVELS_UPDATE
  ORDERS_CANCELLED ORDERS_CREATE ORDERS_UPDATED
}
enum WebhookSubscriptionFormat { JSON }
enum BulkOperationStatus { CANCELED CANCELING COMPLETED CREATED EXPIRED FAILED RUNNING }
enum BulkOperationErrorCode { ACCESS_DENIED INTERNAL_SERVER_ERROR TIMEOUT }
enum BulkOperationType { MUTATION QUERY }
enum BulkOperationUserErrorCode { INVALID OPERATION_IN_PROGRESS }
enum CountPrecision { AT_LEAST EXACT }

type PageInfo { hasNextPage: Boolean! hasPreviousPage: Boolean! startCursor: String endCursor: String }
type MoneyV2 { amount: Decimal! currencyCode: CurrencyCode! }
type MoneyBag { shopMoney: MoneyV2! presentmentMoney: MoneyV2! }
type Count { count: Int! precision: CountPrecision! }
type ShopPlan { displayName: String! partnerDevelopment: Boolean! shopifyPlus: Boolean! }

type Shop {
  id: ID! name: String! email: String! currencyCode: CurrencyCode! ianaTimezone: String!
  myshopifyDomain: String! plan: ShopPlan!
}

type Customer { id: ID! legacyResourceId: UnsignedInt64! firstName: String lastName: String email: String }
type MailingAddress {
  firstName: String lastName: String address1: String city: String province: String
  provinceCode: String country: String countryCodeV2: String zip: String
}
type Location { id: ID! legacyResourceId: UnsignedInt64! name: String! }
type Product { id: ID! legacyResourceId: UnsignedInt64! title: String! }
type ProductVariant {
  id: ID! legacyResourceId: UnsignedInt64! sku: String title: String! displayName: String!
  price: Decimal! inventoryQuantity: Int product: Product! inventoryItem: InventoryItem!
}

type LineItem {
  id: ID! name: String! title: String! sku: String variantTitle: String quantity: Int!
  currentQuantity: Int! originalUnitPriceSet: MoneyBag! originalTotalSet: MoneyBag!
  variant: ProductVariant product: Product
}
type LineItemEdge { cursor: String! node: LineItem! }
type LineItemConnection { edges: [LineItemEdge!]! nodes: [LineItem!]! pageInfo: PageInfo! }

type Order {
  id: ID! legacyResourceId: UnsignedInt64! name: String! email: String
  createdAt: DateTime! updatedAt: DateTime! processedAt: DateTime! cancelledAt: DateTime
  cancelReason: OrderCancelReason closedAt: DateTime test: Boolean!
  displayFinancialStatus: OrderDisplayFinancialStatus
  displayFulfillmentStatus: OrderDisplayFulfillmentStatus!
  currencyCode: CurrencyCode!
  totalPriceSet: MoneyBag! subtotalPriceSet: MoneyBag! currentTotalPriceSet: MoneyBag!
  customer: Customer shippingAddress: MailingAddress
  lineItems(first: Int, after: String): LineItemConnection!
}
type OrderEdge { cursor: String! node: Order! }
type OrderConnection { edges: [OrderEdge!]! nodes: [Order!]! pageInfo: PageInfo! }

type InventoryQuantity { id: ID! name: String! quantity: Int! updatedAt: DateTime }
type InventoryLevel {
  id: ID! location: Location! item: InventoryItem! updatedAt: DateTime!
  quantities(names: [String!]!): [InventoryQuantity!]!
}
type InventoryLevelEdge { cursor: String! node: InventoryLevel! }
type InventoryLevelConnection { edges: [InventoryLevelEdge!]! nodes: [InventoryLevel!]! pageInfo: PageInfo! }
type InventoryItem {
  id: ID! legacyResourceId: UnsignedInt64! sku: String tracked: Boolean! updatedAt: DateTime!
  variant: ProductVariant! inventoryLevels(first: Int, after: String): InventoryLevelConnection!
}
type InventoryItemEdge { cursor: String! node: InventoryItem! }
type InventoryItemConnection { edges: [InventoryItemEdge!]! nodes: [InventoryItem!]! pageInfo: PageInfo! }

type WebhookSubscription {
  id: ID! topic: WebhookSubscriptionTopic! uri: String! format: WebhookSubscriptionFormat!
  includeFields: [String!]! createdAt: DateTime! updatedAt: DateTime!
}
type WebhookSubscriptionEdge { cursor: String! node: WebhookSubscription! }
type WebhookSubscriptionConnection {
  edges: [WebhookSubscriptionEdge!]! nodes: [WebhookSubscription!]! pageInfo: PageInfo!
}

type BulkOperation {
  id: ID! status: BulkOperationStatus! errorCode: BulkOperationErrorCode type: BulkOperationType!
  query: String! createdAt: DateTime! completedAt: DateTime objectCount: UnsignedInt64!
  rootObjectCount: UnsignedInt64! fileSize: UnsignedInt64 url: URL partialDataUrl: URL
}

type UserError { field: [String!] message: String! }
type BulkOperationUserError { field: [String!] message: String! code: BulkOperationUserErrorCode }

input WebhookSubscriptionInput { uri: String! format: WebhookSubscriptionFormat includeFields: [String!] }

type WebhookSubscriptionCreatePayload { webhookSubscription: WebhookSubscription userErrors: [UserError!]! }
type WebhookSubscriptionDeletePayload { deletedWebhookSubscriptionId: ID userErrors: [UserError!]! }
type BulkOperationRunQueryPayload { bulkOperation: BulkOperation userErrors: [BulkOperationUserError!]! }

type Query {
  shop: Shop!
  order(id: ID!): Order
  orders(first: Int, after: String, query: String, sortKey: OrderSortKeys = ID, reverse: Boolean = false): OrderConnection!
  ordersCount(query: String, limit: Int = 10000): Count
  productVariantsCount(query: String, limit: Int = 10000): Count
  inventoryItems(first: Int, after: String, query: String): InventoryItemConnection!
  webhookSubscriptions(first: Int, after: String, topics: [WebhookSubscriptionTopic!]): WebhookSubscriptionConnection!
  currentBulkOperation(type: BulkOperationType = QUERY): BulkOperation
}

type Mutation {
  webhookSubscriptionCreate(topic: WebhookSubscriptionTopic!, webhookSubscription: WebhookSubscriptionInput!): WebhookSubscriptionCreatePayload
  webhookSubscriptionDelete(id: ID!): WebhookSubscriptionDeletePayload
  bulkOperationRunQuery(query: String!): BulkOperationRunQueryPayload
}
"""

SCHEMA = build_schema(SDL)

# Webhook topic → (REST topic name, access scope needed to subscribe).
TOPICS: dict[str, tuple[str, str | None]] = {
    "APP_UNINSTALLED": ("app/uninstalled", None),
    "BULK_OPERATIONS_FINISH": ("bulk_operations/finish", None),
    "CARTS_CREATE": ("carts/create", None),
    "INVENTORY_LEVELS_UPDATE": ("inventory_levels/update", "read_inventory"),
    "ORDERS_CANCELLED": ("orders/cancelled", "read_orders"),
    "ORDERS_CREATE": ("orders/create", "read_orders"),
    "ORDERS_UPDATED": ("orders/updated", "read_orders"),
}
# Without read_all_orders an app sees only the last 60 days of orders.
RECENT_ORDERS = timedelta(days=60)
QUANTITY_NAMES = ("available", "committed", "damaged", "incoming", "on_hand", "reserved")
_SEARCH_TERM = re.compile(
    r"""(?P<field>\w+):(?P<op><=|>=|<|>)?(?:'(?P<single>[^']*)'|"(?P<double>[^"]*)"|(?P<bare>\S+))"""
)
_ORDER_SORT: dict[str, Callable[[Order], Any]] = {
    "ID": lambda order: order.id,
    "CREATED_AT": lambda order: order.created_at,
    "PROCESSED_AT": lambda order: order.created_at,
    "UPDATED_AT": lambda order: order.updated_at,
}


@dataclass
class Context:
    """One request's view: the shop, the token's scopes, and whether it is a bulk run."""

    world: FakeShopify
    shop: Shop
    scopes: list[str]
    api_version: str
    base_url: str
    bulk: bool = False
    # Set by the app so bulkOperationRunQuery can start work on the event loop.
    start_bulk: Callable[[Context, str], tuple[BulkOperation | None, list[dict[str, Any]]]] | None = None

    def require(self, scope: str, field_name: str) -> None:
        """Raise Shopify's ACCESS_DENIED error unless the token has the scope."""
        if has_scope(self.scopes, scope):
            return
        raise GraphQLError(
            f"Access denied for {field_name} field. Required access: `{scope}` access scope.",
            extensions={
                "code": "ACCESS_DENIED",
                "documentation": "https://shopify.dev/api/usage/access-scopes",
                "requiredAccess": f"`{scope}` access scope.",
            },
        )


def has_scope(scopes: Sequence[str], scope: str) -> bool:
    """Return whether the granted scopes include `scope`; write_x implies read_x."""
    return scope in scopes or (
        scope.startswith("read_") and "write_" + scope.removeprefix("read_") in scopes
    )


def root_value() -> dict[str, Callable[..., Any]]:
    """Return the root resolvers for queries and mutations alike."""
    return {
        "shop": _shop,
        "order": _order,
        "orders": _orders,
        "ordersCount": _orders_count,
        "productVariantsCount": _product_variants_count,
        "inventoryItems": _inventory_items,
        "webhookSubscriptions": _webhook_subscriptions,
        "currentBulkOperation": _current_bulk_operation,
        "webhookSubscriptionCreate": _webhook_subscription_create,
        "webhookSubscriptionDelete": _webhook_subscription_delete,
        "bulkOperationRunQuery": _bulk_operation_run_query,
    }


# -- Serialisation helpers --------------------------------------------------------------


def gid(kind: str, number: int) -> str:
    return f"gid://shopify/{kind}/{number}"


def decimal_string(amount: Decimal) -> str:
    """Return an amount as Shopify's Decimal scalar does: no trailing zeros, one decimal."""
    text = format(amount.normalize(), "f")
    return text if "." in text else f"{text}.0"


def money_bag(amount: Decimal, currency: str) -> dict[str, Any]:
    money = {"amount": decimal_string(amount), "currencyCode": currency}
    return {"shopMoney": money, "presentmentMoney": dict(money)}


def connection(
    items: Sequence[Any],
    *,
    first: int | None,
    after: str | None,
    sort_value: Callable[[Any], Any],
    item_id: Callable[[Any], int],
    to_node: Callable[[Any], dict[str, Any]],
    context: Context,
    reverse: bool = False,
) -> dict[str, Any]:
    """Return a Relay connection page over `items`, which are already in order.

    Cursors are base64 JSON of the last id and sort value, like Shopify's. A bulk run
    ignores `first` and returns everything.
    """
    start = 0
    if after:
        last = _decode_cursor(after)
        keys = [(_cursor_value(sort_value(item)), item_id(item)) for item in items]
        try:
            start = next(
                (index for index, key in enumerate(keys) if (key < last if reverse else key > last)),
                len(items),
            )
        except TypeError as error:
            raise GraphQLError(f"Invalid cursor for current pagination sort: {after!r}") from error
    end = len(items) if context.bulk or first is None else start + first
    page = items[start:end]
    edges = [
        {"cursor": _encode_cursor(sort_value(item), item_id(item)), "node": to_node(item)}
        for item in page
    ]
    return {
        "edges": edges,
        "nodes": [edge["node"] for edge in edges],
        "pageInfo": {
            "hasNextPage": end < len(items),
            "hasPreviousPage": start > 0,
            "startCursor": edges[0]["cursor"] if edges else None,
            "endCursor": edges[-1]["cursor"] if edges else None,
        },
    }


def _cursor_value(value: Any) -> Any:
    return value.astimezone(UTC).isoformat(timespec="microseconds") if isinstance(value, datetime) else value


def _encode_cursor(value: Any, item_id: int) -> str:
    raw = json.dumps({"last_id": item_id, "last_value": _cursor_value(value)}, separators=(",", ":"))
    return base64.b64encode(raw.encode()).decode()


def _decode_cursor(cursor: str) -> tuple[Any, int]:
    try:
        decoded = json.loads(base64.b64decode(cursor, validate=True))
        return decoded["last_value"], int(decoded["last_id"])
    except (binascii.Error, ValueError, KeyError, TypeError) as error:
        raise GraphQLError(f"Invalid cursor for current pagination sort: {cursor!r}") from error


# -- Shop ----------------------------------------------------------------------------------


def _shop(info: GraphQLResolveInfo) -> dict[str, Any]:
    shop = info.context.shop
    return {
        "id": gid("Shop", shop.id),
        "name": shop.name,
        "email": shop.email,
        "currencyCode": shop.currency,
        "ianaTimezone": shop.timezone,
        "myshopifyDomain": shop.domain,
        "plan": {"displayName": shop.plan, "partnerDevelopment": False, "shopifyPlus": shop.plan == "Shopify Plus"},
    }


# -- Orders --------------------------------------------------------------------------------


def visible_orders(context: Context) -> list[Order]:
    """Return the orders the token may read: the last 60 days without read_all_orders."""
    orders = list(context.shop.orders.values())
    if has_scope(context.scopes, "read_all_orders"):
        return orders
    cutoff = context.world.clock.now() - RECENT_ORDERS
    return [order for order in orders if order.created_at >= cutoff]


def _order(info: GraphQLResolveInfo, id: str) -> dict[str, Any] | None:
    context: Context = info.context
    context.require("read_orders", "order")
    number = _gid_number(id, "Order")
    order = next((o for o in visible_orders(context) if o.id == number), None)
    return order_node(context, order) if order else None


def _orders(
    info: GraphQLResolveInfo,
    first: int | None = None,
    after: str | None = None,
    query: str | None = None,
    sortKey: str = "ID",
    reverse: bool = False,
) -> dict[str, Any]:
    context: Context = info.context
    context.require("read_orders", "orders")
    sort_value = _ORDER_SORT[sortKey]
    orders = [order for order in visible_orders(context) if _matches(order, query)]
    orders.sort(key=lambda order: (sort_value(order), order.id), reverse=reverse)
    return connection(
        orders,
        first=first,
        after=after,
        sort_value=sort_value,
        item_id=lambda order: order.id,
        to_node=lambda order: order_node(context, order),
        context=context,
        reverse=reverse,
    )


def _orders_count(info: GraphQLResolveInfo, query: str | None = None, limit: int | None = 10000) -> dict[str, Any]:
    context: Context = info.context
    context.require("read_orders", "ordersCount")
    return _count(sum(1 for order in visible_orders(context) if _matches(order, query)), limit)


def _product_variants_count(
    info: GraphQLResolveInfo, query: str | None = None, limit: int | None = 10000
) -> dict[str, Any]:
    context: Context = info.context
    context.require("read_products", "productVariantsCount")
    return _count(sum(1 for variant in context.shop.variants if _matches(variant, query)), limit)


def _count(count: int, limit: int | None) -> dict[str, Any]:
    """Shopify's Count: capped at `limit` (null for none), with the precision saying so."""
    if limit is not None and count > limit:
        return {"count": limit, "precision": "AT_LEAST"}
    return {"count": count, "precision": "EXACT"}


# Search fields the fake understands → the attribute of an order or a variant they compare.
_SEARCH_TIMES = {"created_at": "created_at", "updated_at": "updated_at", "processed_at": "created_at"}


def _matches(resource: Any, query: str | None) -> bool:
    """Apply Shopify search syntax for timestamps: `updated_at:>'2025-10-01T00:00:00Z'`.

    Terms are ANDed; Shopify ignores fields it cannot search on, and so does the fake.
    """
    if not query:
        return True
    for term in _SEARCH_TERM.finditer(query):
        attribute = _SEARCH_TIMES.get(term["field"])
        if attribute is None:
            continue
        raw = term["single"] or term["double"] or term["bare"] or ""
        try:
            bound = _search_datetime(raw)
        except ValueError as error:
            raise GraphQLError(f"Invalid search value {raw!r} for {term['field']}") from error
        value = getattr(resource, attribute, None)
        if value is None:
            continue
        if not {
            ">": value > bound,
            ">=": value >= bound,
            "<": value < bound,
            "<=": value <= bound,
            None: value.date() == bound.date(),
        }[term["op"]]:
            return False
    return True


def _search_datetime(raw: str) -> datetime:
    parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def order_node(context: Context, order: Order) -> dict[str, Any]:
    currency = context.shop.currency
    total = order.total
    refunded = order.financial_status in ("refunded", "voided")
    customer = order.customer
    closed_at = order.cancelled_at or (order.updated_at if order.fulfillment_status == "fulfilled" else None)
    return {
        "id": gid("Order", order.id),
        "legacyResourceId": str(order.id),
        "name": f"#{order.number}",
        "email": customer.email,
        "createdAt": utc_z(order.created_at),
        "updatedAt": utc_z(order.updated_at),
        "processedAt": utc_z(order.created_at),
        "cancelledAt": utc_z(order.cancelled_at) if order.cancelled_at else None,
        "cancelReason": "CUSTOMER" if order.cancelled_at else None,
        "closedAt": utc_z(closed_at) if closed_at else None,
        "test": False,
        "displayFinancialStatus": order.financial_status.upper(),
        "displayFulfillmentStatus": "FULFILLED" if order.fulfillment_status == "fulfilled" else "UNFULFILLED",
        "currencyCode": currency,
        "totalPriceSet": money_bag(total, currency),
        "subtotalPriceSet": money_bag(total, currency),
        "currentTotalPriceSet": money_bag(Decimal("0") if refunded else total, currency),
        "customer": {
            "id": gid("Customer", customer.id),
            "legacyResourceId": str(customer.id),
            "firstName": customer.first_name,
            "lastName": customer.last_name,
            "email": customer.email,
        },
        "shippingAddress": {
            "firstName": customer.first_name,
            "lastName": customer.last_name,
            "city": customer.city,
        },
        "lineItems": lambda info, first=None, after=None: connection(
            order.lines,
            first=first,
            after=after,
            sort_value=lambda line: line.line_id,
            item_id=lambda line: line.line_id,
            to_node=lambda line: _line_item_node(context, order, line),
            context=context,
        ),
    }


def _line_item_node(context: Context, order: Order, line: Any) -> dict[str, Any]:
    currency = context.shop.currency
    variant = context.shop.variant_by_sku(line.sku)
    product_title, _, variant_title = line.title.partition(" - ")
    return {
        "id": gid("LineItem", line.line_id),
        "name": line.title,
        "title": product_title,
        "sku": line.sku,
        "variantTitle": variant_title or None,
        "quantity": line.quantity,
        "currentQuantity": 0 if order.cancelled_at else line.quantity,
        "originalUnitPriceSet": money_bag(line.price, currency),
        "originalTotalSet": money_bag(line.line_total, currency),
        "variant": _variant_node(context, variant) if variant else None,
        "product": _product_node(line.product_id, product_title),
    }


def _product_node(product_id: int, title: str) -> dict[str, Any]:
    return {"id": gid("Product", product_id), "legacyResourceId": str(product_id), "title": title}


def _variant_node(context: Context, variant: Variant) -> dict[str, Any]:
    product_title, _, variant_title = variant.title.partition(" - ")
    return {
        "id": gid("ProductVariant", variant.variant_id),
        "legacyResourceId": str(variant.variant_id),
        "sku": variant.sku,
        "title": variant_title or "Default Title",
        "displayName": variant.title,
        "price": decimal_string(variant.price),
        "inventoryQuantity": variant.available,
        "product": _product_node(variant.product_id, product_title),
        "inventoryItem": lambda info: _inventory_item_node(context, variant),
    }


# -- Inventory -------------------------------------------------------------------------------


def _inventory_items(
    info: GraphQLResolveInfo, first: int | None = None, after: str | None = None, query: str | None = None
) -> dict[str, Any]:
    context: Context = info.context
    context.require("read_inventory", "inventoryItems")
    variants = sorted(
        (variant for variant in context.shop.variants if _matches(variant, query)),
        key=lambda variant: variant.inventory_item_id,
    )
    return connection(
        variants,
        first=first,
        after=after,
        sort_value=lambda variant: variant.inventory_item_id,
        item_id=lambda variant: variant.inventory_item_id,
        to_node=lambda variant: _inventory_item_node(context, variant),
        context=context,
    )


def _inventory_item_node(context: Context, variant: Variant) -> dict[str, Any]:
    shop = context.shop
    location = {"id": gid("Location", shop.location_id), "legacyResourceId": str(shop.location_id), "name": "Shop location"}

    def quantities(info: GraphQLResolveInfo, names: list[str]) -> list[dict[str, Any]]:
        unknown = [name for name in names if name not in QUANTITY_NAMES]
        if unknown:
            raise GraphQLError(f"The quantity name {unknown[0]!r} is not valid.")
        return [
            {
                "id": f"gid://shopify/InventoryQuantity/{shop.location_id}?inventory_item_id="
                f"{variant.inventory_item_id}&name={name}",
                "name": name,
                "quantity": variant.available if name in ("available", "on_hand") else 0,
                "updatedAt": utc_z(variant.updated_at),
            }
            for name in names
        ]

    item: dict[str, Any] = {
        "id": gid("InventoryItem", variant.inventory_item_id),
        "legacyResourceId": str(variant.inventory_item_id),
        "sku": variant.sku,
        "tracked": True,
        "updatedAt": utc_z(variant.updated_at),
        "variant": lambda info: _variant_node(context, variant),
    }
    level = {
        "id": f"gid://shopify/InventoryLevel/{shop.location_id}?inventory_item_id={variant.inventory_item_id}",
        "location": location,
        "item": item,
        "updatedAt": utc_z(variant.updated_at),
        "quantities": quantities,
    }
    item["inventoryLevels"] = lambda info, first=None, after=None: connection(
        [level],
        first=first,
        after=after,
        sort_value=lambda _: shop.location_id,
        item_id=lambda _: shop.location_id,
        to_node=lambda node: node,
        context=context,
    )
    return item


# -- Webhook subscriptions -------------------------------------------------------------------


def _webhook_subscriptions(
    info: GraphQLResolveInfo,
    first: int | None = None,
    after: str | None = None,
    topics: list[str] | None = None,
) -> dict[str, Any]:
    context: Context = info.context
    subscriptions = sorted(
        (s for s in context.shop.subscriptions.values() if not topics or s.topic in topics),
        key=lambda subscription: subscription.id,
    )
    return connection(
        subscriptions,
        first=first,
        after=after,
        sort_value=lambda subscription: subscription.id,
        item_id=lambda subscription: subscription.id,
        to_node=_subscription_node,
        context=context,
    )


def _subscription_node(subscription: WebhookSubscription) -> dict[str, Any]:
    return {
        "id": gid("WebhookSubscription", subscription.id),
        "topic": subscription.topic,
        "uri": subscription.uri,
        "format": "JSON",
        "includeFields": subscription.include_fields,
        "createdAt": utc_z(subscription.created_at),
        "updatedAt": utc_z(subscription.created_at),
    }


def _webhook_subscription_create(
    info: GraphQLResolveInfo, topic: str, webhookSubscription: dict[str, Any]
) -> dict[str, Any]:
    context: Context = info.context
    shop = context.shop
    uri = webhookSubscription["uri"]
    _, scope = TOPICS[topic]
    problem = _uri_problem(uri)
    if problem is None and scope and not has_scope(context.scopes, scope):
        problem = f"Access denied for topic {topic}: the app needs the `{scope}` access scope."
    if problem is None and any(s.topic == topic and s.uri == uri for s in shop.subscriptions.values()):
        problem = "Address for this topic has already been taken"
    if problem:
        return {"webhookSubscription": None, "userErrors": [{"field": ["webhookSubscription", "callbackUrl"], "message": problem}]}
    subscription = WebhookSubscription(
        id=next(context.world.ids.subscription),
        topic=topic,
        uri=uri,
        api_version=context.api_version,
        include_fields=list(webhookSubscription.get("includeFields") or []),
        created_at=context.world.clock.now(),
    )
    shop.subscriptions[subscription.id] = subscription
    return {"webhookSubscription": _subscription_node(subscription), "userErrors": []}


def _uri_problem(uri: str) -> str | None:
    """Shopify delivers over HTTPS only; the fake also allows http to this machine."""
    parts = urlsplit(uri)
    if parts.scheme == "https" and parts.hostname:
        return None
    if parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost", "::1"):
        return None
    if parts.scheme in ("http", "https"):
        return f"Address protocol {parts.scheme}:// is not supported"
    return "Address is invalid"


def _webhook_subscription_delete(info: GraphQLResolveInfo, id: str) -> dict[str, Any]:
    context: Context = info.context
    number = _gid_number(id, "WebhookSubscription")
    if context.shop.subscriptions.pop(number, None) is None:
        return {"deletedWebhookSubscriptionId": None, "userErrors": [{"field": ["id"], "message": "Webhook subscription does not exist"}]}
    return {"deletedWebhookSubscriptionId": id, "userErrors": []}


def _gid_number(value: str, kind: str) -> int:
    prefix = f"gid://shopify/{kind}/"
    if not value.startswith(prefix) or not value.removeprefix(prefix).isdigit():
        raise GraphQLError(f"Invalid global id '{value}'", extensions={"code": "argumentLiteralsIncompatible"})
    return int(value.removeprefix(prefix))


# -- Bulk operations -------------------------------------------------------------------------


def bulk_operation_node(operation: BulkOperation) -> dict[str, Any]:
    return {
        "id": gid("BulkOperation", operation.id),
        "status": operation.status,
        "errorCode": operation.error_code,
        "type": "QUERY",
        "query": operation.query,
        "createdAt": utc_z(operation.created_at),
        "completedAt": utc_z(operation.completed_at) if operation.completed_at else None,
        "objectCount": str(operation.object_count),
        "rootObjectCount": str(operation.root_object_count),
        "fileSize": str(len(operation.body)) if operation.status == "COMPLETED" else None,
        "url": operation.url,
        "partialDataUrl": None,
    }


def _current_bulk_operation(info: GraphQLResolveInfo, type: str = "QUERY") -> dict[str, Any] | None:
    operations = info.context.shop.bulk_operations
    if type != "QUERY" or not operations:
        return None
    return bulk_operation_node(operations[-1])


def _bulk_operation_run_query(info: GraphQLResolveInfo, query: str) -> dict[str, Any]:
    context: Context = info.context
    assert context.start_bulk is not None
    operation, user_errors = context.start_bulk(context, query)
    return {
        "bulkOperation": bulk_operation_node(operation) if operation else None,
        "userErrors": user_errors,
    }
