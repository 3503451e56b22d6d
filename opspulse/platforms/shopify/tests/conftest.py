"""A fake Shopify (opspulse.sim.fake_shopify, a real HTTP server) for the client's tests."""

from __future__ import annotations

import httpx
import pytest
from django.test import Client
from django.urls import reverse

from conftest import SHOPIFY_APP_CLIENT_ID as CLIENT_ID
from conftest import SHOPIFY_APP_CLIENT_SECRET as CLIENT_SECRET


@pytest.fixture
def shopify_app(settings, fake_shopify):
    """OpsPulse's settings for the app, with shops reached at the fake."""
    settings.SHOPIFY_CLIENT_ID = CLIENT_ID
    settings.SHOPIFY_CLIENT_SECRET = CLIENT_SECRET
    settings.SHOPIFY_SHOP_URL_TEMPLATE = f"{fake_shopify.url}/shops/{{shop}}"
    settings.PUBLIC_URL = "http://127.0.0.1:9"  # nothing listens: webhooks are not under test here
    # Calls closer together than Shopify allows, for the tests that are not about that
    # limit; those that are (test_call_slots, the bulk import) keep the real spacing.
    settings.SHOPIFY_CALL_SPACING_SECONDS = 0.05
    return fake_shopify


def create_shop(fake, domain: str, **fields) -> dict:
    body = {"domain": domain, "name": "Harbor Goods", "currency": "EUR", "timezone": "Europe/Paris", **fields}
    response = httpx.post(f"{fake.url}/_fake/shops", json=body, timeout=30)
    assert response.status_code in (200, 201), response.text
    return response.json()


def fake_get(fake, path: str) -> dict:
    return httpx.get(f"{fake.url}/_fake{path}", timeout=10).json()


def install(client: Client, shop: str, *, approve=None) -> httpx.URL | str:
    """Click "Add Shopify store", approve on the fake's install page, follow the callback.

    Return OpsPulse's answer to the callback.
    """
    started = client.post(reverse("shopify-connect"), {"shop": shop})
    assert started.status_code == 302, started
    approved = httpx.post(started.url, timeout=10)
    assert approved.status_code == 302, approved.text
    callback = httpx.URL(approved.headers["location"])
    if approve is not None:
        callback = approve(callback)
    return client.get(f"{callback.path}?{callback.query.decode()}")
