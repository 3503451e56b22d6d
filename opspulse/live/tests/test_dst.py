"""Days that are 23 or 25 hours long: buckets, the hourly chart and fair comparisons.

Europe/Paris springs forward on 2025-03-30 and 2026-03-29 (02:00 → 03:00) and falls back
on 2025-10-26 and 2026-10-25 (03:00 → 02:00); America/New_York on 2025-03-09 and 2026-03-08,
and 2025-11-02 and 2026-11-01 (at 02:00).
"""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from html import unescape
from zoneinfo import ZoneInfo

import pytest

from opspulse.commerce import selectors as commerce_selectors
from opspulse.commerce.actions import OrderData, apply_records
from opspulse.commerce.models import OrderStatus
from opspulse.live import fragments
from opspulse.live.panels import REVENUE_CHART
from opspulse.live.store_view import StoreView
from opspulse.metrics import selectors as metric_selectors
from opspulse.metrics.models import Granularity, Metric, MetricName
from tests.factories import MetricFactory, OrderFactory, StoreFactory

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
    start = metric_selectors.local_midnight(day, tz).astimezone(UTC)
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
    local = metric_selectors.local_day(store, placed[-1])
    assert local.start == start and utc_hours(local.start, local.end) == hours
    hour_buckets = Metric.objects.filter(store=store, name=MetricName.ORDERS, granularity=Granularity.HOUR,
                                         timestamp__gte=local.start, timestamp__lt=local.end)
    assert hour_buckets.count() == hours
    series = metric_selectors.daily_series(store, first=day - timedelta(days=1), last=day + timedelta(days=1))
    assert series.orders == [1, hours, 1]


def hour_bucket(store, at: datetime, value: str = "1.00") -> None:
    MetricFactory(store=store, name=MetricName.REVENUE, granularity=Granularity.HOUR, timestamp=at,
                  value=Decimal(value))


def hour_buckets(store, first: datetime, count: int, values: dict[int, str] | None = None) -> None:
    """One revenue bucket in each of `count` real hours from `first` (1.00 unless `values` says)."""
    for h in range(count):
        hour_bucket(store, first.astimezone(UTC) + timedelta(hours=h), (values or {}).get(h, "1.00"))


def at_clock(series: metric_selectors.RevenueSeries, values: list) -> dict[str, float | None]:
    """The series' `values` by the clock time shown at each point (the end of the day is "24:00")."""
    labels = [*series.labels[:-1], "24:00"]
    return dict(zip(labels, values, strict=True))


def chart_data(store, now: datetime) -> dict:
    html = fragments.render_panels(store, [REVENUE_CHART], oob=False, now=now)[REVENUE_CHART]
    return json.loads(unescape(re.search(r'data-chart="([^"]*)"', html).group(1)))


def test_the_hourly_chart_of_a_spring_forward_day_is_23_hours_long_without_the_skipped_hour():
    store = StoreFactory(timezone="Europe/Paris")
    day = metric_selectors.local_day(store, datetime(2025, 3, 30, 23, 30, tzinfo=PARIS))
    hour_buckets(store, day.start, 23)

    series = metric_selectors.revenue_by_hour(store, day=day)
    today = dict(zip(series.hours, series.today, strict=True))
    labels = dict(zip(series.hours, series.labels, strict=True))

    # 00:00 and 01:00 are done when the clock jumps from 02:00 to 03:00; no 02:00 hour exists
    assert [labels[x] for x in (1.0, 2.0, 3.0)] == ["01:00", "03:00", "04:00"]
    assert today[2.0] == 2 and today[3.0] == 3
    assert "02:00" not in series.labels and "02:00" not in [label for _, label in series.ticks]
    assert series.now_hour == 22.5 and labels[22.5] == "23:30" and today[22.5] == 23
    assert series.length == 23 and series.hours[-1] == 23.0 and labels[23.0] == "00:00"
    assert today[23.0] is None


@pytest.mark.parametrize(
    ("zone", "day", "repeated"),
    [
        # Paris goes back from 03:00 to 02:00, New York from 02:00 to 01:00.
        ("Europe/Paris", date(2026, 10, 25), 2),
        ("America/New_York", date(2026, 11, 1), 1),
    ],
    ids=["paris_fall_back_case", "new_york_fall_back_case"],
)
def test_the_hourly_chart_of_a_fall_back_day_gives_each_pass_of_the_repeated_hour_its_own_place(zone, day, repeated):
    tz = ZoneInfo(zone)
    store = StoreFactory(timezone=zone)
    start = metric_selectors.local_midnight(day, tz)
    # given 1.00 in every real hour of the day, but 100.00 in the first pass of the
    # repeated hour and 10.00 in the second
    hour_buckets(store, start, 25, {repeated: "100.00", repeated + 1: "10.00"})
    local = metric_selectors.local_day(store, datetime.combine(day, time(23, 30), tzinfo=tz))

    series = metric_selectors.revenue_by_hour(store, day=local)
    today = dict(zip(series.hours, series.today, strict=True))
    labels = dict(zip(series.hours, series.labels, strict=True))

    # then the two passes follow each other on the axis, each adding its own revenue
    clock = f"{repeated:02}:00"
    assert [labels[float(x)] for x in range(repeated, repeated + 3)] == [
        clock, f"{clock} (2nd)", f"{repeated + 1:02}:00",
    ]
    assert today[repeated] == repeated
    assert today[repeated + 1] == repeated + 100
    assert today[repeated + 2] == repeated + 110
    assert [label for _, label in series.ticks].count(clock) == 2
    # and the day is 25 hours long, now at 23:30 being 24.5 hours after midnight
    assert series.now_hour == 24.5 and labels[24.5] == "23:30" and today[24.5] == 23 + 110
    assert series.length == 25 and series.hours[-1] == 25.0 and labels[25.0] == "00:00"
    assert today[25.0] is None


@pytest.mark.parametrize(
    ("zone", "today", "expected"),
    [
        # Yesterday's 00:00 hour is done at the first 01:00; its 01:00 hour by the time the
        # clock shows 01:00 again, and nothing of it is left for the second pass.
        ("America/New_York", date(2026, 11, 1),
         {"01:00": 1, "01:00 (2nd)": 2, "02:00": 2, "03:00": 3, "23:00": 23, "24:00": 24}),
        # Yesterday had two 01:00 hours: both are done by 02:00.
        ("America/New_York", date(2026, 11, 2), {"01:00": 1, "02:00": 3, "03:00": 4, "24:00": 25}),
        # Today skips 02:00: at 03:00, yesterday's hours up to 03:00 are all done.
        ("Europe/Paris", date(2026, 3, 29), {"01:00": 1, "03:00": 3, "04:00": 4, "24:00": 24}),
        # Yesterday skipped 02:00: it had nothing more by 03:00 than by 02:00.
        ("Europe/Paris", date(2026, 3, 30), {"02:00": 2, "03:00": 2, "04:00": 3, "24:00": 23}),
    ],
    ids=["fall_back_day_case", "day_after_fall_back_case", "spring_forward_day_case",
         "day_after_spring_forward_case"],
)
def test_yesterdays_line_is_drawn_by_the_clock_time_of_today(zone, today, expected):
    tz = ZoneInfo(zone)
    store = StoreFactory(timezone=zone)
    yesterday_start, today_start = (metric_selectors.local_midnight(d, tz) for d in (today - timedelta(days=1), today))
    # given 1.00 in every real hour of yesterday
    hour_buckets(store, yesterday_start, round(utc_hours(yesterday_start, today_start)))
    day = metric_selectors.local_day(store, datetime.combine(today, time(23, 30), tzinfo=tz))

    series = metric_selectors.revenue_by_hour(store, day=day)

    # then at each clock time today, yesterday's line shows yesterday's revenue by that time
    yesterday = at_clock(series, series.yesterday)
    assert {label: yesterday[label] for label in expected} == expected
    assert series.hours[-1] == utc_hours(day.start, day.end)


def test_a_live_bucket_of_each_pass_of_the_repeated_hour_has_its_own_place():
    store = StoreFactory(timezone="America/New_York")
    day = metric_selectors.local_day(store, datetime(2026, 11, 1, 3, 30, tzinfo=NEW_YORK))
    summary = commerce_selectors.DaySummary(revenue=Decimal(0), orders=0, yesterday_revenue=Decimal(0), yesterday_orders=0)
    view = StoreView(day=day, summary=summary, hours={}, feed=[])
    first_pass = day.start.astimezone(UTC) + timedelta(hours=1)

    # when a metric message brings the two 01:00 buckets, as the writer publishes them
    view.apply([{"type": "metric_update", "names": ["revenue"], "buckets": [
        ["revenue", "hour", first_pass.isoformat(), "100.00"],
        ["revenue", "hour", (first_pass + timedelta(hours=1)).isoformat(), "10.00"],
    ]}])

    # then the chart drawn from the view has both, one after the other
    series = metric_selectors.revenue_series(view.hours, day=day, tz=NEW_YORK)
    today = at_clock(series, series.today)
    assert (today["01:00"], today["01:00 (2nd)"], today["02:00"]) == (0, 100, 110)
    assert series.now_hour == 4.5


@pytest.mark.parametrize(
    ("now", "length", "clock"),
    [
        (datetime(2026, 10, 25, 12, 0, tzinfo=PARIS), 25,
         ["00:00", "01:00", "02:00", "02:00", *(f"{h:02}:00" for h in range(3, 24)), "00:00"]),
        (datetime(2026, 3, 29, 12, 0, tzinfo=PARIS), 23,
         ["00:00", "01:00", *(f"{h:02}:00" for h in range(3, 24)), "00:00"]),
        (datetime(2026, 10, 20, 12, 0, tzinfo=PARIS), 24, [*(f"{h:02}:00" for h in range(24)), "00:00"]),
    ],
    ids=["fall_back_case", "spring_forward_case", "ordinary_day_case"],
)
def test_the_chart_tells_the_page_the_days_length_and_the_clock_time_of_each_hour(now, length, clock):
    store = StoreFactory(timezone="Europe/Paris", currency="EUR")
    day = metric_selectors.local_day(store, now)
    hour_buckets(store, day.start, 3)

    chart = chart_data(store, now)

    assert chart["length"] == length and chart["x"][-1] == length
    assert chart["ticks"] == [[float(x), label] for x, label in enumerate(clock)]
    assert {float(x) for x in range(length + 1)} <= set(chart["x"])
    assert len(chart["labels"]) == len(chart["x"]) == len(chart["today"]) == len(chart["yesterday"])
    assert chart["labels"][chart["x"].index(chart["now"])] == "12:00"


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

    day = metric_selectors.local_day(store, now)
    summary = commerce_selectors.today_summary(store, day=day)

    assert day.last_week_start.date() == now.date() - timedelta(days=7)
    assert day.last_week_start.hour == 0
    assert (summary.yesterday_revenue, summary.yesterday_orders) == (Decimal("10.00"), 1)
    assert (summary.last_week_revenue, summary.last_week_orders) == (Decimal("1000.00"), 1)
