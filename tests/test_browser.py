"""The live dashboard in a real browser: a signed webhook shows up without a reload."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from opspulse.sim.payloads import LineSpec
from tests.support.webhooks import MUG, TEE, post_shopify, shopify_order

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

def test_new_order_appears_on_the_open_dashboard(web, worker, shopify_store, alice_browser):
    dashboard_url = f"{web.url}/stores/{shopify_store.public_id}/"
    page = alice_browser.new_page()
    console_errors: list[str] = []
    page.on("console", lambda message: message.type == "error" and console_errors.append(message.text))
    page.goto(dashboard_url)
    page.wait_for_selector("#live-status:has-text('Live')", timeout=10_000)
    revenue_before = page.inner_text("#kpi-revenue")
    assert page.locator('[data-order-number="#1001"]').count() == 0

    sent_at = time.monotonic()
    # Placed now, so that it counts in the store's "today", whatever the time of day.
    order = shopify_order(5001, at=datetime.now(UTC))
    assert post_shopify(web.url, shopify_store, "orders/create", order).status_code == 200
    page.wait_for_selector('#order-feed [data-order-number="#1001"]', timeout=10_000)
    seen_after = time.monotonic() - sent_at
    page.wait_for_function(
        "before => document.querySelector('#kpi-revenue').innerText !== before", arg=revenue_before, timeout=10_000
    )

    assert page.url == dashboard_url  # no reload, no navigation
    assert "62.50" in page.inner_text("#kpi-revenue")
    feed_row = page.inner_text('[data-order-number="#1001"]')
    assert "Ada" in feed_row and "Lyon" in feed_row
    assert "Lovelace" not in page.content()

    # The next order is prepended to the feed as one row; a cancellation changes its row in place.
    second = shopify_order(5002, at=datetime.now(UTC))
    assert post_shopify(web.url, shopify_store, "orders/create", second).status_code == 200
    page.wait_for_selector('#order-feed-today > [data-order-number="#1002"]:first-child', timeout=10_000)
    page.wait_for_function("() => document.querySelector('#kpi-orders [data-kpi-value]').innerText.trim() === '2'",
                           timeout=10_000)
    cancelled = shopify_order(5002, at=datetime.fromisoformat(second["created_at"]), minutes=1,
                              cancelled_at=datetime.now(UTC), financial_status="voided")
    assert post_shopify(web.url, shopify_store, "orders/updated", cancelled).status_code == 200
    page.wait_for_function(
        "() => /cancel/i.test(document.querySelector('[data-order-number=\"#1002\"]').innerText)", timeout=10_000)
    page.wait_for_function("() => document.querySelector('#kpi-orders [data-kpi-value]').innerText.trim() === '1'",
                           timeout=10_000)
    assert page.locator("#order-feed [data-order-number]").count() == 2
    assert console_errors == []
    print(f"order visible {seen_after * 1000:.0f} ms after the webhook was sent")


PEPPER = LineSpec(line_id=3, product_id=103, variant_id=1003, sku="SP-01", title='Salt & Pepper <Deluxe> "set"',
                  quantity=1, price=Decimal("19.90"))

# What a merchant reads on the dashboard's figures, best sellers and chart (the chart's
# points at whole hours: its point for "now" moves with the clock).
LIVE_PANELS = """() => {
  const text = (id) => document.getElementById(id).innerText.replace(/\\s+/g, " ").trim();
  const kpis = ["kpi-revenue", "kpi-orders", "kpi-aov", "kpi-units", "kpi-orders-per-cart"];
  const chart = JSON.parse(document.getElementById("revenue-chart").dataset.chart);
  const wholeHours = chart.x.flatMap((x, i) => (Number.isInteger(x) ? [[x, chart.today[i], chart.yesterday[i]]] : []));
  return {
    kpis: kpis.map((id) => [text(id), document.getElementById(id).dataset.kpiRaw ?? null]),
    topProducts: text("top-products"),
    bars: [...document.querySelectorAll("#top-products svg rect:last-child")].map((bar) => bar.getAttribute("width")),
    chartLegend: text("revenue-chart"),
    chartLabel: document.querySelector("#revenue-chart [data-chart-mount]").getAttribute("aria-label"),
    chartToday: Math.max(...chart.today.filter((value) => value !== null)),
    chartHours: wholeHours,
  };
}"""


def test_after_several_orders_the_live_panels_show_what_a_fresh_page_shows(web, worker, shopify_store, alice_browser):
    dashboard_url = f"{web.url}/stores/{shopify_store.public_id}/"
    page = alice_browser.new_page()
    complaints: list[str] = []
    page.on("console", lambda message: message.type in ("error", "warning") and complaints.append(message.text))
    received: list[str] = []
    sent: list[str] = []

    def watch(socket) -> None:
        socket.on("framereceived", lambda payload: received.append(payload if isinstance(payload, str) else ""))
        socket.on("framesent", lambda payload: sent.append(str(payload)))

    page.on("websocket", watch)
    page.goto(dashboard_url)
    page.wait_for_selector("#live-status:has-text('Live')", timeout=10_000)

    def place(order_id: int, items: list[LineSpec]) -> None:
        order = shopify_order(order_id, at=datetime.now(UTC), items=items)
        assert post_shopify(web.url, shopify_store, "orders/create", order).status_code == 200
        page.wait_for_selector(f'#order-feed [data-order-number="#{order_id - 4000}"]', timeout=10_000)

    # Three best sellers, one of them named with characters HTML escapes.
    for order_id, items in ((5001, [TEE, MUG]), (5002, [PEPPER]), (5003, [MUG, PEPPER])):
        place(order_id, items)
    page.wait_for_function("() => document.querySelectorAll('#top-products li').length === 3", timeout=15_000)
    # More of the same products: the figures, the ranks and the bars change, nothing else.
    for order_id, items in ((5004, [PEPPER]), (5005, [TEE, PEPPER]), (5006, [PEPPER, MUG])):
        place(order_id, items)
    page.wait_for_function(
        "() => document.querySelector('#kpi-orders [data-kpi-value]').innerText.trim() === '6'", timeout=10_000)

    fresh = alice_browser.new_page()
    fresh.goto(dashboard_url)
    expected = fresh.evaluate(LIVE_PANELS)
    assert 'Salt & Pepper <Deluxe> "set"' in expected["topProducts"]
    # The best sellers are read again within seconds of an order, the chart within two.
    page.wait_for_function(f"expected => JSON.stringify(({LIVE_PANELS})()) === JSON.stringify(expected)",
                           arg=expected, timeout=15_000)

    patches = [json.loads(frame.partition("\n")[0])["patch"] for frame in received if frame.startswith("{")]
    patched = set().union(*patches) if patches else set()
    assert {"kpi-revenue", "kpi-orders", "revenue-chart", "top-products"} <= patched
    assert not [message for message in sent if "resync" in message]
    assert complaints == []
