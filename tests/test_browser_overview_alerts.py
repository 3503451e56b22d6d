"""The overview's alerts in a real browser, from a phone to a 4K TV: beside the store tiles
on wide screens (the first row of tiles stays above the fold), below them on a phone, and a high-value
order from a signed webhook shows up there without a reload."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.factories import AlertEventFactory, AlertFactory
from tests.support.browser import SCREENSHOTS, VIEWPORTS
from tests.support.stores import SHOPIFY_SECRET, make_store
from tests.support.webhooks import post_shopify, shopify_order

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LAYOUT = """() => {
  const box = e => e.getBoundingClientRect();
  const tile = box(document.querySelector('[data-store-tile]'));
  const alerts = box(document.getElementById('overview-alerts'));
  return {
    overflow: document.documentElement.scrollWidth > window.innerWidth,
    firstTileBottom: tile.bottom, tileRight: tile.right, lastTileBottom: Math.max(
      ...[...document.querySelectorAll('[data-store-tile]')].map(e => box(e).bottom)),
    alertsLeft: alerts.left, alertsTop: alerts.top, height: window.innerHeight,
  };
}"""


@pytest.fixture
def four_stores(shopify_store, personas):
    """Alice's account with four stores, some with alerts, and a high-value rule on the first."""
    stores = [shopify_store] + [
        make_store(personas["account"], platform="shopify", domain=f"{name}.myshopify.com", secret=SHOPIFY_SECRET)
        for name in ("bright-basics", "coastal-candles", "denim-depot")
    ]
    AlertFactory(store=shopify_store, type="high_value_order", config={"threshold": "50.00", "window_minutes": 60})
    for store, message in zip(stores[1:], ("Only 2 left of Linen shirt", "Only 1 left of Sea salt candle",
                                          "Only 3 left of Raw selvedge jeans, size 32/34"), strict=True):
        AlertEventFactory(alert=AlertFactory(store=store), message=message)
    return stores


def test_the_overviews_alerts_fit_every_screen_and_show_a_new_alert_live(
    web, worker, four_stores, alice_browser  # noqa: F811
):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    console_errors: list[str] = []
    page = alice_browser.new_page()
    page.on("console", lambda message: message.type == "error" and console_errors.append(message.text))
    for viewport in VIEWPORTS:
        page.set_viewport_size(viewport)
        page.goto(f"{web.url}/")
        page.wait_for_selector("#live-status[data-state='live']", timeout=10_000)
        layout = page.evaluate(LAYOUT)

        assert not layout["overflow"], (viewport, layout)
        # The first row of tiles is on screen without scrolling.
        assert layout["firstTileBottom"] <= layout["height"], (viewport, layout)
        if viewport["width"] >= 1024:
            assert layout["alertsLeft"] >= layout["tileRight"], (viewport, layout)
        else:
            assert layout["alertsTop"] >= layout["lastTileBottom"], (viewport, layout)
        page.screenshot(path=str(SCREENSHOTS / f"overview-alerts-{viewport['width']}.png"), full_page=True)

    page.set_viewport_size(VIEWPORTS[1])
    page.goto(f"{web.url}/")
    page.wait_for_selector("#live-status[data-state='live']", timeout=10_000)
    assert page.inner_text("#overview-alerts [data-unacknowledged]").startswith("3")

    order = shopify_order(5001, at=datetime.now(UTC), currency="EUR")
    assert post_shopify(web.url, four_stores[0], "orders/create", order).status_code == 200

    page.wait_for_function(
        "() => document.getElementById('overview-alerts').innerText.includes('High-value order #1001')", timeout=10_000
    )
    newest = page.locator("#overview-alerts li").first
    assert four_stores[0].name in newest.inner_text()
    assert page.inner_text("#overview-alerts [data-unacknowledged]").startswith("4")
    page.screenshot(path=str(SCREENSHOTS / "overview-alerts-live.png"))
    assert console_errors == []
