"""Every read behind the live dashboard. Callers pass a store already scoped to the user
(opspulse.accounts.selectors.get_store_for_user); "today" is the store's local day."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.db.models import Count, Sum
from django.utils import timezone

from opspulse.alerts.models import Alert, AlertEvent, AlertType
from opspulse.commerce.models import Cart, InventoryLevel, Order
from opspulse.metrics.buckets import bucket_start, day_bounds
from opspulse.metrics.models import Granularity, Metric, MetricName
from opspulse.stores.models import Store

ACTIVE_CART_WINDOW = timedelta(minutes=30)
FEED_SIZE = 20
LOW_STOCK_SHOWN = 8
ALERT_EVENTS_SHOWN = 6
DEFAULT_LOW_STOCK_THRESHOLD = 5


@dataclass(frozen=True)
class LocalDay:
    now: datetime
    start: datetime
    end: datetime
    yesterday_start: datetime

    @property
    def elapsed(self) -> timedelta:
        return self.now - self.start


def local_day(store: Store, now: datetime | None = None) -> LocalDay:
    """Return the bounds of the store's current local day (and of the day before)."""
    now = (now or timezone.now()).astimezone(ZoneInfo(store.timezone))
    start, end = day_bounds(bucket_start(now, Granularity.DAY, store.timezone))
    yesterday_start = bucket_start(start - timedelta(hours=1), Granularity.DAY, store.timezone)
    return LocalDay(now=now, start=start, end=end, yesterday_start=yesterday_start)


@dataclass(frozen=True)
class DaySummary:
    revenue: Decimal
    orders: int
    # Yesterday up to the same time of day, for a like-for-like comparison.
    yesterday_revenue: Decimal
    yesterday_orders: int

    @property
    def average_order_value(self) -> Decimal | None:
        return self.revenue / self.orders if self.orders else None

    @property
    def yesterday_average_order_value(self) -> Decimal | None:
        return self.yesterday_revenue / self.yesterday_orders if self.yesterday_orders else None


def today_summary(store: Store, *, day: LocalDay) -> DaySummary:
    """Return today's revenue and order count from the day metric bucket, with yesterday so far."""
    revenue, orders = today_totals(store, day=day)
    yesterday_revenue, yesterday_orders = yesterday_so_far(store, day=day)
    return DaySummary(
        revenue=revenue, orders=orders, yesterday_revenue=yesterday_revenue, yesterday_orders=yesterday_orders
    )


def today_totals(store: Store, *, day: LocalDay) -> tuple[Decimal, int]:
    """Today's revenue and order count, from the day metric buckets."""
    values = dict(
        Metric.objects.filter(
            store=store,
            granularity=Granularity.DAY,
            timestamp=day.start,
            name__in=[MetricName.REVENUE, MetricName.ORDERS],
        ).values_list("name", "value")
    )
    return values.get(MetricName.REVENUE, Decimal(0)), int(values.get(MetricName.ORDERS, 0))


def yesterday_so_far(store: Store, *, day: LocalDay) -> tuple[Decimal, int]:
    """Yesterday's revenue and order count up to the current time of day."""
    # This cuts through an hour bucket, so it is summed from the orders themselves
    # (what each still counts towards the metrics), over the placed_at index.
    totals = Order.objects.filter(
        store=store,
        placed_at__gte=day.yesterday_start,
        placed_at__lt=day.yesterday_start + day.elapsed,
    ).aggregate(revenue=Sum("counted_revenue"), orders=Sum("counted_orders"))
    return totals["revenue"] or Decimal(0), totals["orders"] or 0


@dataclass(frozen=True)
class RevenueSeries:
    """Cumulative revenue over the local day; x is hours since local midnight."""

    hours: list[float]
    today: list[float | None]
    yesterday: list[float]
    now_hour: float


def _hour_of_day(at: datetime, tz: ZoneInfo) -> float:
    local = at.astimezone(tz)
    return local.hour + local.minute / 60


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
    """Cumulative revenue over today and yesterday from their hour buckets."""
    today: list[tuple[float, float]] = []
    yesterday: list[tuple[float, float]] = []
    for timestamp, value in buckets.items():
        if not day.yesterday_start <= timestamp < day.end:
            continue
        # A bucket's revenue is reached by the end of its hour.
        point = (_hour_of_day(timestamp, tz) + 1, float(value))
        (today if timestamp >= day.start else yesterday).append(point)

    now_hour = round(_hour_of_day(day.now, tz) + day.now.second / 3600, 3)
    hours = sorted({float(h) for h in range(25)} | {x for x, _ in today + yesterday} | {now_hour})
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


FEED_FIELDS = (
    "external_id",
    "number",
    "total",
    "currency",
    "status",
    "customer_first_name",
    "customer_city",
    "placed_at",
)


def recent_orders(store: Store, *, limit: int = FEED_SIZE) -> list[FeedOrder]:
    rows = Order.objects.filter(store=store).order_by("-placed_at", "-id").values_list(*FEED_FIELDS)
    return [FeedOrder(*row) for row in rows[:limit]]


def low_stock_threshold(store: Store) -> int:
    """Return the threshold of the store's active low-stock alert, or the default."""
    alert = (
        Alert.objects.filter(store=store, type=AlertType.LOW_STOCK, is_active=True)
        .order_by("-created_at")
        .only("config")
        .first()
    )
    if alert is None:
        return DEFAULT_LOW_STOCK_THRESHOLD
    try:
        return int(alert.config.get("threshold", DEFAULT_LOW_STOCK_THRESHOLD))
    except (TypeError, ValueError, AttributeError):
        return DEFAULT_LOW_STOCK_THRESHOLD


@dataclass(frozen=True)
class LowStock:
    threshold: int
    items: list[InventoryLevel]
    total: int


def low_stock(store: Store, *, limit: int = LOW_STOCK_SHOWN) -> LowStock:
    """Return the items at or below the low-stock threshold, fewest available first."""
    threshold = low_stock_threshold(store)
    levels = (
        InventoryLevel.objects.filter(store=store, available__lte=threshold)
        .order_by("available", "title", "id")
        .only("item_external_id", "location_external_id", "sku", "title", "available")
    )
    items = list(levels[:limit])
    total = levels.count() if len(items) == limit else len(items)
    return LowStock(threshold=threshold, items=items, total=total)


def recent_alert_events(store: Store, *, limit: int = ALERT_EVENTS_SHOWN) -> list[AlertEvent]:
    return list(
        AlertEvent.objects.filter(store=store)
        .select_related("alert")
        .order_by("-fired_at", "-id")[:limit]
    )
