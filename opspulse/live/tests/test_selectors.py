from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from opspulse.alerts.models import AlertType
from opspulse.live import selectors
from opspulse.live.tests.factories import (
    AlertFactory,
    CartFactory,
    InventoryLevelFactory,
    MetricFactory,
    OrderFactory,
)
from opspulse.metrics.models import Granularity, MetricName

NEW_YORK = ZoneInfo("America/New_York")
# 14:30 in New York: the store's day began at 04:00 UTC.
NOW = datetime(2025, 10, 14, 14, 30, tzinfo=NEW_YORK)


@pytest.fixture
def day(store):
    return selectors.local_day(store, NOW)


def test_local_day_starts_at_midnight_in_the_stores_timezone(day):
    assert day.start == datetime(2025, 10, 14, tzinfo=NEW_YORK)
    assert day.end == datetime(2025, 10, 15, tzinfo=NEW_YORK)
    assert day.yesterday_start == datetime(2025, 10, 13, tzinfo=NEW_YORK)


def test_today_summary_reads_the_day_buckets_and_yesterday_up_to_now(store, day):
    MetricFactory(store=store, name=MetricName.REVENUE, granularity=Granularity.DAY, timestamp=day.start, value=Decimal("300.00"))
    MetricFactory(store=store, name=MetricName.ORDERS, granularity=Granularity.DAY, timestamp=day.start, value=4)
    OrderFactory(store=store, total=Decimal("50.00"), placed_at=datetime(2025, 10, 13, 9, 0, tzinfo=NEW_YORK))
    OrderFactory(store=store, total=Decimal("70.00"), placed_at=datetime(2025, 10, 13, 20, 0, tzinfo=NEW_YORK))

    summary = selectors.today_summary(store, day=day)

    assert summary.revenue == Decimal("300.00")
    assert summary.orders == 4
    assert summary.average_order_value == Decimal("75")
    assert summary.yesterday_revenue == Decimal("50.00")
    assert summary.yesterday_orders == 1


def test_today_summary_is_zero_without_buckets(store, day):
    summary = selectors.today_summary(store, day=day)

    assert summary.revenue == 0
    assert summary.orders == 0
    assert summary.average_order_value is None


def test_revenue_by_hour_is_cumulative_and_stops_at_now(store, day):
    for hour, value in ((9, "100.00"), (13, "50.00"), (14, "25.00")):
        MetricFactory(
            store=store,
            name=MetricName.REVENUE,
            granularity=Granularity.HOUR,
            timestamp=datetime(2025, 10, 14, hour, tzinfo=NEW_YORK),
            value=Decimal(value),
        )
    MetricFactory(
        store=store,
        name=MetricName.REVENUE,
        granularity=Granularity.HOUR,
        timestamp=datetime(2025, 10, 13, 22, tzinfo=NEW_YORK),
        value=Decimal("80.00"),
    )

    series = selectors.revenue_by_hour(store, day=day)
    today = dict(zip(series.hours, series.today))
    yesterday = dict(zip(series.hours, series.yesterday))

    assert series.now_hour == 14.5
    assert today[9.0] == 0
    assert today[10.0] == 100
    assert today[14.0] == 150
    assert today[14.5] == 175
    assert today[15.0] is None
    assert yesterday[22.0] == 0
    assert yesterday[23.0] == 80
    assert yesterday[24.0] == 80


def test_active_carts_counts_carts_updated_in_the_last_30_minutes(store, day):
    CartFactory(store=store, value=Decimal("40.00"), platform_updated_at=NOW - timedelta(minutes=5))
    CartFactory(store=store, value=Decimal("10.00"), platform_updated_at=NOW - timedelta(minutes=29))
    CartFactory(store=store, value=Decimal("99.00"), platform_updated_at=NOW - timedelta(minutes=31))

    carts = selectors.active_carts(store, day=day)

    assert carts.count == 2
    assert carts.value == Decimal("50.00")


def test_low_stock_uses_the_active_alert_threshold_fewest_first(store):
    AlertFactory(store=store, type=AlertType.LOW_STOCK, config={"threshold": 10})
    InventoryLevelFactory(store=store, title="Scarf", available=9)
    InventoryLevelFactory(store=store, title="Beanie", available=0)
    InventoryLevelFactory(store=store, title="Jacket", available=11)

    stock = selectors.low_stock(store)

    assert stock.threshold == 10
    assert [item.title for item in stock.items] == ["Beanie", "Scarf"]
    assert stock.total == 2


def test_low_stock_threshold_defaults_to_5_without_an_active_alert(store):
    AlertFactory(store=store, type=AlertType.LOW_STOCK, config={"threshold": 50}, is_active=False)
    InventoryLevelFactory(store=store, title="Mug", available=5)
    InventoryLevelFactory(store=store, title="Poster", available=6)

    stock = selectors.low_stock(store)

    assert stock.threshold == 5
    assert [item.title for item in stock.items] == ["Mug"]


def test_recent_orders_carry_only_what_the_feed_shows(store):
    OrderFactory(store=store, number="#1", placed_at=NOW - timedelta(hours=2))
    OrderFactory(store=store, number="#2", placed_at=NOW - timedelta(hours=1))

    orders = selectors.recent_orders(store)

    assert [order.number for order in orders] == ["#2", "#1"]
    assert set(vars(orders[0])) == {
        "external_id", "number", "total", "currency", "status", "first_name", "city", "placed_at",
    }


def test_recent_orders_are_limited_to_20(store):
    for _ in range(22):
        OrderFactory(store=store)

    assert len(selectors.recent_orders(store)) == 20
