"""Every read behind the live dashboard. Callers pass a store already scoped to the user
(opspulse.stores.selectors.get_store_for_user); "today" is the store's local day."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.db import connection
from django.db.models import Count, Sum, Window
from django.utils import timezone

from opspulse.alerts.models import Alert, AlertType
from opspulse.commerce.models import NOT_COUNTED, Cart, InventoryLevel, Order
from opspulse.metrics.buckets import bucket_start, day_bounds
from opspulse.metrics.models import Granularity, Metric, MetricName, ProductDay
from opspulse.stores.models import Store

ACTIVE_CART_WINDOW = timedelta(minutes=30)
FEED_SIZE = 20
LOW_STOCK_SHOWN = 8
OUT_OF_STOCK_SHOWN = 8
TOP_PRODUCTS_SHOWN = 5
DEFAULT_LOW_STOCK_THRESHOLD = 5
# The longest custom range of the daily charts.
MAX_RANGE_DAYS = 366


@dataclass(frozen=True)
class LocalDay:
    now: datetime
    start: datetime
    end: datetime
    yesterday_start: datetime

    @property
    def elapsed(self) -> timedelta:
        """The clock time now, as a duration since local midnight (aware times of one zone
        subtract as wall-clock times: on a DST day this is not the real time elapsed)."""
        return self.now - self.start

    @property
    def last_week_start(self) -> datetime:
        """Local midnight of the same weekday a week ago (seven calendar days, whatever DST did)."""
        return local_midnight(self.start.date() - timedelta(days=7), self.start.tzinfo)

    def same_time(self, day_start: datetime) -> datetime:
        """The moment on the day beginning at `day_start` whose clock shows the time it is now.

        Wall-clock time, so on the day after a DST change "by 14:30" still means 14:30,
        not 13:30 or 15:30.
        """
        return local_midnight(day_start.date(), day_start.tzinfo).replace(
            hour=self.now.hour, minute=self.now.minute, second=self.now.second,
            microsecond=self.now.microsecond, fold=self.now.fold,
        )


def local_midnight(day: date, tz) -> datetime:
    """The start of the local day `day` in `tz`, as bucket_start computes it."""
    return datetime.combine(day, time(), tzinfo=tz)


def local_day(store: Store, now: datetime | None = None) -> LocalDay:
    """Return the bounds of the store's current local day (and of the day before)."""
    now = (now or timezone.now()).astimezone(ZoneInfo(store.timezone))
    start, end = day_bounds(bucket_start(now, Granularity.DAY, store.timezone))
    yesterday_start = bucket_start(start - timedelta(hours=1), Granularity.DAY, store.timezone)
    return LocalDay(now=now, start=start, end=end, yesterday_start=yesterday_start)


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
class RevenueSeries:
    """Cumulative revenue over the local day.

    x is real hours since local midnight, so a day the clocks go back is 25 hours long
    and each of its repeated hours has a place of its own (a spring-forward day, 23).
    `labels` give the clock time at each x, `ticks` at each whole hour of the day.
    """

    hours: list[float]
    today: list[float | None]
    yesterday: list[float]
    now_hour: float
    length: float
    labels: list[str]
    ticks: list[tuple[float, str]]


def _hours_since(start: datetime, at: datetime) -> float:
    # Aware datetimes of one tzinfo subtract as wall-clock times (PEP 495): timestamps do not.
    return (at.timestamp() - start.timestamp()) / 3600


def _clock_at(day: LocalDay, hours: float, tz: ZoneInfo) -> datetime:
    """The local time `hours` real hours after the day's start, to the nearest minute."""
    return datetime.fromtimestamp(day.start.timestamp() + round(hours * 60) * 60, tz)


def _clock_label(local: datetime) -> str:
    # fold is 1 only in the second pass of an hour the clocks went back over.
    return f"{local:%H:%M} (2nd)" if local.fold else f"{local:%H:%M}"


def revenue_by_hour(store: Store, *, day: LocalDay) -> RevenueSeries:
    """Return today's and yesterday's cumulative revenue from the hour metric buckets."""
    return revenue_series(revenue_hour_buckets(store, day=day), day=day, tz=ZoneInfo(store.timezone))


def revenue_hour_buckets(store: Store, *, day: LocalDay) -> dict[datetime, Decimal]:
    """The revenue hour buckets of yesterday and today, by start."""
    return dict(
        Metric.objects.filter(
            store=store,
            name=MetricName.REVENUE,
            granularity=Granularity.HOUR,
            timestamp__gte=day.yesterday_start,
            timestamp__lt=day.end,
        ).values_list("timestamp", "value")
    )


def revenue_series(buckets: dict[datetime, Decimal], *, day: LocalDay, tz: ZoneInfo) -> RevenueSeries:
    """Cumulative revenue over today and yesterday from their hour buckets.

    Yesterday is laid on today's clock, as the KPIs compare it: yesterday's hour h ends
    where today's first hour h ends. So on a day the clocks go back, yesterday's line is
    flat through the second pass of the repeated hour (it was already counted up to that
    clock time); on a day that skips an hour, yesterday's same hour ends at the jump,
    where today's clock already shows the hour after it.
    """
    length = _hours_since(day.start, day.end)
    whole_hours = [float(h) for h in range(int(length) + 1)]
    clock = {x: _clock_at(day, x, tz) for x in whole_hours}
    first_start: dict[int, float] = {}
    for x in whole_hours[:-1]:
        first_start.setdefault(clock[x].hour, x)

    def yesterday_end(hour: int) -> float:
        if hour in first_start:
            return first_start[hour] + 1
        return min((x for h, x in first_start.items() if h > hour), default=length)

    today: list[tuple[float, float]] = []
    yesterday: list[tuple[float, float]] = []
    for timestamp, value in buckets.items():
        since_start = _hours_since(day.start, timestamp)
        # A bucket's revenue is reached by the end of its hour.
        if 0 <= since_start < length:
            today.append((since_start + 1, float(value)))
        elif since_start < 0 and timestamp.timestamp() >= day.yesterday_start.timestamp():
            yesterday.append((yesterday_end(timestamp.astimezone(tz).hour), float(value)))

    now_hour = round(_hours_since(day.start, day.now.replace(microsecond=0)), 3)
    hours = sorted({*whole_hours, length, now_hour, *(x for x, _ in today + yesterday)})
    today_total = sum(v for _, v in today)

    def cumulative(points: list[tuple[float, float]], x: float) -> float:
        return round(sum(v for end, v in points if end <= x), 2)

    return RevenueSeries(
        hours=hours,
        today=[
            cumulative(today, x) if x < now_hour else round(today_total, 2) if x == now_hour else None
            for x in hours
        ],
        yesterday=[cumulative(yesterday, x) for x in hours],
        now_hour=now_hour,
        length=length,
        labels=[_clock_label(clock[x] if x in clock else _clock_at(day, x, tz)) for x in hours],
        # A tick names the clock time only; the tooltip's label tells the two passes apart.
        ticks=[(x, f"{local:%H:%M}") for x, local in clock.items() if local.minute == 0],
    )


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


def low_stock_threshold(store: Store) -> int:
    """Return the threshold of the store's latest active low-stock alert for every item, or the default.

    A rule for one SKU or one location says nothing about the other items.
    """
    for config in (
        Alert.objects.filter(store=store, type=AlertType.LOW_STOCK, is_active=True)
        .order_by("-created_at")
        .values_list("config", flat=True)
    ):
        if not isinstance(config, dict) or config.get("sku") or config.get("location"):
            continue
        try:
            return int(config.get("threshold", DEFAULT_LOW_STOCK_THRESHOLD))
        except (TypeError, ValueError):
            return DEFAULT_LOW_STOCK_THRESHOLD
    return DEFAULT_LOW_STOCK_THRESHOLD


@dataclass(frozen=True)
class LowStock:
    threshold: int
    items: list[InventoryLevel]
    total: int


STOCK_FIELDS = ("item_external_id", "location_external_id", "sku", "title", "available")


def low_stock(store: Store, *, limit: int = LOW_STOCK_SHOWN) -> LowStock:
    """Return the items still in stock but at or below the low-stock threshold, fewest first.

    Items with nothing available are out of stock (see out_of_stock), listed apart.
    """
    threshold = low_stock_threshold(store)
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


@dataclass(frozen=True)
class TopProduct:
    title: str
    units: int
    # Units times their line price, before order-level discounts, shipping and tax.
    revenue: Decimal


# A product is known by its platform id; items without one (custom line items) by their
# title. Read on every render of the dashboard and in the hub's throttled re-reads.
def top_products(store: Store, *, day: LocalDay, limit: int = TOP_PRODUCTS_SHOWN) -> list[TopProduct]:
    """Return today's best sellers by units, from the products' day (`ProductDay`).

    Cancelled and refunded orders count for nothing, as in the metrics. One row per
    product sold today is read, however many orders the day has.
    """
    rows = (
        ProductDay.objects.filter(store=store, day=day.start.date(), units__gt=0)
        .order_by("-units", "-revenue", "title")
        .values_list("title", "units", "revenue")[:limit]
    )
    return [TopProduct(title=title, units=units, revenue=revenue) for title, units, revenue in rows]


@dataclass(frozen=True)
class DailySeries:
    """Revenue and orders per local day from the day buckets, with the period just before."""

    days: list[date]
    revenue: list[Decimal]
    orders: list[int]
    previous_days: list[date]
    previous_revenue: list[Decimal]
    previous_orders: list[int]
    # Whether the store's history covers all of the period before.
    has_previous: bool = True

    @property
    def total_revenue(self) -> Decimal:
        return sum(self.revenue, Decimal(0))

    @property
    def previous_total_revenue(self) -> Decimal:
        return sum(self.previous_revenue, Decimal(0))


def daily_series(store: Store, *, first: date, last: date) -> DailySeries:
    """Read the day buckets of `first`..`last` (local dates, inclusive) and of as many days before.

    Only the metric buckets are read, never the orders, so a year costs 2 × 366 rows
    per metric however busy the store.
    """
    if last < first or (last - first).days >= MAX_RANGE_DAYS:
        raise ValueError(f"a range is 1 to {MAX_RANGE_DAYS} days")
    tz = ZoneInfo(store.timezone)
    length = (last - first).days + 1
    previous_first = first - timedelta(days=length)
    values: dict[tuple[str, date], Decimal] = {}
    for name, timestamp, value in Metric.objects.filter(
        store=store,
        granularity=Granularity.DAY,
        name__in=[MetricName.REVENUE, MetricName.ORDERS],
        timestamp__gte=local_midnight(previous_first, tz),
        timestamp__lt=local_midnight(last + timedelta(days=1), tz),
    ).values_list("name", "timestamp", "value"):
        values[(name, timestamp.astimezone(tz).date())] = value
    days = [first + timedelta(days=offset) for offset in range(length)]
    previous = [previous_first + timedelta(days=offset) for offset in range(length)]
    return DailySeries(
        days=days,
        revenue=[values.get((MetricName.REVENUE, d), Decimal(0)) for d in days],
        orders=[int(values.get((MetricName.ORDERS, d), 0)) for d in days],
        previous_days=previous,
        previous_revenue=[values.get((MetricName.REVENUE, d), Decimal(0)) for d in previous],
        previous_orders=[int(values.get((MetricName.ORDERS, d), 0)) for d in previous],
        has_previous=store.has_history_from(local_midnight(previous_first, tz)),
    )
