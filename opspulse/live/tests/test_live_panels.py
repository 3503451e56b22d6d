"""What a dashboard receives live when orders change status, products sell and stock runs out."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from channels.db import database_sync_to_async
from django.utils import timezone

from opspulse.commerce.actions import StockData, apply_records, apply_stock_change, record_order
from opspulse.commerce.models import OrderStatus
from opspulse.live import hub
from tests.support.live import connect_and_read_panels, dashboard_socket, new_order, receive_until, socket_headers

pytestmark = [pytest.mark.anyio, pytest.mark.django_db(transaction=True)]


async def test_a_cancelled_order_turns_cancelled_in_the_feed_and_leaves_todays_revenue(store, owner_client,
                                                                                        live_listener):
    socket = dashboard_socket(store, socket_headers(owner_client))
    await connect_and_read_panels(socket)
    placed = new_order(9101, "80.00")
    await database_sync_to_async(record_order)(store=store, data=placed)
    await receive_until(socket, 'data-order-number="#9101"', "$80.00")

    # when the platform cancels it
    cancelled = replace(placed, status=OrderStatus.CANCELLED, updated_at=placed.updated_at + timedelta(minutes=3))
    await database_sync_to_async(record_order)(store=store, data=cancelled)
    frames = await receive_until(socket, '<li id="order-9101" hx-swap-oob="morph"', 'id="kpi-revenue"',
                                 'id="order-changes"')

    # then its row is morphed in place as cancelled, struck through, it is listed under
    # cancellations, and revenue drops back
    row = frames[frames.index('<li id="order-9101"'):]
    row = row[: row.index("</li>")]
    assert 'data-order-status="cancelled"' in row and "Cancelled" in row and "Not counted" in row
    assert 'id="voided-order-9101"' in frames
    revenue = frames[frames.index('id="kpi-revenue"'):]
    assert "$0.00" in revenue[: revenue.index("</p>", revenue.index("data-kpi-value"))]
    assert "Ines" in frames and "Porto" in frames
    await socket.disconnect()


async def test_best_sellers_follow_todays_orders_once_per_burst(store, owner_client, live_listener, monkeypatch):
    monkeypatch.setattr(hub, "SLOW_READ_SECONDS", 0.2)
    socket = dashboard_socket(store, socket_headers(owner_client))
    assert "No products sold yet today" in await connect_and_read_panels(socket)

    # a burst: three orders in one batch of the worker
    orders = [new_order(number, "12.00") for number in (9201, 9202, 9203)]
    await database_sync_to_async(apply_records)(store=store, records=orders)
    frames = await receive_until(socket, 'id="top-products"', ">3</span> <span")

    assert "Mug" in frames[frames.index('id="top-products"'):]
    # Read for the burst, not per order (a busy machine may split a burst over two reads).
    assert hub.hubs().hubs[store.pk].slow_reads < len(orders)
    await socket.disconnect()


async def test_an_item_that_sells_out_moves_from_low_stock_to_out_of_stock(store, owner_client, live_listener):
    now = timezone.now()
    await database_sync_to_async(apply_stock_change)(
        store=store, data=StockData(item_external_id="77", available=2, updated_at=now, title="Linen shirt"))
    socket = dashboard_socket(store, socket_headers(owner_client))
    html = await connect_and_read_panels(socket)
    assert "Nothing is out of stock" in html and "2 left" in html

    await database_sync_to_async(apply_stock_change)(
        store=store, data=StockData(item_external_id="77", available=0, updated_at=now + timedelta(seconds=5)))
    frames = await receive_until(socket, 'id="out-of-stock"', 'id="low-stock"')

    out_of_stock = frames[frames.index('id="out-of-stock"'):]
    assert "Linen shirt" in out_of_stock[: out_of_stock.index("</section>")]
    low_stock = frames[frames.index('id="low-stock"'):]
    assert "Linen shirt" not in low_stock[: low_stock.index("</section>")]
    await socket.disconnect()



async def test_a_refund_of_an_order_the_feed_no_longer_lists_shows_under_cancellations_and_refunds(
        store, owner_client, live_listener):
    placed = replace(new_order(9301, "150.00"), placed_at=timezone.now() - timedelta(days=2),
                     updated_at=timezone.now() - timedelta(days=2), customer_first_name="Olu")
    newer = [new_order(9400 + i, "5.00") for i in range(25)]
    await database_sync_to_async(apply_records)(store=store, records=[placed, *newer])
    socket = dashboard_socket(store, socket_headers(owner_client))
    html = await connect_and_read_panels(socket)
    assert "No cancellations or refunds" in html and '"#9301"' not in html

    refunded = replace(placed, status=OrderStatus.REFUNDED, updated_at=timezone.now())
    await database_sync_to_async(record_order)(store=store, data=refunded)
    frames = await receive_until(socket, 'id="order-changes"')

    panel = frames[frames.index('id="order-changes"'):]
    panel = panel[: panel.index("</section>")]
    assert 'data-voided-order="#9301"' in panel and "Refunded" in panel and "$150.00" in panel and "Olu" in panel
    await socket.disconnect()


def kpi_value(html: str, panel_id: str) -> str:
    panel = html[html.index(f'id="{panel_id}"'):]
    start = panel.index("data-kpi-value>") + len("data-kpi-value>")
    return panel[start:panel.index("</p>", start)]


def feed_row(html: str, number: int) -> str:
    row = html[html.index(f'<li id="order-{number}"'):]
    return row[: row.index("</li>")]


async def test_a_merchant_testing_checkout_sees_the_order_marked_test_and_no_sale(store, owner_client, live_listener):
    """A test order (Shopify's `test: true`) shows in the feed with a Test badge, live and
    on a fresh look, and leaves revenue, orders, best sellers and alerts as they were."""
    from opspulse.alerts.models import Alert, AlertEvent, AlertType

    await database_sync_to_async(Alert.objects.create)(
        store=store, type=AlertType.HIGH_VALUE_ORDER, config={"threshold": "10.00"}
    )
    socket = dashboard_socket(store, socket_headers(owner_client))
    await connect_and_read_panels(socket)

    await database_sync_to_async(record_order)(store=store, data=replace(new_order(9301, "80.00"), is_test=True))
    live = await receive_until(socket, 'data-order-number="#9301"')
    await socket.disconnect()
    fresh_socket = dashboard_socket(store, socket_headers(owner_client))
    fresh = await connect_and_read_panels(fresh_socket)
    await fresh_socket.disconnect()

    for html in (live, fresh):
        row = feed_row(html, 9301)
        assert '<span class="badge shrink-0" data-status="test"' in row and ">Test</span>" in row
        assert "Not counted: </span>$80.00" in row
    assert (kpi_value(fresh, "kpi-revenue"), kpi_value(fresh, "kpi-orders")) == ("$0.00", "0")
    assert "No products sold yet today" in fresh
    assert not await database_sync_to_async(AlertEvent.objects.exists)()
