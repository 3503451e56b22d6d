from __future__ import annotations

import json
from pathlib import Path

from django.urls import reverse

from opspulse.live import fragments
from opspulse.live.tests.factories import OrderFactory
from opspulse.platforms.registry import handler_for

SHOPIFY_FIXTURES = Path(__file__).resolve().parents[2] / "platforms" / "shopify" / "fixtures"


def test_dashboard_returns_404_to_an_outsider(store, outsider_client):
    response = outsider_client.get(reverse("dashboard", args=[store.public_id]))

    assert response.status_code == 404


def test_dashboard_renders_every_panel_for_a_member(store, owner_client):
    response = owner_client.get(reverse("dashboard", args=[store.public_id]))

    assert response.status_code == 200
    html = response.content.decode()
    for panel_id in (*fragments.PANEL_IDS, "live-status"):
        assert f'id="{panel_id}"' in html
    assert f'ws-connect="/ws/stores/{store.public_id}/"' in html
    assert "hx-swap-oob" not in html
    assert "Northwind Outfitters" in html


def test_dashboard_sends_anonymous_visitors_to_sign_in(store, client):
    response = client.get(reverse("dashboard", args=[store.public_id]))

    assert response.status_code == 302
    assert response.url.startswith(reverse("account_login"))


def test_dashboard_has_no_inline_scripts(store, owner_client):
    html = owner_client.get(reverse("dashboard", args=[store.public_id])).content.decode()

    assert "<script>" not in html
    assert "onclick=" not in html
    assert html.count("<script") == 1  # the bundle, loaded from static


def test_panels_snapshot_returns_out_of_band_fragments_to_a_member(store, owner_client):
    OrderFactory(store=store, number="#1201")

    response = owner_client.get(reverse("dashboard-panels", args=[store.public_id]))

    assert response.status_code == 200
    html = response.content.decode()
    assert html.count('hx-swap-oob="morph"') == len(fragments.PANEL_IDS)
    assert 'data-order-number="#1201"' in html


def test_panels_snapshot_returns_404_to_an_outsider(store, outsider_client):
    response = outsider_client.get(reverse("dashboard-panels", args=[store.public_id]))

    assert response.status_code == 404


def test_feed_shows_an_order_with_currency_status_first_name_and_city(store, owner_client):
    OrderFactory(store=store, number="#1300", total="1234.50", customer_first_name="Maya", customer_city="Lisbon")

    html = owner_client.get(reverse("dashboard", args=[store.public_id])).content.decode()

    assert 'data-order-number="#1300"' in html
    assert "$1,234.50" in html
    assert "Maya" in html
    assert "Lisbon" in html
    assert "Paid" in html


def test_feed_never_contains_the_customers_last_name_or_email(store, owner_client):
    # given an order as Shopify sends it, with the customer's full name and email
    payload = json.loads((SHOPIFY_FIXTURES / "orders_create.json").read_text())
    handler_for("shopify", "orders/create")(store, payload)

    # when the dashboard and the pushed panels are rendered
    page = owner_client.get(reverse("dashboard", args=[store.public_id])).content.decode()
    pushed = owner_client.get(reverse("dashboard-panels", args=[store.public_id])).content.decode()

    # then the order is there by first name and city only
    assert 'data-order-number="#1042"' in page
    assert "Olivia" in page
    for html in (page, pushed):
        assert "Nguyen" not in html
        assert "olivia.nguyen@example.com" not in html
        assert "@example.com" not in html.replace("owner@example.com", "")
