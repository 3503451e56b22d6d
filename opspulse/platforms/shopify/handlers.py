"""Shopify topic → the platform-neutral record its payload describes (commerce.actions)."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from opspulse.commerce import actions
from opspulse.commerce.models import NOT_COUNTED, OrderStatus
from opspulse.platforms.errors import parse_payload
from opspulse.platforms.shopify import payloads
from opspulse.platforms.shopify.events import AppUninstalled, BulkOperationFinished, PlatformEvent
from opspulse.privacy.actions import CustomerDataRequested, CustomerRedactionRequested, ShopRedactionRequested


def order_status(order: payloads.Order) -> OrderStatus:
    if order.cancelled_at is not None or order.financial_status == "voided":
        return OrderStatus.CANCELLED
    if order.financial_status == "refunded":
        return OrderStatus.REFUNDED
    if order.fulfillment_status == "fulfilled":
        return OrderStatus.FULFILLED
    if order.financial_status in {"paid", "partially_refunded"}:
        return OrderStatus.PAID
    return OrderStatus.OPEN


def order_data(order: payloads.Order) -> actions.OrderData:
    address = order.shipping_address or order.billing_address
    status = order_status(order)
    # What the order is worth now (after refunds); a cancelled or refunded one, which counts
    # for nothing, keeps the total it was placed with, so its row says what was lost.
    total = order.current_total_price
    if total is None or status in NOT_COUNTED:
        total = order.total_price
    return actions.OrderData(
        external_id=str(order.id),
        number=order.name,
        status=status,
        currency=order.currency,
        total=total,
        placed_at=order.created_at,
        updated_at=order.updated_at,
        customer_first_name=(order.customer.first_name or "") if order.customer else "",
        customer_city=(address.city or "") if address else "",
        line_items=[
            actions.LineItemData(
                external_id=str(item.id),
                title=item.name or item.title,
                quantity=item.quantity,
                price=item.price,
                sku=item.sku or "",
                product_external_id=str(item.product_id or ""),
                variant_external_id=str(item.variant_id or ""),
            )
            for item in order.line_items
        ],
        is_test=order.test,
    )


def parse_order(payload: Any) -> actions.OrderData:
    return order_data(parse_payload(payloads.Order, payload))


def parse_inventory_level(payload: Any) -> actions.StockData | None:
    level = parse_payload(payloads.InventoryLevel, payload)
    if level.available is None:
        return None  # the item stopped being tracked at this location
    return actions.StockData(
        item_external_id=str(level.inventory_item_id),
        location_external_id=str(level.location_id),
        available=level.available,
        updated_at=level.updated_at,
    )


def parse_cart(payload: Any) -> actions.CartData:
    cart = parse_payload(payloads.Cart, payload)
    return actions.CartData(
        external_id=cart.token or cart.id,
        item_count=sum(item.quantity for item in cart.line_items),
        value=sum((item.line_price for item in cart.line_items), Decimal("0")),
        created_at=cart.created_at,
        updated_at=cart.updated_at,
    )


def parse_app_uninstalled(payload: Any) -> AppUninstalled:
    shop = parse_payload(payloads.Shop, payload)
    return AppUninstalled(shop_domain=shop.myshopify_domain or shop.domain or "")


def parse_bulk_operation_finish(payload: Any) -> BulkOperationFinished:
    operation = parse_payload(payloads.BulkOperationFinish, payload)
    return BulkOperationFinished(operation_id=operation.admin_graphql_api_id, status=operation.status)


def parse_customers_redact(payload: Any) -> CustomerRedactionRequested:
    request = parse_payload(payloads.CustomersRedact, payload)
    return CustomerRedactionRequested(
        shop_domain=request.shop_domain,
        customer_id=str(request.customer.id or ""),
        email=request.customer.email or "",
        order_ids=tuple(str(order_id) for order_id in request.orders_to_redact),
    )


def parse_shop_redact(payload: Any) -> ShopRedactionRequested:
    request = parse_payload(payloads.ShopRedact, payload)
    return ShopRedactionRequested(shop_domain=request.shop_domain)


def parse_customers_data_request(payload: Any) -> CustomerDataRequested:
    request = parse_payload(payloads.CustomersDataRequest, payload)
    return CustomerDataRequested(
        shop_domain=request.shop_domain,
        request_id=str(request.data_request.id),
        customer_id=str(request.customer.id or ""),
        email=request.customer.email or "",
        order_ids=tuple(str(order_id) for order_id in request.orders_requested),
    )


PARSERS: dict[str, Callable[[Any], actions.Record | PlatformEvent | None]] = {
    "orders/create": parse_order,
    "orders/updated": parse_order,
    "inventory_levels/update": parse_inventory_level,
    "carts/create": parse_cart,
    "carts/update": parse_cart,
    "app/uninstalled": parse_app_uninstalled,
    "bulk_operations/finish": parse_bulk_operation_finish,
    "customers/redact": parse_customers_redact,
    "shop/redact": parse_shop_redact,
    "customers/data_request": parse_customers_data_request,
}
