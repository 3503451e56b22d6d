"""Connecting a Shopify store in a real browser, through the fake Shopify's OAuth pages,
then watching one of its orders arrive by webhook on the new store's dashboard."""

from __future__ import annotations

import httpx
import pytest

from tests.support.browser import chromium, session_of
from tests.support.processes import WebServer, Worker, free_port
from tests.support.stores import SHOPIFY_APP_CLIENT_ID, SHOPIFY_APP_CLIENT_SECRET

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SHOP = "harbor-goods.myshopify.com"


@pytest.fixture
def shopify_web(django_db_setup, process_logs, fake_shopify):
    port = free_port()
    server = WebServer(
        process_logs, "web-shopify-install", port=port,
        PUBLIC_URL=f"http://127.0.0.1:{port}",
        SHOPIFY_CLIENT_ID=SHOPIFY_APP_CLIENT_ID,
        SHOPIFY_CLIENT_SECRET=SHOPIFY_APP_CLIENT_SECRET,
        SHOPIFY_SHOP_URL_TEMPLATE=f"{fake_shopify.url}/shops/{{shop}}",
    )
    yield server
    server.stop()


@pytest.fixture
def shopify_worker(django_db_setup, process_logs):
    process = Worker(process_logs, "worker-shopify-install")
    yield process
    process.stop()


def test_an_owner_connects_a_shopify_store_and_sees_its_next_order_live(
    fake_shopify, shopify_web, shopify_worker, personas
):
    created = httpx.post(
        f"{fake_shopify.url}/_fake/shops",
        json={"domain": SHOP, "name": "Harbor Goods", "currency": "EUR", "timezone": "Europe/Paris"},
        timeout=30,
    )
    assert created.status_code in (200, 201)
    signed_in = (shopify_web.url, session_of(personas["alice"]))
    with chromium(width=1280, height=900, signed_in=signed_in) as context:
        page = context.new_page()
        console_errors: list[str] = []
        page.on(  # OpsPulse's pages only: the fake Shopify's own page has no favicon
            "console",
            lambda message: message.type == "error" and page.url.startswith(shopify_web.url)
            and console_errors.append(message.text),
        )

        page.goto(f"{shopify_web.url}/")
        page.fill('input[name="shop"]', "harbor-goods")
        page.click("text=Add Shopify store")
        page.wait_for_selector("text=Install app")  # Shopify's page, with the shop and the scopes
        assert "read_orders" in page.content()
        page.click("button:has-text('Install')")
        page.wait_for_url(f"{shopify_web.url}/stores/**")
        page.wait_for_selector("#live-status:has-text('Live')", timeout=10_000)
        assert "Harbor Goods" in page.inner_text("h1")
        assert "EUR" in page.inner_text("main") and "Europe/Paris" in page.inner_text("main")
        assert "is connected" in page.inner_text("main")

        order = httpx.post(f"{fake_shopify.url}/_fake/shops/{SHOP}/orders", json={}, timeout=10).json()
        page.wait_for_selector(f'#order-feed [data-order-number="{order["name"]}"]', timeout=15_000)

        assert console_errors == []
