"""The live dashboard in a real browser: a signed webhook shows up without a reload."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from tests.support.webhooks import post_shopify, shopify_order

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
