"""A store's view: new orders and bucket values from live messages, without a read."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from opspulse.commerce import selectors as commerce_selectors
from opspulse.live import fragments
from opspulse.live.panels import (
    ALERTS,
    KPI_ORDERS_PER_CART,
    LOW_STOCK,
    ORDER_CHANGES,
    ORDER_FEED,
    OUT_OF_STOCK,
    SALES_PANELS,
    TOP_PRODUCTS,
)
from opspulse.live.store_view import StoreView, renewed
from opspulse.metrics import selectors as metric_selectors
from opspulse.metrics.buckets import bucket_start

NEW_YORK = ZoneInfo("America/New_York")
NOW = datetime(2025, 10, 14, 14, 30, tzinfo=NEW_YORK)


def local_day() -> metric_selectors.LocalDay:
    start = datetime(2025, 10, 14, tzinfo=NEW_YORK)
    return metric_selectors.LocalDay(
        now=NOW, start=start, end=datetime(2025, 10, 15, tzinfo=NEW_YORK),
        yesterday_start=datetime(2025, 10, 13, tzinfo=NEW_YORK),
    )


def feed_order(number: int, placed_at: datetime, status: str = "paid") -> commerce_selectors.FeedOrder:
    return commerce_selectors.FeedOrder(
        external_id=str(number), number=f"#{number}", total=Decimal("25.00"), currency="USD", status=status,
        first_name="Ada", city="Boston", placed_at=placed_at,
    )


def order_message(order: commerce_selectors.FeedOrder, kind: str = "new_order") -> dict:
    """What opspulse.commerce.actions publishes for a written order."""
    return {
        "type": kind, "order": order.external_id, "number": order.number, "status": order.status,
        "total": str(order.total), "currency": order.currency, "placed_at": order.placed_at.isoformat(),
        "first_name": order.first_name, "city": order.city,
    }


def view_with(feed: list[commerce_selectors.FeedOrder]) -> StoreView:
    summary = commerce_selectors.DaySummary(revenue=Decimal("100.00"), orders=4, yesterday_revenue=Decimal("80.00"),
                                   yesterday_orders=3)
    return StoreView(day=local_day(), summary=summary, hours={}, feed=list(feed))


def test_a_new_order_newer_than_the_feed_is_one_prepended_row():
    view = view_with([feed_order(2, NOW - timedelta(minutes=5)), feed_order(1, NOW - timedelta(minutes=9))])
    new = feed_order(3, NOW)

    change = view.apply([order_message(new)])

    assert change.rows == [("prepend", new)]
    # best sellers are read again: no message carries line items
    assert change.panels == set() and change.reread == {TOP_PRODUCTS}
    assert [order.number for order in view.feed] == ["#3", "#2", "#1"]


def test_the_feed_keeps_its_size_and_an_order_older_than_all_of_it_changes_nothing():
    feed = [feed_order(100 - i, NOW - timedelta(minutes=i + 1)) for i in range(commerce_selectors.FEED_SIZE)]
    view = view_with(feed)

    older = view.apply([order_message(feed_order(1, NOW - timedelta(hours=5)))])
    assert older.rows == [] and older.panels == set() and older.reread == {TOP_PRODUCTS}
    view.apply([order_message(feed_order(101, NOW))])

    assert len(view.feed) == commerce_selectors.FEED_SIZE
    assert view.feed[0].number == "#101" and feed[-1] not in view.feed


def test_an_order_placed_between_shown_ones_sends_the_whole_feed():
    view = view_with([feed_order(2, NOW - timedelta(minutes=1)), feed_order(1, NOW - timedelta(minutes=9))])

    change = view.apply([order_message(feed_order(3, NOW - timedelta(minutes=5)))])

    assert change.panels == {ORDER_FEED} and change.rows == []
    assert [order.number for order in view.feed] == ["#2", "#3", "#1"]


def test_the_first_order_of_the_day_sends_the_whole_feed_to_replace_its_empty_state():
    view = view_with([feed_order(1, NOW - timedelta(days=1))])

    change = view.apply([order_message(feed_order(2, NOW))])

    assert change.panels == {ORDER_FEED}


def test_a_shown_order_that_changes_is_one_row_and_the_same_message_again_changes_nothing():
    shown = feed_order(1, NOW - timedelta(minutes=1))
    view = view_with([shown])
    cancelled = feed_order(1, shown.placed_at, status="cancelled")

    change = view.apply([order_message(cancelled, "order_updated")])
    again = view.apply([order_message(cancelled, "order_updated")])

    assert change.rows == [("update", cancelled)]
    assert change.reread == {TOP_PRODUCTS, ORDER_CHANGES}
    assert not again
    assert view.feed == [cancelled]


def test_bucket_values_of_today_and_yesterday_update_the_kpis_and_chart_and_other_days_are_ignored():
    view = view_with([])
    hour = bucket_start(NOW, "hour", "America/New_York")
    day_start = local_day().start

    change = view.apply([{"type": "metric_update", "names": ["orders", "revenue"], "buckets": [
        ["revenue", "day", day_start.isoformat(), "125.00"],
        ["orders", "day", day_start.isoformat(), "5"],
        ["units_sold", "day", day_start.isoformat(), "9"],
        ["carts", "day", day_start.isoformat(), "8"],
        ["revenue", "hour", hour.isoformat(), "25.00"],
        ["revenue", "day", (day_start - timedelta(days=3)).isoformat(), "999.00"],
        ["revenue", "hour", (day_start - timedelta(days=3)).isoformat(), "999.00"],
    ]}])

    assert change.panels == SALES_PANELS
    assert (view.summary.revenue, view.summary.orders) == (Decimal("125.00"), 5)
    assert (view.summary.units, view.summary.carts) == (9, 8)
    assert view.hours == {hour: Decimal("25.00")}
    assert view.summary.yesterday_revenue == Decimal("80.00")


def test_a_cart_bucket_alone_updates_only_orders_per_cart():
    view = view_with([])

    change = view.apply([{"type": "metric_update", "names": ["carts"], "buckets": [
        ["carts", "day", local_day().start.isoformat(), "3"],
    ]}])

    assert change.panels == {KPI_ORDERS_PER_CART}
    assert view.summary.today.orders_per_cart == Decimal(4) / 3


def test_messages_without_the_data_mark_their_panels_for_a_read():
    view = view_with([])

    change = view.apply([
        {"type": "new_order", "order": "9", "number": "#9"},  # from a writer that sends no row
        {"type": "metric_update", "names": ["revenue"]},
        {"type": "inventory_update", "item": "1"},
        {"type": "alert_fired"},
    ])

    assert change.reread == SALES_PANELS | {
        ORDER_FEED, TOP_PRODUCTS, ORDER_CHANGES, LOW_STOCK,
        OUT_OF_STOCK, ALERTS,
    }
    assert change.panels == set() and change.rows == [] and view.feed == []


def test_a_read_renews_what_it_read_and_a_new_day_needs_a_whole_read():
    view = view_with([feed_order(1, NOW)])
    fresh = [feed_order(2, NOW)]

    assert renewed(view, local_day(), {"feed": fresh}) is view
    assert view.feed == fresh and view.feed is not fresh

    tomorrow = metric_selectors.LocalDay(now=NOW + timedelta(days=1), start=local_day().end,
                                  end=local_day().end + timedelta(days=1), yesterday_start=local_day().start)
    assert renewed(view, tomorrow, {"feed": []}) is None
    whole = renewed(view, tomorrow, {"feed": [], "hours": {}, "summary": view.summary})
    assert whole is not None and whole.day == tomorrow


def test_a_frame_with_more_new_orders_than_the_feed_keeps_carries_only_the_newest():
    from opspulse.stores.models import Store

    store = Store(name="Northwind", timezone="America/New_York", currency="USD")
    rows = [("prepend", feed_order(number, NOW + timedelta(seconds=number))) for number in range(1, 26)]

    html = fragments.render_feed_rows(store, view_with([]), rows)

    assert html.count("data-order-number=") == commerce_selectors.FEED_SIZE
    assert 'data-order-number="#25"' in html and 'data-order-number="#5"' not in html
