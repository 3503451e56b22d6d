"""③ Commerce actions: the only code that writes orders, line items, stock and carts.

`apply_records` takes a batch of platform-neutral changes, in the order the platform
sent them. It ignores an update older than what is stored (platforms deliver out of
order and twice), adjusts the metric buckets and the products' days by exactly the
change it made, tells the batch's watchers what it wrote (alerts evaluates its rules:
see `watch_batches`), and publishes live messages that are delivered only if the
transaction commits. An import (a shop's history, a reconciliation, seeded demo
history) is applied the same way but fires no alert: it brings the past, not news.
The work is done per batch, not per change: one read of the rows the batch touches,
one upsert per table (`_upsert`), one metric upsert, one product-day upsert and one
alert insert, so the cost of a webhook is mostly its parsing. It joins the caller's
transaction or savepoint.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from functools import reduce
from typing import Any, Protocol, TypeAlias, TypeVar

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from opspulse.commerce.models import NOT_COUNTED, Cart, InventoryLevel, LineItem, Order, OrderStatus
from opspulse.lib.broadcast import publish
from opspulse.metrics.actions import MetricChanges, Sale
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
    # What the platform's payload says: a test checkout, not a sale.
    is_test: bool = False

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


Record: TypeAlias = OrderData | StockData | CartData

ORDER_FIELDS = [
    "number", "status", "currency", "total", "units", "customer_first_name", "customer_city",
    "platform_updated_at", "is_test", "counted_revenue", "counted_units", "counted_orders", "updated_at",
]
LEVEL_FIELDS = ["available", "platform_updated_at", "sku", "title", "updated_at"]
CART_FIELDS = ["item_count", "value", "platform_updated_at"]


Change: TypeAlias = tuple[Store, Record]


class BatchWatcher(Protocol):
    """Told what a batch writes as it is applied, and when it is done (alerts' check)."""

    def order(self, store: Store, order: Order) -> None: ...

    def stock(self, store: Store, level: InventoryLevel, previous: int | None) -> None: ...

    def record(self) -> Any: ...


# Called once per batch with the batch's stores by id, whether it was imported and
# whether those store rows were read within the batch's transaction.
WatcherFactory: TypeAlias = Callable[..., BatchWatcher]
_watcher_factories: list[WatcherFactory] = []


def watch_batches(factory: WatcherFactory) -> None:
    """Have `factory(stores, imported=..., stores_current=...)` watch every batch (opspulse.alerts registers its
    check from AlertsConfig.ready(): commerce sits below alerts and never imports it)."""
    if factory not in _watcher_factories:
        _watcher_factories.append(factory)


class _Watchers:
    def __init__(self, stores: dict[int, Store], *, imported: bool, stores_current: bool) -> None:
        self._watchers = [
            factory(stores, imported=imported, stores_current=stores_current) for factory in _watcher_factories
        ]

    def order(self, store: Store, order: Order) -> None:
        for watcher in self._watchers:
            watcher.order(store, order)

    def stock(self, store: Store, level: InventoryLevel, previous: int | None) -> None:
        for watcher in self._watchers:
            watcher.stock(store, level, previous)

    def record(self) -> None:
        for watcher in self._watchers:
            watcher.record()


def apply_records(
    *, store: Store, records: Sequence[Record], imported: bool = False
) -> list[Order | InventoryLevel | Cart | None]:
    """Apply one store's `records` in order; return what each wrote, or None where it was stale."""
    return apply_changes([(store, record) for record in records], imported=imported)


def apply_changes(
    changes: Sequence[Change], *, imported: bool = False, stores_current: bool = False
) -> list[Order | InventoryLevel | Cart | None]:
    """Apply (store, record) pairs of any stores; each store's in the order given.

    `imported`: the changes were read back from the platform in bulk (a history import, the
    stock read whole), not sent as they happened, so they fire no alert.
    `stores_current`: the Store rows were read within this transaction (a drain batch), so
    what they say (e.g. their alert rules' version) may stand for what the database holds.
    """
    results: list[Order | InventoryLevel | Cart | None] = [None] * len(changes)
    metrics = MetricChanges()
    watchers = _Watchers({store.pk: store for store, _ in changes}, imported=imported, stores_current=stores_current)
    with transaction.atomic(savepoint=False):
        for kind, apply in ((OrderData, _record_orders), (StockData, _apply_stock_changes), (CartData, _record_carts)):
            positions = [index for index, (_, record) in enumerate(changes) if isinstance(record, kind)]
            if positions:
                written = apply([changes[index] for index in positions], metrics, watchers)
                for index, result in zip(positions, written, strict=True):
                    results[index] = result
        changed = metrics.changed_names()
        written = metrics.apply()
        # The new values let dashboards show them without reading them back. Dashboards
        # show today and yesterday, so older buckets (a backfill) are left out.
        shown_since = timezone.now() - timedelta(days=3)
        for store, names in changed:
            buckets = [
                [name, granularity, timestamp.isoformat(), str(value)]
                for name, granularity, timestamp, value in written.get(store.pk, [])
                if timestamp >= shown_since
            ]
            publish(store.public_id, {"type": "metric_update", "names": names, "buckets": buckets})
        watchers.record()
    return results


def record_order(*, store: Store, data: OrderData) -> Order | None:
    """Create or update an order; return it, or None if `data` is not newer than what we have."""
    return apply_records(store=store, records=[data])[0]


def apply_stock_change(*, store: Store, data: StockData) -> InventoryLevel | None:
    """Record an item's available stock; None if `data` is older than what we have."""
    return apply_records(store=store, records=[data])[0]


def record_cart(*, store: Store, data: CartData) -> Cart | None:
    """Create or update a cart; a new cart counts once in the carts metric."""
    return apply_records(store=store, records=[data])[0]


Row = TypeVar("Row", Order, InventoryLevel, Cart)


def _upsert(
    changes: Sequence[Change],
    *,
    model: type[Row],
    key_fields: tuple[str, ...],
    update_fields: list[str],
    write: Callable[[Store, Any, Row | None], Row],
    refresh_stale: Callable[[Row, Any], bool] | None = None,
) -> tuple[list[Row | None], dict[tuple[Any, ...], Row]]:
    """Lock the stored rows the changes name, write each change newer than its row, and
    upsert the rows written in one statement; return each change's row (None where it
    was stale) and the rows written, by key.

    A row is keyed by its store and `key_fields` (named alike on the row and the
    change). `write(store, data, row)` applies a newer change to its row (None: not
    stored yet) and returns it; `refresh_stale(row, data)` may still take something
    from a stale change, and says whether it did.
    """
    wanted: dict[int, set[str]] = {}
    for store, data in changes:
        wanted.setdefault(store.pk, set()).add(getattr(data, key_fields[0]))
    lookup = f"{key_fields[0]}__in"
    rows = {
        (row.store_id, *(getattr(row, name) for name in key_fields)): row
        for row in model.objects.select_for_update()
        .filter(reduce(operator.or_, (Q(store_id=pk, **{lookup: ids}) for pk, ids in wanted.items())))
        .order_by("pk")
    }
    written: dict[tuple[Any, ...], Row] = {}
    results: list[Row | None] = []
    for store, data in changes:
        key = (store.pk, *(getattr(data, name) for name in key_fields))
        row = rows.get(key)
        if row is not None and data.updated_at <= row.platform_updated_at:
            if refresh_stale is not None and refresh_stale(row, data):
                written[key] = row
            results.append(None)
            continue
        row = rows[key] = written[key] = write(store, data, row)
        results.append(row)
    if written:
        model.objects.bulk_create(
            list(written.values()),
            update_conflicts=True,
            unique_fields=["store", *key_fields],
            update_fields=update_fields,
        )
    return results, written


def _record_orders(changes: Sequence[Change], metrics: MetricChanges, watchers: _Watchers) -> list[Order | None]:
    # Whether each order's stored line items count, before this batch changed it, and
    # the last change written to each.
    counted_before: dict[tuple[int, str], bool] = {}
    last_data: dict[tuple[int, str], OrderData] = {}

    def write(store: Store, data: OrderData, order: Order | None) -> Order:
        key = (store.pk, data.external_id)
        is_new = order is None
        counted_before.setdefault(key, not is_new and order.counted_orders > 0)
        last_data[key] = data
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
        order.is_test = order.is_test or data.is_test

        counts = data.status not in NOT_COUNTED and not order.is_test
        revenue = data.total if counts else Decimal("0")
        units = data.units if counts else 0
        count = 1 if counts else 0
        metrics.add(
            store,
            at=order.placed_at,
            deltas={
                MetricName.REVENUE: revenue - order.counted_revenue,
                MetricName.UNITS_SOLD: Decimal(units - order.counted_units),
                MetricName.ORDERS: Decimal(count - order.counted_orders),
            },
        )
        order.counted_revenue, order.counted_units, order.counted_orders = revenue, units, count
        publish(
            store.public_id,
            {
                "type": "new_order" if is_new else "order_updated",
                "order": order.external_id,
                "number": order.number,
                "status": order.status,
                "total": str(order.total),
                "currency": order.currency,
                "placed_at": order.placed_at.isoformat(),
                # What the live feed shows of the customer, and nothing more.
                "first_name": order.customer_first_name,
                "city": order.customer_city,
                "test": order.is_test,
            },
        )
        watchers.order(store, order)
        return order

    results, written = _upsert(
        changes, model=Order, key_fields=("external_id",), update_fields=ORDER_FIELDS, write=write
    )
    if written:
        removed = _replace_line_items([(order, last_data[key]) for key, order in written.items()])
        stores = {store.pk: store for store, _ in changes}
        for key, order in written.items():
            if counted_before[key]:
                metrics.add_sales(stores[key[0]], at=order.placed_at, sales=removed.get(order.pk, []), sign=-1)
            if order.counted_orders:
                metrics.add_sales(stores[key[0]], at=order.placed_at, sales=_sales(last_data[key].line_items))
    return results


DELETE_LINE_ITEMS = """
    DELETE FROM commerce_lineitem WHERE order_id = ANY(%s)
    RETURNING order_id, product_external_id, title, quantity, price
"""


def _replace_line_items(orders: Sequence[tuple[Order, OrderData]]) -> dict[int, list[Sale]]:
    """Replace the orders' line items; return the sales of the items taken out, per order."""
    removed: dict[int, list[Sale]] = {}
    with connection.cursor() as cursor:
        cursor.execute(DELETE_LINE_ITEMS, [[order.pk for order, _ in orders]])
        for order_id, product_id, title, quantity, price in cursor.fetchall():
            if quantity > 0:
                removed.setdefault(order_id, []).append(Sale(product_id or title, title, quantity, quantity * price))
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
        for order, data in orders
        for item in data.line_items
    )
    return removed


def _sales(items: Sequence[LineItemData]) -> list[Sale]:
    """The sales a counted order's items add to their products' day, keyed as stored."""
    sales = []
    for item in items:
        if item.quantity > 0:
            title = item.title[:255]
            sales.append(Sale(item.product_external_id[:64] or title, title, item.quantity, item.quantity * item.price))
    return sales


def _apply_stock_changes(
    changes: Sequence[Change], metrics: MetricChanges, watchers: _Watchers
) -> list[InventoryLevel | None]:
    def write(store: Store, data: StockData, level: InventoryLevel | None) -> InventoryLevel:
        previous = None if level is None else level.available
        if level is None:
            level = InventoryLevel(
                store=store, item_external_id=data.item_external_id, location_external_id=data.location_external_id
            )
        level.available = data.available
        level.platform_updated_at = data.updated_at
        if data.sku:
            level.sku = data.sku[:100]
        if data.title:
            level.title = data.title[:255]
        publish(
            store.public_id,
            {"type": "inventory_update", "item": level.item_external_id, "available": level.available},
        )
        watchers.stock(store, level, previous)
        return level

    results, _ = _upsert(
        changes, model=InventoryLevel, key_fields=("item_external_id", "location_external_id"),
        update_fields=LEVEL_FIELDS, write=write, refresh_stale=_fill_in_names,
    )
    return results


def _fill_in_names(level: InventoryLevel, data: StockData) -> bool:
    """Take a name or SKU the item lacks even from an older update: they are not stock state."""
    changed = False
    if data.title and not level.title:
        level.title = data.title[:255]
        changed = True
    if data.sku and not level.sku:
        level.sku = data.sku[:100]
        changed = True
    return changed


def _record_carts(changes: Sequence[Change], metrics: MetricChanges, watchers: _Watchers) -> list[Cart | None]:
    def write(store: Store, data: CartData, cart: Cart | None) -> Cart:
        is_new = cart is None
        if cart is None:
            cart = Cart(store=store, external_id=data.external_id, platform_created_at=data.created_at)
            metrics.add(store, at=cart.platform_created_at, deltas={MetricName.CARTS: Decimal(1)})
        cart.item_count = data.item_count
        cart.value = data.value
        cart.platform_updated_at = data.updated_at
        publish(store.public_id, {"type": "cart_activity", "cart": cart.external_id, "new": is_new})
        return cart

    results, _ = _upsert(changes, model=Cart, key_fields=("external_id",), update_fields=CART_FIELDS, write=write)
    return results


def forget_customer_details(*, store_id: int, order_external_ids: set[str]) -> int:
    """Blank the customer's first name and city on these orders (a privacy request)."""
    return (
        Order.objects.filter(store_id=store_id, external_id__in=order_external_ids)
        .exclude(customer_first_name="", customer_city="")
        .update(customer_first_name="", customer_city="")
    )
