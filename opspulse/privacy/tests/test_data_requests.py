from __future__ import annotations

from django.test import Client
from django.urls import reverse


def data_requests_page(store, user) -> str:
    client = Client()
    client.force_login(user)
    return client.get(reverse("store-data-requests", args=[store.public_id])).content.decode()


def test_a_shopify_stores_data_requests_page_says_they_came_through_shopify(shopify_store, personas):
    page = data_requests_page(shopify_store, personas["alice"])

    assert "who asked, through Shopify, for the data OpsPulse holds about them" in page


def test_a_woocommerce_stores_data_requests_page_names_woocommerce_not_shopify(woo_store, personas):
    page = data_requests_page(woo_store, personas["alice"])

    assert "WooCommerce does not pass its customers' data requests on to OpsPulse" in page
    assert "Shopify" not in page
