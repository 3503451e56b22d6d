"""③ Commerce actions: the only code that writes orders, line items, stock and carts.

Each action takes platform-neutral data, ignores an update older than what is
stored (platforms deliver out of order and twice), adjusts the metric buckets by
exactly the change it made, evaluates alerts, and publishes a live message that is
delivered only if the transaction commits. Inside the drain job each delivery already
runs in its own savepoint, so the actions join it rather than adding another one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from django.db import transaction

from opspulse.alerts import actions as alert_actions
from opspulse.commerce.models import NOT_COUNTED, Cart, InventoryLevel, LineItem, Order, OrderStatus
from opspulse.live.publish import publish
from opspulse.metrics import actions as metric_actions
from opspulse.metrics.models import MetricName
from opspulse.stores.models import Store


@dataclass(frozen=True)
class LineItemData:
    external_id: str
    title: str
    quantity: int
    price: Decimal
    sku: str = ""
    product_external_id: str = ""
    variant_external_id: str = ""


@dataclass(frozen=True)
class OrderData:
    external_id: str
    number: str
    status: OrderStatus
    currency: str
    total: Decimal
    placed_at: datetime
    updated_at: datetime
    customer_first_name: str = ""
    customer_city: str = ""
    line_items: list[LineItemData] = field(default_factory=list)

    @property
    def units(self) -> int:
        return sum(max(item.quantity, 0) for item in self.line_items)


@dataclass(frozen=True)
class StockData:
    item_external_id: str
    available: int
    updated_at: datetime
    location_external_id: str = ""
    sku: str = ""
    title: str = ""


@dataclass(frozen=True)
class CartData:
    external_id: str
    item_count: int
    value: Decimal
    created_at: datetime
    updated_at: datetime


def record_order(*, store: Store, data: OrderData) -> Order | None:
    """Create or update an order; return it, or None if `data` is not newer than what we have."""
    with transaction.atomic(savepoint=False):
        order = (
            Order.objects.select_for_update()
            .filter(store=store, external_id=data.external_id)
            .first()
        )
        is_new = order is None
        if order is not None and data.updated_at <= order.platform_updated_at:
            return None
        if order is None:
            order = Order(store=store, external_id=data.external_id, placed_at=data.placed_at)

        order.number = data.number[:64]
        order.status = data.status
        order.currency = data.currency
        order.total = data.total
        order.units = data.units
        order.customer_first_name = data.customer_first_name[:100]
        order.customer_city = data.customer_city[:100]
        order.platform_updated_at = data.updated_at

        counts = data.status not in NOT_COUNTED
        revenue = data.total if counts else Decimal("0")
        units = data.units if counts else 0
        orders = 1 if counts else 0
        deltas = {
            MetricName.REVENUE: revenue - order.counted_revenue,
            MetricName.UNITS_SOLD: Decimal(units - order.counted_units),
            MetricName.ORDERS: Decimal(orders - order.counted_orders),
        }
        order.counted_revenue, order.counted_units, order.counted_orders = revenue, units, orders
        order.save()
        _replace_line_items(order, data.line_items)

        metric_actions.adjust_metrics(store=store, at=order.placed_at, deltas=deltas)
        publish(
            store.public_id,
            {
                "type": "new_order" if is_new else "order_updated",
                "order": order.external_id,
                "number": order.number,
                "status": order.status,
                "total": str(order.total),
            },
        )
        if any(deltas.values()):
            publish(store.public_id, {"type": "metric_update", "names": sorted(k for k, v in deltas.items() if v)})
        alert_actions.check_order(store=store, order=order)
    return order


def _replace_line_items(order: Order, items: list[LineItemData]) -> None:
    order.line_items.all().delete()
    LineItem.objects.bulk_create(
        LineItem(
            order=order,
            external_id=item.external_id[:64],
            product_external_id=item.product_external_id[:64],
            variant_external_id=item.variant_external_id[:64],
            sku=item.sku[:100],
            title=item.title[:255],
            quantity=item.quantity,
            price=item.price,
        )
        for item in items
    )


def apply_stock_change(*, store: Store, data: StockData) -> InventoryLevel | None:
    """Record an item's available stock; None if `data` is older than what we have."""
    with transaction.atomic(savepoint=False):
        level = (
            InventoryLevel.objects.select_for_update()
            .filter(
                store=store,
                item_external_id=data.item_external_id,
                location_external_id=data.location_external_id,
            )
            .first()
        )
        if level is not None and data.updated_at <= level.platform_updated_at:
            _fill_in_names(level, data)
            return None
        previous = None if level is None else level.available
        if level is None:
            level = InventoryLevel(
                store=store,
                item_external_id=data.item_external_id,
                location_external_id=data.location_external_id,
            )
        level.available = data.available
        level.platform_updated_at = data.updated_at
        if data.sku:
            level.sku = data.sku[:100]
        if data.title:
            level.title = data.title[:255]
        level.save()
        publish(
            store.public_id,
            {"type": "inventory_update", "item": level.item_external_id, "available": level.available},
        )
        alert_actions.check_stock(store=store, level=level, previous=previous)
    return level


def _fill_in_names(level: InventoryLevel, data: StockData) -> None:
    """Take a name or SKU the item lacks even from an older update: they are not stock state."""
    fields = []
    if data.title and not level.title:
        level.title = data.title[:255]
        fields.append("title")
    if data.sku and not level.sku:
        level.sku = data.sku[:100]
        fields.append("sku")
    if fields:
        level.save(update_fields=fields)


def record_cart(*, store: Store, data: CartData) -> Cart | None:
    """Create or update a cart; a new cart counts once in the carts metric."""
    with transaction.atomic(savepoint=False):
        cart = (
            Cart.objects.select_for_update()
            .filter(store=store, external_id=data.external_id)
            .first()
        )
        if cart is not None and data.updated_at <= cart.platform_updated_at:
            return None
        is_new = cart is None
        if cart is None:
            cart = Cart(store=store, external_id=data.external_id, platform_created_at=data.created_at)
        cart.item_count = data.item_count
        cart.value = data.value
        cart.platform_updated_at = data.updated_at
        cart.save()
        if is_new:
            metric_actions.adjust_metrics(
                store=store, at=cart.platform_created_at, deltas={MetricName.CARTS: Decimal(1)}
            )
        publish(store.public_id, {"type": "cart_activity", "cart": cart.external_id, "new": is_new})
    return cart
