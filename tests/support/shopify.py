"""Shops on the fake Shopify (opspulse.sim.fake_shopify), and installing OpsPulse's app on them."""

from __future__ import annotations

import httpx
from django.test import Client
from django.urls import reverse

from tests.support.stores import SHOPIFY_APP_CLIENT_ID, SHOPIFY_APP_CLIENT_SECRET


def app_env(fake) -> dict[str, str]:
    """The environment of OpsPulse processes that serve the app, with shops at the fake."""
    return {
        "SHOPIFY_CLIENT_ID": SHOPIFY_APP_CLIENT_ID, "SHOPIFY_CLIENT_SECRET": SHOPIFY_APP_CLIENT_SECRET,
        "SHOPIFY_SHOP_URL_TEMPLATE": f"{fake.url}/shops/{{shop}}",
    }


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
