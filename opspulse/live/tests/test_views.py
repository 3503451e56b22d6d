from __future__ import annotations

import json
import re
from datetime import date, timedelta
from decimal import Decimal
from html import unescape
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse
from django.utils import timezone

from opspulse.live.panels import PANEL_IDS
from opspulse.metrics.models import Granularity, MetricName
from opspulse.metrics.selectors import local_day
from opspulse.platforms.registry import handler_for
from tests.factories import MetricFactory, OrderFactory

SHOPIFY_FIXTURES = Path(__file__).resolve().parents[2] / "platforms" / "shopify" / "fixtures"


def test_dashboard_returns_404_to_an_outsider(store, outsider_client):
    response = outsider_client.get(reverse("dashboard", args=[store.public_id]))

    assert response.status_code == 404


def test_dashboard_renders_every_panel_for_a_member(store, owner_client):
    response = owner_client.get(reverse("dashboard", args=[store.public_id]))

    assert response.status_code == 200
    html = response.content.decode()
    for panel_id in (*PANEL_IDS, "live-status"):
        assert f'id="{panel_id}"' in html
    assert f'ws-connect="/ws/stores/{store.public_id}/?rendered_at=' in html
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
    assert html.count('hx-swap-oob="morph"') == len(PANEL_IDS)
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


def test_a_customers_name_and_city_are_separate_so_the_city_is_never_cut_to_an_initial(store, owner_client):
    OrderFactory(store=store, number="#1301", customer_first_name="Noah", customer_city="Los Angeles")
    OrderFactory(store=store, number="#1302", customer_first_name="Ines", customer_city="Porto", status="cancelled",
                 placed_at=timezone.now() - timedelta(minutes=5))

    html = owner_client.get(reverse("dashboard", args=[store.public_id])).content.decode()

    # The live feed: the city on a line of its own, which wraps rather than ends in "…".
    assert "<span data-customer-name>Noah</span><span data-customer-city>Los Angeles</span>" in html
    # Cancellations & refunds: name and city are separate pieces of the line.
    changes = html[html.index('data-voided-order="#1302"'):]
    changes = changes[: changes.index("</li>")]
    assert "data-customer-name>· Ines,</span>" in changes and "data-customer-city>Porto</span>" in changes
    assert "Ines, Porto" not in changes


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


def daily(client, store, **params):
    return client.get(reverse("dashboard-daily", args=[store.public_id]), params)


def day_bucket(store, local_date, value):
    from opspulse.metrics.selectors import local_midnight

    MetricFactory(store=store, name=MetricName.REVENUE, granularity=Granularity.DAY,
                  timestamp=local_midnight(local_date, ZoneInfo(store.timezone)), value=Decimal(value))


def test_dashboard_shows_the_last_7_days_from_the_day_buckets(store, owner_client):
    today = local_day(store).start.date()
    day_bucket(store, today - timedelta(days=2), "1200.00")
    day_bucket(store, today - timedelta(days=9), "300.00")

    html = owner_client.get(reverse("dashboard", args=[store.public_id])).content.decode()

    assert 'id="daily-chart"' in html
    chart = json.loads(unescape(re.search(r'data-daily="([^"]*)"', html).group(1)))
    assert chart["days"][-1] == today.isoformat() and len(chart["days"]) == 7
    assert chart["revenue"][-3] == 1200.0
    assert chart["previous"][-3] == 300.0
    assert chart["today"] == today.isoformat()
    assert "$1,200.00" in html


@pytest.mark.parametrize("days", [7, 30, 90])
def test_daily_chart_shows_the_chosen_number_of_days(store, owner_client, days):
    response = daily(owner_client, store, days=days)

    assert response.status_code == 200
    chart = json.loads(unescape(re.search(r'data-daily="([^"]*)"', response.content.decode()).group(1)))
    assert len(chart["days"]) == len(chart["previous"]) == days
    assert f'value="{days}" aria-pressed="true"' in response.content.decode()


def test_daily_chart_shows_a_custom_range_with_the_period_before(store, owner_client):
    day_bucket(store, date(2025, 3, 3), "50.00")
    day_bucket(store, date(2025, 2, 28), "20.00")

    response = daily(owner_client, store, start="2025-03-01", end="2025-03-10")

    chart = json.loads(unescape(re.search(r'data-daily="([^"]*)"', response.content.decode()).group(1)))
    assert chart["days"][0] == "2025-03-01" and chart["days"][-1] == "2025-03-10"
    assert chart["revenue"][2] == 50.0
    assert chart["previous_days"][-1] == "2025-02-28" and chart["previous"][-1] == 20.0
    assert chart["today"] is None


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"start": "2024-01-01", "end": "2025-01-01"}, "at most 366 days"),
        ({"start": "2025-03-10", "end": "2025-03-01"}, "start date is after the end date"),
        ({"start": "2025-03-10"}, "needs both a start and an end date"),
        ({"start": "yesterday", "end": "2025-03-01"}, "Enter a valid date"),
        ({"days": "365"}, "Select a valid choice"),
        ({"start": "2025-03-01", "end": "2999-01-01"}, "cannot end after today"),
        ({"start": "0001-01-01", "end": "0001-01-02"}, "cannot start before January 1, 2000"),
    ],
    ids=["too_long_case", "reversed_case", "half_open_case", "not_a_date_case", "not_a_preset_case", "future_case",
         "ancient_case"],
)
def test_daily_chart_refuses_an_invalid_range_and_says_why(store, owner_client, params, message):
    response = daily(owner_client, store, **params)

    assert response.status_code == 422
    html = response.content.decode()
    assert 'role="alert"' in html and message in html
    assert 'id="daily-chart"' in html  # the last 7 days, with the message


def test_daily_chart_returns_404_to_an_outsider(store, outsider_client):
    assert daily(outsider_client, store, days=7).status_code == 404


def test_kpis_compare_with_yesterday_and_the_same_weekday_last_week(store, owner_client):
    store.platform = "shopify"
    store.save()

    html = owner_client.get(reverse("dashboard", args=[store.public_id])).content.decode()

    for panel_id in ("kpi-revenue", "kpi-orders", "kpi-aov", "kpi-units", "kpi-orders-per-cart"):
        panel = re.search(rf'<div id="{panel_id}".*?</dl>', html, re.S).group(0)
        assert "Yesterday" in panel and "Last " in panel


def test_a_woocommerce_store_says_it_reports_no_carts_instead_of_a_number(store, owner_client):
    store.platform = "woocommerce"
    store.save()

    html = owner_client.get(reverse("dashboard", args=[store.public_id])).content.decode()

    for panel_id in ("kpi-carts", "kpi-orders-per-cart"):
        panel = re.search(rf'<div id="{panel_id}".*?</div>\s*$', html, re.S | re.M).group(0)
        assert "Not reported" in panel and "WooCommerce does not report carts" in panel


def test_a_cancelled_order_shows_as_cancelled_and_not_counted_in_the_feed(store, owner_client):
    OrderFactory(store=store, number="#1400", status="cancelled", counted_revenue=0, counted_orders=0)

    html = owner_client.get(reverse("dashboard", args=[store.public_id])).content.decode()

    row = re.search(r'<li id="order-[^"]*"[^>]*data-order-number="#1400".*?</li>', html, re.S).group(0)
    assert "Cancelled" in row and "is-void" in row and "Not counted" in row
