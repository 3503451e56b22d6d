"""Reads of the metric buckets: the store's local day, the revenue by hour, the day's
best sellers and the revenue per day over a range. Callers pass a store already
scoped to the user (opspulse.stores.selectors.get_store_for_user)."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.utils import timezone

from opspulse.metrics.buckets import bucket_start, day_bounds
from opspulse.metrics.models import Granularity, Metric, MetricName, ProductDay
from opspulse.stores.models import Store

TOP_PRODUCTS_SHOWN = 5


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


def _clock_at(start: datetime, hours: float, tz: ZoneInfo) -> datetime:
    """The local time `hours` real hours after `start`, to the nearest minute."""
    return datetime.fromtimestamp(start.timestamp() + round(hours * 60) * 60, tz)


def _clock_label(local: datetime) -> str:
    # fold is 1 only in the second pass of an hour the clocks went back over.
    return f"{local:%H:%M} (2nd)" if local.fold else f"{local:%H:%M}"


@dataclass(frozen=True)
class _DayClock:
    """A local day's whole hours on the clock: the same for every render of the day."""

    length: float
    whole_hours: tuple[float, ...]
    labels: dict[float, str]
    # The first x at which each clock hour starts.
    first_start: dict[int, float]
    ticks: tuple[tuple[float, str], ...]


@functools.lru_cache(maxsize=1024)
def _day_clock(start: datetime, end: datetime, tz: ZoneInfo) -> _DayClock:
    length = _hours_since(start, end)
    whole_hours = tuple(float(h) for h in range(int(length) + 1))
    clock = {x: _clock_at(start, x, tz) for x in whole_hours}
    first_start: dict[int, float] = {}
    for x in whole_hours[:-1]:
        first_start.setdefault(clock[x].hour, x)
    return _DayClock(
        length=length,
        whole_hours=whole_hours,
        labels={x: _clock_label(local) for x, local in clock.items()},
        first_start=first_start,
        # A tick names the clock time only; the tooltip's label tells the two passes apart.
        ticks=tuple((x, f"{local:%H:%M}") for x, local in clock.items() if local.minute == 0),
    )


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
    day_clock = _day_clock(day.start, day.end, tz)
    length, whole_hours, first_start = day_clock.length, day_clock.whole_hours, day_clock.first_start

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
        labels=[day_clock.labels.get(x) or _clock_label(_clock_at(day.start, x, tz)) for x in hours],
        ticks=list(day_clock.ticks),
    )


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
