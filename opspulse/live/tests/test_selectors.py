from __future__ import annotations

import itertools
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from opspulse.alerts.models import AlertType
from opspulse.commerce import selectors as commerce_selectors
from opspulse.commerce.models import OrderStatus
from opspulse.live import selectors
from opspulse.metrics import selectors as metric_selectors
from opspulse.metrics.models import Granularity, MetricName
from tests.factories import (
    AlertFactory,
    CartFactory,
    InventoryLevelFactory,
    MetricFactory,
    OrderFactory,
)

NEW_YORK = ZoneInfo("America/New_York")
# 14:30 in New York: the store's day began at 04:00 UTC.
NOW = datetime(2025, 10, 14, 14, 30, tzinfo=NEW_YORK)


@pytest.fixture
def day(store):
    return metric_selectors.local_day(store, NOW)


def test_local_day_starts_at_midnight_in_the_stores_timezone(day):
    assert day.start == datetime(2025, 10, 14, tzinfo=NEW_YORK)
    assert day.end == datetime(2025, 10, 15, tzinfo=NEW_YORK)
    assert day.yesterday_start == datetime(2025, 10, 13, tzinfo=NEW_YORK)


def test_today_summary_reads_the_day_buckets_and_yesterday_up_to_now(store, day):
    MetricFactory(store=store, name=MetricName.REVENUE, granularity=Granularity.DAY, timestamp=day.start, value=Decimal("300.00"))
    MetricFactory(store=store, name=MetricName.ORDERS, granularity=Granularity.DAY, timestamp=day.start, value=4)
    OrderFactory(store=store, total=Decimal("50.00"), placed_at=datetime(2025, 10, 13, 9, 0, tzinfo=NEW_YORK))
    OrderFactory(store=store, total=Decimal("70.00"), placed_at=datetime(2025, 10, 13, 20, 0, tzinfo=NEW_YORK))

    summary = commerce_selectors.today_summary(store, day=day)

    assert summary.revenue == Decimal("300.00")
    assert summary.orders == 4
    assert summary.average_order_value == Decimal("75")
    assert summary.yesterday_revenue == Decimal("50.00")
    assert summary.yesterday_orders == 1


def test_today_summary_is_zero_without_buckets(store, day):
    summary = commerce_selectors.today_summary(store, day=day)

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

    series = metric_selectors.revenue_by_hour(store, day=day)
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

    carts = commerce_selectors.active_carts(store, day=day)

    assert carts.count == 2
    assert carts.value == Decimal("50.00")


def test_low_stock_uses_the_active_alert_threshold_fewest_first_and_out_of_stock_is_listed_apart(store):
    AlertFactory(store=store, type=AlertType.LOW_STOCK, config={"threshold": 10})
    InventoryLevelFactory(store=store, title="Scarf", available=9)
    InventoryLevelFactory(store=store, title="Gloves", available=1)
    InventoryLevelFactory(store=store, title="Beanie", available=0, platform_updated_at=NOW - timedelta(hours=2))
    InventoryLevelFactory(store=store, title="Parka", available=-2, platform_updated_at=NOW - timedelta(hours=1))
    InventoryLevelFactory(store=store, title="Jacket", available=11)

    stock = selectors.low_stock(store)
    sold_out = commerce_selectors.out_of_stock(store)

    assert stock.threshold == 10
    assert [item.title for item in stock.items] == ["Gloves", "Scarf"]
    assert stock.total == 2
    assert [item.title for item in sold_out.items] == ["Parka", "Beanie"]
    assert sold_out.total == 2


def test_low_stock_threshold_defaults_to_5_without_an_active_alert_for_every_item(store):
    AlertFactory(store=store, type=AlertType.LOW_STOCK, config={"threshold": 50}, is_active=False)
    # A rule for one SKU sets no threshold for the other items.
    AlertFactory(store=store, type=AlertType.LOW_STOCK, config={"threshold": 40, "sku": "POSTER-A2"})
    InventoryLevelFactory(store=store, title="Mug", available=5)
    InventoryLevelFactory(store=store, title="Poster", available=6)

    stock = selectors.low_stock(store)

    assert stock.threshold == 5
    assert [item.title for item in stock.items] == ["Mug"]


def test_recent_orders_carry_only_what_the_feed_shows(store):
    OrderFactory(store=store, number="#1", placed_at=NOW - timedelta(hours=2))
    OrderFactory(store=store, number="#2", placed_at=NOW - timedelta(hours=1))

    orders = commerce_selectors.recent_orders(store)

    assert [order.number for order in orders] == ["#2", "#1"]
    assert set(vars(orders[0])) == {
        "external_id", "number", "total", "currency", "status", "first_name", "city", "placed_at", "is_test",
    }


def test_recent_orders_are_limited_to_20(store):
    for _ in range(22):
        OrderFactory(store=store)

    assert len(commerce_selectors.recent_orders(store)) == 20


def test_today_summary_compares_units_and_carts_with_yesterday_and_last_week_up_to_now(store, day):
    for name, value in ((MetricName.REVENUE, "90.00"), (MetricName.ORDERS, 3), (MetricName.UNITS_SOLD, 7),
                        (MetricName.CARTS, 6)):
        MetricFactory(store=store, name=name, granularity=Granularity.DAY, timestamp=day.start, value=value)
    # yesterday: one order and two carts before 14:30, one order after
    OrderFactory(store=store, total=Decimal("20.00"), units=2, placed_at=datetime(2025, 10, 13, 9, tzinfo=NEW_YORK))
    OrderFactory(store=store, total=Decimal("99.00"), units=9, placed_at=datetime(2025, 10, 13, 15, tzinfo=NEW_YORK))
    for hour in (8, 10):
        CartFactory(store=store, platform_created_at=datetime(2025, 10, 13, hour, tzinfo=NEW_YORK))
    # last Tuesday: two orders before 14:30, a cancelled one not counted
    OrderFactory(store=store, total=Decimal("30.00"), units=1, placed_at=datetime(2025, 10, 7, 11, tzinfo=NEW_YORK))
    OrderFactory(store=store, total=Decimal("50.00"), units=4, placed_at=datetime(2025, 10, 7, 14, tzinfo=NEW_YORK))
    OrderFactory(store=store, status="cancelled", counted_revenue=0, counted_units=0, counted_orders=0,
                 placed_at=datetime(2025, 10, 7, 12, tzinfo=NEW_YORK))
    CartFactory(store=store, platform_created_at=datetime(2025, 10, 7, 13, tzinfo=NEW_YORK))

    summary = commerce_selectors.today_summary(store, day=day)

    assert summary.today == commerce_selectors.Totals(Decimal("90.00"), 3, 7, 6)
    assert summary.today.orders_per_cart == Decimal("0.5")
    assert summary.yesterday == commerce_selectors.Totals(Decimal("20.00"), 1, 2, 2)
    assert summary.last_week == commerce_selectors.Totals(Decimal("80.00"), 2, 5, 1)
    assert summary.last_week.average_order_value == Decimal("40")


def test_top_products_ranks_todays_counted_units_and_leaves_out_cancelled_orders(store, day):
    from opspulse.commerce import actions

    versions = itertools.count(1)

    def order(number, items, *, status=OrderStatus.PAID, placed_at=NOW - timedelta(hours=1)):
        return actions.OrderData(
            external_id=str(number), number=f"#{number}", status=status, currency="USD",
            total=sum((Decimal(price) * quantity for _, _, quantity, price in items), Decimal(0)),
            placed_at=placed_at, updated_at=placed_at + timedelta(seconds=next(versions)),
            line_items=[
                actions.LineItemData(external_id=str(index), product_external_id=product, title=title,
                                     quantity=quantity, price=Decimal(price))
                for index, (product, title, quantity, price) in enumerate(items)
            ],
        )

    scarves = [("2", "Scarf", 9, "15.00")]
    actions.apply_records(store=store, records=[
        order(1, [("1", "Linen shirt", 2, "40.00"), ("2", "Scarf", 1, "15.00")]),
        order(2, [("1", "Linen shirt", 5, "40.00"), ("", "Gift wrap", 3, "2.00")]),
        order(3, scarves),
        # before the store's midnight: yesterday's
        order(4, scarves, placed_at=day.start - timedelta(minutes=1)),
    ])
    # Later: order 2 loses four shirts, order 3 is cancelled, a refund line of -1 counts nothing.
    actions.apply_records(store=store, records=[
        order(2, [("1", "Linen shirt", 1, "40.00"), ("", "Gift wrap", 3, "2.00"), ("3", "Belt", -1, "20.00")]),
        order(3, scarves, status=OrderStatus.CANCELLED),
    ])

    products = metric_selectors.top_products(store, day=day)

    assert [(p.title, p.units, p.revenue) for p in products] == [
        ("Linen shirt", 3, Decimal("120.00")),
        ("Gift wrap", 3, Decimal("6.00")),
        ("Scarf", 1, Decimal("15.00")),
    ]
    yesterday = metric_selectors.local_day(store, day.start - timedelta(hours=2))
    assert [(p.title, p.units) for p in metric_selectors.top_products(store, day=yesterday)] == [("Scarf", 9)]


def test_top_products_show_a_renamed_products_latest_title(store, day):
    from opspulse.commerce import actions

    placed = NOW - timedelta(hours=1)
    actions.apply_records(store=store, records=[
        actions.OrderData(
            external_id=str(number), number=f"#{number}", status=OrderStatus.PAID, currency="USD",
            total=Decimal("40.00"), placed_at=placed + timedelta(minutes=number),
            updated_at=placed + timedelta(minutes=number),
            line_items=[actions.LineItemData(external_id="1", product_external_id="1", title=title,
                                             quantity=1, price=Decimal("40.00"))],
        )
        for number, title in ((1, "Linen shirt"), (2, "Linen shirt, natural"))
    ])

    assert [(p.title, p.units) for p in metric_selectors.top_products(store, day=day)] == [("Linen shirt, natural", 2)]


def test_daily_series_reads_the_day_buckets_by_local_date_with_the_period_before(store):
    for date_, value in (((2025, 10, 14), "10.00"), ((2025, 10, 12), "30.00"), ((2025, 10, 9), "7.00"),
                         ((2025, 10, 8), "99.00")):
        MetricFactory(store=store, name=MetricName.REVENUE, granularity=Granularity.DAY,
                      timestamp=datetime(*date_, tzinfo=NEW_YORK), value=Decimal(value))
    MetricFactory(store=store, name=MetricName.ORDERS, granularity=Granularity.DAY,
                  timestamp=datetime(2025, 10, 14, tzinfo=NEW_YORK), value=2)

    series = metric_selectors.daily_series(store, first=date(2025, 10, 12), last=date(2025, 10, 14))

    assert series.days == [date(2025, 10, 12), date(2025, 10, 13), date(2025, 10, 14)]
    assert series.revenue == [Decimal("30.00"), 0, Decimal("10.00")]
    assert series.orders == [0, 0, 2]
    assert series.previous_days == [date(2025, 10, 9), date(2025, 10, 10), date(2025, 10, 11)]
    assert series.previous_revenue == [Decimal("7.00"), 0, 0]


def test_daily_series_refuses_a_range_longer_than_366_days(store):
    with pytest.raises(ValueError):
        metric_selectors.daily_series(store, first=date(2024, 1, 1), last=date(2025, 1, 1))


def test_recent_voided_orders_lists_cancellations_and_refunds_latest_change_first(store, day):
    OrderFactory(store=store, number="#1", status="refunded", placed_at=NOW - timedelta(days=3),
                 platform_updated_at=NOW - timedelta(minutes=5))
    OrderFactory(store=store, number="#2", status="cancelled", placed_at=NOW - timedelta(hours=1),
                 platform_updated_at=NOW - timedelta(minutes=50))
    OrderFactory(store=store, number="#3", status="paid", placed_at=NOW - timedelta(hours=1))
    OrderFactory(store=store, number="#4", status="cancelled", placed_at=NOW - timedelta(days=9),
                 platform_updated_at=NOW - timedelta(minutes=1))

    voided = commerce_selectors.recent_voided_orders(store, day=day)

    assert [(v.order.number, v.order.status) for v in voided] == [("#1", "refunded"), ("#2", "cancelled")]
    assert voided[0].changed_at == NOW - timedelta(minutes=5)
