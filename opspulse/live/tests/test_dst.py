"""Days that are 23 or 25 hours long: buckets, the hourly chart and fair comparisons.

Europe/Paris springs forward on 2025-03-30 (02:00 → 03:00) and falls back on
2025-10-26 (03:00 → 02:00); America/New_York on 2025-03-09 and 2025-11-02 (at 02:00).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from opspulse.commerce.actions import OrderData, apply_records
from opspulse.commerce.models import OrderStatus
from opspulse.live import selectors
from opspulse.live.tests.factories import MetricFactory, OrderFactory, StoreFactory
from opspulse.metrics.models import Granularity, Metric, MetricName

PARIS = ZoneInfo("Europe/Paris")
NEW_YORK = ZoneInfo("America/New_York")

pytestmark = pytest.mark.django_db


def utc_hours(start: datetime, end: datetime) -> float:
    return (end.astimezone(UTC) - start.astimezone(UTC)).total_seconds() / 3600


def order(number: int, placed_at: datetime, total: str = "10.00") -> OrderData:
    return OrderData(
        external_id=str(number), number=f"#{number}", status=OrderStatus.PAID, currency="EUR",
        total=Decimal(total), placed_at=placed_at, updated_at=placed_at,
    )


@pytest.mark.parametrize(
    ("zone", "day", "hours"),
    [
        ("Europe/Paris", date(2025, 3, 30), 23),
        ("Europe/Paris", date(2025, 10, 26), 25),
        ("America/New_York", date(2025, 3, 9), 23),
        ("America/New_York", date(2025, 11, 2), 25),
    ],
    ids=["paris_spring_forward_case", "paris_fall_back_case", "new_york_spring_forward_case",
         "new_york_fall_back_case"],
)
def test_a_dst_day_is_one_day_bucket_with_one_hour_bucket_per_real_hour(zone, day, hours):
    # given an order in every real hour of the store's DST day, and one on each side of it
    store = StoreFactory(timezone=zone, currency="EUR")
    tz = ZoneInfo(zone)
    start = selectors.local_midnight(day, tz).astimezone(UTC)
    placed = [start + timedelta(hours=h, minutes=30) for h in range(hours)]
    records = [order(n, at) for n, at in enumerate(placed)]
    records += [order(100, start - timedelta(minutes=1)), order(101, start + timedelta(hours=hours, minutes=1))]

    # when they are recorded
    apply_records(store=store, records=records)

    # then the day's bucket starts at local midnight and holds exactly the day's orders,
    # and each real hour has its own hour bucket (two 01:00 or 02:00 ones on a fall-back day)
    day_bucket = Metric.objects.get(store=store, name=MetricName.ORDERS, granularity=Granularity.DAY,
                                    timestamp=start)
    assert day_bucket.value == hours
    local = selectors.local_day(store, placed[-1])
    assert local.start == start and utc_hours(local.start, local.end) == hours
    hour_buckets = Metric.objects.filter(store=store, name=MetricName.ORDERS, granularity=Granularity.HOUR,
                                         timestamp__gte=local.start, timestamp__lt=local.end)
    assert hour_buckets.count() == hours
    series = selectors.daily_series(store, first=day - timedelta(days=1), last=day + timedelta(days=1))
    assert series.orders == [1, hours, 1]


def hour_bucket(store, at: datetime, value: str = "1.00") -> None:
    MetricFactory(store=store, name=MetricName.REVENUE, granularity=Granularity.HOUR, timestamp=at,
                  value=Decimal(value))


def test_the_hourly_chart_of_a_spring_forward_day_skips_the_missing_hour():
    store = StoreFactory(timezone="Europe/Paris")
    day = selectors.local_day(store, datetime(2025, 3, 30, 23, 30, tzinfo=PARIS))
    for h in range(23):
        hour_bucket(store, day.start.astimezone(UTC) + timedelta(hours=h))

    series = selectors.revenue_by_hour(store, day=day)
    today = dict(zip(series.hours, series.today, strict=True))

    # 00:00 and 01:00 are done by 02:00; no 02:00 hour exists, so 03:00 is next
    assert today[2.0] == 2 and today[3.0] == 2 and today[4.0] == 3
    assert series.now_hour == 23.5 and today[23.5] == 23
    assert [x for x in series.hours if x <= 24] == sorted(series.hours)


def test_the_hourly_chart_of_a_fall_back_day_shows_both_repeated_hours_at_their_clock_time():
    store = StoreFactory(timezone="America/New_York")
    day = selectors.local_day(store, datetime(2025, 11, 2, 23, 30, tzinfo=NEW_YORK))
    for h in range(25):
        hour_bucket(store, day.start.astimezone(UTC) + timedelta(hours=h))

    series = selectors.revenue_by_hour(store, day=day)
    today = dict(zip(series.hours, series.today, strict=True))

    # 00:00, then 01:00 daylight time and 01:00 standard time: all done by 02:00 on the clock
    assert today[1.0] == 1 and today[2.0] == 3
    assert max(series.hours) == 24.0
    assert today[23.5] == 25


@pytest.mark.parametrize(
    ("zone", "now", "counted", "not_counted"),
    [
        # Spring-forward day at 14:30: yesterday (standard time) up to 14:30 on its clock,
        # although only 13.5 hours have passed since midnight today.
        ("America/New_York", datetime(2025, 3, 9, 14, 30, tzinfo=NEW_YORK),
         datetime(2025, 3, 8, 14, 15, tzinfo=NEW_YORK), datetime(2025, 3, 8, 14, 45, tzinfo=NEW_YORK)),
        # The day after it: yesterday had 23 hours, still compared up to 14:30.
        ("America/New_York", datetime(2025, 3, 10, 14, 30, tzinfo=NEW_YORK),
         datetime(2025, 3, 9, 14, 15, tzinfo=NEW_YORK), datetime(2025, 3, 9, 14, 45, tzinfo=NEW_YORK)),
        # Fall-back day at 10:00 (11 real hours since midnight): yesterday up to 10:00.
        ("Europe/Paris", datetime(2025, 10, 26, 10, 0, tzinfo=PARIS),
         datetime(2025, 10, 25, 9, 45, tzinfo=PARIS), datetime(2025, 10, 25, 10, 15, tzinfo=PARIS)),
        ("Europe/Paris", datetime(2025, 3, 30, 10, 0, tzinfo=PARIS),
         datetime(2025, 3, 29, 9, 45, tzinfo=PARIS), datetime(2025, 3, 29, 10, 15, tzinfo=PARIS)),
    ],
    ids=["new_york_spring_forward_case", "new_york_day_after_case", "paris_fall_back_case",
         "paris_spring_forward_case"],
)
def test_yesterday_and_last_week_are_compared_up_to_the_same_time_on_the_clock(zone, now, counted, not_counted):
    store = StoreFactory(timezone=zone)
    # given orders just before and just after the time of day, yesterday and on the
    # same weekday last week (six days before yesterday, same clock time)
    for at in (counted, not_counted):
        OrderFactory(store=store, total=Decimal("10.00"), placed_at=at)
        OrderFactory(store=store, total=Decimal("1000.00"), placed_at=at - timedelta(days=6))

    day = selectors.local_day(store, now)
    summary = selectors.today_summary(store, day=day)

    assert day.last_week_start.date() == now.date() - timedelta(days=7)
    assert day.last_week_start.hour == 0
    assert (summary.yesterday_revenue, summary.yesterday_orders) == (Decimal("10.00"), 1)
    assert (summary.last_week_revenue, summary.last_week_orders) == (Decimal("1000.00"), 1)
