"""A store's settings on a phone: disconnecting it, then deleting it after typing its name."""

from __future__ import annotations

import pytest

from tests.support.browser import chromium, session_of

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def fits_the_screen(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def test_an_owner_disconnects_then_deletes_a_store_on_a_phone(web, personas, shopify_store, woo_store):
    with chromium(width=390, height=844, signed_in=(web.url, session_of(personas["alice"]))) as context:
        page = context.new_page()
        page.goto(f"{web.url}/stores/{shopify_store.public_id}/")
        page.click("text=Store settings")
        page.wait_for_selector("h1:has-text('Store settings')")
        assert fits_the_screen(page)

        page.click("text=Disconnect store")
        banner = page.wait_for_selector("[data-store-disconnected]")
        assert "Disconnected on" in banner.inner_text()
        # Its socket still connects, but nothing on the page is live any more.
        page.wait_for_selector("#live-status[data-state='history']", timeout=10_000)
        assert page.inner_text("#live-status").strip() == "History only"
        assert "is disconnected" in page.inner_text("body")
        assert fits_the_screen(page)

        page.goto(f"{web.url}/stores/{shopify_store.public_id}/settings/")
        page.fill("#confirm-store-name", "alice-apparel")
        page.click("text=Delete store")
        error = page.wait_for_selector("[data-delete-error]")
        assert "not the store's name" in error.inner_text()
        assert fits_the_screen(page)

        page.fill("#confirm-store-name", shopify_store.name)
        page.click("text=Delete store")
        page.wait_for_url(f"{web.url}/")
        body = page.inner_text("body")
        assert f"{shopify_store.name} and all its data were deleted." in body
        assert woo_store.name in body
        assert page.locator(f"a[href='/stores/{shopify_store.public_id}/']").count() == 0
