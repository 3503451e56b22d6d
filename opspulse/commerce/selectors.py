"""Reads of a store's sales, orders, carts and stock: today's totals against earlier
days, the order feed, cancellations and refunds, active carts and low or sold-out
items. Callers pass a store already scoped to the user
(opspulse.stores.selectors.get_store_for_user); "today" is the store's local day
(opspulse.metrics.selectors.local_day)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.db import connection
from django.db.models import Count, Sum, Window

from opspulse.commerce.models import NOT_COUNTED, Cart, InventoryLevel, Order
from opspulse.metrics.models import Granularity, MetricName
from opspulse.metrics.selectors import LocalDay
from opspulse.stores.models import Store

ACTIVE_CART_WINDOW = timedelta(minutes=30)
FEED_SIZE = 20
LOW_STOCK_SHOWN = 8
OUT_OF_STOCK_SHOWN = 8


@dataclass(frozen=True)
class Totals:
    """A stretch of a day's sales: revenue, counted orders, units sold, carts created."""

    revenue: Decimal = Decimal(0)
    orders: int = 0
    units: int = 0
    carts: int = 0

    @property
    def average_order_value(self) -> Decimal | None:
        return self.revenue / self.orders if self.orders else None

    @property
    def orders_per_cart(self) -> Decimal | None:
        """Orders placed per cart created over the same stretch (None without carts).

        Not a strict conversion rate: an order may come from a cart created earlier,
        and a platform may create no cart for an order (a draft order, a POS sale).
        """
        return Decimal(self.orders) / self.carts if self.carts else None


@dataclass(frozen=True)
class DaySummary:
    revenue: Decimal
    orders: int
    # Yesterday up to the same time of day, for a like-for-like comparison.
    yesterday_revenue: Decimal
    yesterday_orders: int
    units: int = 0
    carts: int = 0
    yesterday_units: int = 0
    yesterday_carts: int = 0
    # The same weekday last week, up to the same time of day.
    last_week_revenue: Decimal = Decimal(0)
    last_week_orders: int = 0
    last_week_units: int = 0
    last_week_carts: int = 0
    # Whether the store's history covers all of yesterday, and all of the same weekday
    # last week: a comparison with a day OpsPulse saw only part of would mislead.
    has_yesterday: bool = True
    has_last_week: bool = True

    @property
    def average_order_value(self) -> Decimal | None:
        return self.today.average_order_value

    @property
    def yesterday_average_order_value(self) -> Decimal | None:
        return self.yesterday.average_order_value

    @property
    def today(self) -> Totals:
        return Totals(self.revenue, self.orders, self.units, self.carts)

    @property
    def yesterday(self) -> Totals:
        return Totals(self.yesterday_revenue, self.yesterday_orders, self.yesterday_units, self.yesterday_carts)

    @property
    def last_week(self) -> Totals:
        return Totals(self.last_week_revenue, self.last_week_orders, self.last_week_units, self.last_week_carts)


DAY_TOTAL_NAMES = {
    MetricName.REVENUE: "revenue",
    MetricName.ORDERS: "orders",
    MetricName.UNITS_SOLD: "units",
    MetricName.CARTS: "carts",
}


# Today's day buckets (row 0, with when the store's history starts), then each earlier
# day up to the current time of day (rows 1…): those cut through an hour bucket, so
# they are summed from the orders themselves (what each still counts towards the
# metrics) and the carts, over their time indexes. One round trip: the dashboard, the
# overview and the wallboard read it on every render.
SUMMARY_SQL = """
SELECT 0 AS n,
       SUM(value) FILTER (WHERE name = %(revenue)s),
       SUM(value) FILTER (WHERE name = %(orders)s),
       SUM(value) FILTER (WHERE name = %(units)s),
       SUM(value) FILTER (WHERE name = %(carts)s),
       (SELECT history_starts_at FROM stores_store WHERE id = %(store)s)
FROM metrics_metric
WHERE store_id = %(store)s AND granularity = %(day)s AND timestamp = %(today)s
  AND name IN (%(revenue)s, %(orders)s, %(units)s, %(carts)s)
UNION ALL
SELECT w.n, o.revenue, o.orders, o.units, c.carts, NULL::timestamptz
FROM unnest(%(starts)s::timestamptz[], %(ends)s::timestamptz[]) WITH ORDINALITY AS w(start_at, end_at, n)
CROSS JOIN LATERAL (
    SELECT SUM(counted_revenue) AS revenue, SUM(counted_orders) AS orders, SUM(counted_units) AS units
    FROM commerce_order
    WHERE store_id = %(store)s AND placed_at >= w.start_at AND placed_at < w.end_at
) AS o
CROSS JOIN LATERAL (
    SELECT COUNT(*) AS carts
    FROM commerce_cart
    WHERE store_id = %(store)s AND platform_created_at >= w.start_at AND platform_created_at < w.end_at
) AS c
ORDER BY n
"""


def _summary_rows(
    store: Store, *, day: LocalDay, day_starts: list[datetime]
) -> tuple[list[Totals], datetime | None]:
    """Today's totals, then each of `day_starts`' days up to the current time of day;
    and when the store's history starts, as the database has it now."""
    with connection.cursor() as cursor:
        cursor.execute(SUMMARY_SQL, {
            "store": store.pk, "day": Granularity.DAY, "today": day.start,
            "revenue": MetricName.REVENUE, "orders": MetricName.ORDERS, "units": MetricName.UNITS_SOLD,
            "carts": MetricName.CARTS,
            "starts": day_starts, "ends": [day.same_time(start) for start in day_starts],
        })
        rows = cursor.fetchall()
    totals = [
        Totals(revenue=revenue or Decimal(0), orders=int(orders or 0), units=int(units or 0), carts=int(carts or 0))
        for _, revenue, orders, units, carts, _ in rows
    ]
    return totals, rows[0][5]


def today_summary(store: Store, *, day: LocalDay) -> DaySummary:
    """Return today's totals from the day metric buckets, with yesterday and the same
    weekday last week up to the same time of day, and whether the store's history
    reaches back to each of them."""
    (today, yesterday, last_week), history_start = _summary_rows(
        store, day=day, day_starts=[day.yesterday_start, day.last_week_start]
    )
    return DaySummary(
        revenue=today.revenue, orders=today.orders, units=today.units, carts=today.carts,
        yesterday_revenue=yesterday.revenue, yesterday_orders=yesterday.orders,
        yesterday_units=yesterday.units, yesterday_carts=yesterday.carts,
        last_week_revenue=last_week.revenue, last_week_orders=last_week.orders,
        last_week_units=last_week.units, last_week_carts=last_week.carts,
        # No history start: the store was erased while this read ran.
        has_yesterday=history_start is not None and history_start <= day.yesterday_start,
        has_last_week=history_start is not None and history_start <= day.last_week_start,
    )


def day_totals(store: Store, *, day: LocalDay) -> Totals:
    """Today's totals, from the day metric buckets."""
    return _summary_rows(store, day=day, day_starts=[])[0][0]


def today_totals(store: Store, *, day: LocalDay) -> tuple[Decimal, int]:
    """Today's revenue and order count, from the day metric buckets."""
    totals = day_totals(store, day=day)
    return totals.revenue, totals.orders


def so_far(store: Store, *, day: LocalDay, day_starts: list[datetime]) -> list[Totals]:
    """The totals of each earlier day (beginning at `day_starts`) up to the current time of day."""
    return _summary_rows(store, day=day, day_starts=day_starts)[0][1:]


def yesterday_so_far(store: Store, *, day: LocalDay) -> tuple[Decimal, int]:
    """Yesterday's revenue and order count up to the current time of day."""
    (yesterday,) = so_far(store, day=day, day_starts=[day.yesterday_start])
    return yesterday.revenue, yesterday.orders


@dataclass(frozen=True)
class CartActivity:
    count: int
    value: Decimal


def active_carts(store: Store, *, day: LocalDay) -> CartActivity:
    """Return the carts touched in the last 30 minutes and what they hold."""
    totals = Cart.objects.filter(
        store=store, platform_updated_at__gte=day.now - ACTIVE_CART_WINDOW
    ).aggregate(count=Count("id"), value=Sum("value"))
    return CartActivity(count=totals["count"], value=totals["value"] or Decimal(0))


@dataclass(frozen=True)
class FeedOrder:
    """What the live feed may show of an order: no customer data beyond first name and city."""

    external_id: str
    number: str
    total: Decimal
    currency: str
    status: str
    first_name: str
    city: str
    placed_at: datetime
    # A test checkout: shown with its badge, counted nowhere.
    is_test: bool = False


FEED_FIELDS = (
    "external_id",
    "number",
    "total",
    "currency",
    "status",
    "customer_first_name",
    "customer_city",
    "placed_at",
    "is_test",
)


def recent_orders(store: Store, *, limit: int = FEED_SIZE) -> list[FeedOrder]:
    rows = Order.objects.filter(store=store).order_by("-placed_at", "-id").values_list(*FEED_FIELDS)
    return [FeedOrder(*row) for row in rows[:limit]]


VOIDED_SHOWN = 5
VOIDED_DAYS = 7


@dataclass(frozen=True)
class VoidedOrder:
    """A cancelled or refunded order, and when the platform last changed it."""

    order: FeedOrder
    changed_at: datetime


def recent_voided_orders(store: Store, *, day: LocalDay, limit: int = VOIDED_SHOWN) -> list[VoidedOrder]:
    """Return the orders cancelled or refunded most recently, of those placed in the last 7 days.

    The feed shows the latest orders; this shows a cancellation or refund of an older
    one too, which would otherwise pass unseen.
    """
    rows = (
        Order.objects.filter(
            store=store,
            status__in=list(NOT_COUNTED),
            placed_at__gte=day.start - timedelta(days=VOIDED_DAYS),
            # A cancelled test checkout lost no sale.
            is_test=False,
        )
        .order_by("-platform_updated_at", "-id")
        .values_list(*FEED_FIELDS, "platform_updated_at")
    )
    return [VoidedOrder(order=FeedOrder(*row[:-1]), changed_at=row[-1]) for row in rows[:limit]]


@dataclass(frozen=True)
class LowStock:
    threshold: int
    items: list[InventoryLevel]
    total: int


STOCK_FIELDS = ("item_external_id", "location_external_id", "sku", "title", "available")


def low_stock(store: Store, *, threshold: int, limit: int = LOW_STOCK_SHOWN) -> LowStock:
    """Return the items still in stock but at or below `threshold`, fewest first.

    Items with nothing available are out of stock (see out_of_stock), listed apart.
    """
    items = list(
        InventoryLevel.objects.filter(store=store, available__gt=0, available__lte=threshold)
        .annotate(total=Window(Count("id")))
        .order_by("available", "title", "id")
        .only(*STOCK_FIELDS)[:limit]
    )
    return LowStock(threshold=threshold, items=items, total=items[0].total if items else 0)


@dataclass(frozen=True)
class OutOfStock:
    items: list[InventoryLevel]
    total: int


def out_of_stock(store: Store, *, limit: int = OUT_OF_STOCK_SHOWN) -> OutOfStock:
    """Return the items with nothing available (oversold ones below zero), most recently sold out first."""
    items = list(
        InventoryLevel.objects.filter(store=store, available__lte=0)
        .annotate(total=Window(Count("id")))
        .order_by("-platform_updated_at", "title", "id")
        .only(*STOCK_FIELDS, "platform_updated_at")[:limit]
    )
    return OutOfStock(items=items, total=items[0].total if items else 0)
