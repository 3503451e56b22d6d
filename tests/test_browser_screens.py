"""The store dashboard, the all-stores overview and a shared wallboard in a real browser:
one signed webhook shows up on all three without a reload, and revoking the wallboard's
link ends it on screen. A screenshot of each page is kept in test-results/screenshots/."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from tests.support.processes import ROOT, WebServer, free_port
from tests.support.webhooks import post_shopify, shopify_order

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCREENSHOTS = ROOT / "test-results" / "screenshots"


@pytest.fixture
def wallboard_token(shopify_store, personas):
    from opspulse.live import share

    _, token = share.create_wallboard_link(store=shopify_store, created_by=personas["alice"], label="Shop floor")
    return token


def test_a_new_order_shows_live_on_the_dashboard_the_overview_and_a_shared_wallboard(
    web, worker, shopify_store, wallboard_token, alice_browser  # noqa: F811
):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    console_errors: list[str] = []
    dashboard = alice_browser.new_page()
    overview = alice_browser.new_page()
    # Nobody is signed in where the wallboard runs: it has only its link.
    wall_context = alice_browser.browser.new_context(viewport={"width": 1920, "height": 1080})
    wallboard = wall_context.new_page()
    for page in (dashboard, overview, wallboard):
        # Warnings too: a page that cannot apply a patch says so (and asks for the panel whole).
        page.on("console", lambda message: message.type in ("error", "warning") and console_errors.append(message.text))

    dashboard.goto(f"{web.url}/stores/{shopify_store.public_id}/")
    overview.goto(f"{web.url}/")
    wallboard.goto(f"{web.url}/wall/{wallboard_token}/")
    for page in (dashboard, overview, wallboard):
        page.wait_for_selector("#live-status[data-state='live']", timeout=10_000)
    tile = f"#store-tile-{shopify_store.public_id}"
    assert "€0.00" in overview.inner_text(tile)

    order = shopify_order(5001, at=datetime.now(UTC))
    assert post_shopify(web.url, shopify_store, "orders/create", order).status_code == 200

    dashboard.wait_for_selector('#order-feed [data-order-number="#1001"]', timeout=10_000)
    # The daily chart's bar for today and its totals follow the live revenue.
    dashboard.wait_for_function(
        "() => document.querySelector('[data-daily-total]').innerText.includes('62.50')", timeout=10_000
    )
    assert dashboard.locator("[data-daily-empty]").count() == 0
    overview.wait_for_function(f"() => document.querySelector('{tile}').innerText.includes('€62.50')", timeout=10_000)
    wallboard.wait_for_selector('#wb-feed [data-order-number="#1001"]', timeout=10_000)
    wallboard.wait_for_function("() => document.querySelector('#wb-revenue').innerText.includes('€62.50')", timeout=10_000)

    assert "€62.50" in overview.inner_text('[data-currency-total="EUR"]')
    wall_text = wallboard.inner_text("body")
    assert "Ada" not in wall_text and "Lyon" not in wall_text and "Lovelace" not in wall_text
    assert wallboard.url.endswith(f"/wall/{wallboard_token}/")  # no reload, no sign-in
    dashboard.screenshot(path=str(SCREENSHOTS / "dashboard.png"), full_page=True)
    overview.screenshot(path=str(SCREENSHOTS / "overview.png"), full_page=True)
    wallboard.screenshot(path=str(SCREENSHOTS / "wallboard.png"))

    # The next order changes figures in place: each screen patches them.
    second = shopify_order(5002, at=datetime.now(UTC))
    assert post_shopify(web.url, shopify_store, "orders/create", second).status_code == 200
    dashboard.wait_for_function("() => document.querySelector('#kpi-revenue').innerText.includes('125.00')",
                                timeout=10_000)
    overview.wait_for_function(f"() => document.querySelector('{tile}').innerText.includes('€125.00')", timeout=10_000)
    wallboard.wait_for_function("() => document.querySelector('#wb-revenue').innerText.includes('€125.00')",
                                timeout=10_000)
    assert "€125.00" in overview.inner_text('[data-currency-total="EUR"]')
    assert "2" in wallboard.inner_text("#wb-orders")

    # The owner revokes the link: the screen using it says so at once.
    dashboard.goto(f"{web.url}/stores/{shopify_store.public_id}/wallboard/links/")
    dashboard.click("[data-link] button:has-text('Revoke')")
    wallboard.wait_for_selector("[data-ended-notice]:visible", timeout=10_000)
    assert "This link no longer works" in wallboard.inner_text("#live-status")
    wall_context.close()
    assert console_errors == []


def test_a_wallboard_whose_server_went_away_reconnects_and_shows_what_it_missed(
    web, worker, process_logs, shopify_store, wallboard_token, alice_browser  # noqa: F811
):
    import httpx

    port = free_port()
    screen_server = WebServer(process_logs, "web-wallboard", port=port)
    try:
        wall_context = alice_browser.browser.new_context(viewport={"width": 1920, "height": 1080})
        wallboard = wall_context.new_page()
        wallboard.goto(f"{screen_server.url}/wall/{wallboard_token}/")
        wallboard.wait_for_selector("#live-status[data-state='live']", timeout=10_000)

        # The web process the screen talks to goes away (a deploy, a crash).
        screen_server.stop()
        wallboard.wait_for_selector("#live-status[data-state='reconnecting']", timeout=10_000)

        # Meanwhile an order arrives through another web process and is processed.
        order = shopify_order(5002, at=datetime.now(UTC))
        assert post_shopify(web.url, shopify_store, "orders/create", order).status_code == 200
        deadline = datetime.now(UTC).timestamp() + 15
        while '"#1002"' not in httpx.get(f"{web.url}/wall/{wallboard_token}/", timeout=5).text:
            assert datetime.now(UTC).timestamp() < deadline, "the order was not processed"
            time.sleep(0.2)

        # The server comes back on the same address: the screen reconnects by itself and
        # shows the order it missed, without a reload.
        screen_server = WebServer(process_logs, "web-wallboard-again", port=port)
        wallboard.wait_for_selector("#live-status[data-state='live']", timeout=30_000)
        wallboard.wait_for_selector('#wb-feed [data-order-number="#1002"]', timeout=10_000)
        assert wallboard.url.endswith(f"/wall/{wallboard_token}/")
        wall_context.close()
    finally:
        screen_server.stop()
