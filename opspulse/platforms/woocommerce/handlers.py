"""WooCommerce topic → the platform-neutral record its payload describes (commerce.actions)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from opspulse.commerce import actions
from opspulse.commerce.models import OrderStatus
from opspulse.platforms.errors import parse_payload
from opspulse.platforms.woocommerce import payloads

# woocommerce-rest-api-docs _orders.md: order statuses.
STATUSES = {
    "pending": OrderStatus.OPEN,
    "on-hold": OrderStatus.OPEN,
    "processing": OrderStatus.PAID,
    "completed": OrderStatus.FULFILLED,
    "cancelled": OrderStatus.CANCELLED,
    "failed": OrderStatus.CANCELLED,
    "trash": OrderStatus.CANCELLED,
    "refunded": OrderStatus.REFUNDED,
}


def order_data(order: payloads.Order) -> actions.OrderData:
    # WooCommerce's order resource carries no test or sandbox flag (woocommerce-rest-api-docs
    # _orders.md; a gateway's test mode shows at most in its own meta_data), so no
    # WooCommerce order is taken for a test one.
    billing = order.billing or payloads.Address()
    shipping = order.shipping or payloads.Address()
    return actions.OrderData(
        external_id=str(order.id),
        number=f"#{order.number}",
        # Plugins add statuses of their own; count them like an open order.
        status=STATUSES.get(order.status, OrderStatus.OPEN),
        currency=order.currency,
        total=order.total,
        placed_at=order.date_created_gmt,
        updated_at=order.date_modified_gmt,
        customer_first_name=billing.first_name or "",
        customer_city=shipping.city or billing.city or "",
        line_items=[
            actions.LineItemData(
                external_id=str(item.id),
                title=item.name,
                quantity=item.quantity,
                price=item.price,
                sku=item.sku or "",
                product_external_id=str(item.product_id),
                variant_external_id=str(item.variation_id or ""),
            )
            for item in order.line_items
        ],
    )


def parse_order(payload: Any) -> actions.OrderData:
    return order_data(parse_payload(payloads.Order, payload))


def parse_product(payload: Any) -> actions.StockData | None:
    product = parse_payload(payloads.Product, payload)
    if not product.manage_stock or product.stock_quantity is None:
        return None  # stock is not tracked for this product
    return actions.StockData(
        item_external_id=str(product.id),
        available=product.stock_quantity,
        updated_at=product.date_modified_gmt,
        sku=product.sku or "",
        title=product.name,
    )


PARSERS: dict[str, Callable[[Any], actions.Record | None]] = {
    "order.created": parse_order,
    "order.updated": parse_order,
    "product.updated": parse_product,
}
