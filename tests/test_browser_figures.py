"""Large figures, cancellations and the wallboard's chart in a real browser, from a phone
to a 4K TV: no figure is cut off, and a cancelled order never looks like a sale."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from opspulse.commerce.actions import LineItemData, OrderData, record_order
from opspulse.commerce.models import OrderStatus
from opspulse.metrics.models import Granularity, Metric, MetricName
from tests.support.browser import SCREENSHOTS, VIEWPORTS

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

FIGURES = ", ".join([".feed-total", *(f"[data-{name}]" for name in (
    "kpi-value", "tile-revenue", "tile-orders", "tile-aov", "currency-revenue", "wall-value", "wall-total",
    "wall-number"))])

# Each figure shown, with whether it fits its box, whether it is drawn with an ellipsis, and its card.
MEASURE = """selector => [...document.querySelectorAll(selector)].filter(e => e.getClientRects().length).map(e => {
  const card = e.closest('.kpi, [data-store-tile], [data-currency-total], #wb-revenue, #wb-orders, #wb-aov, #wb-feed, li');
  return {
    text: e.innerText.trim(),
    fits: e.scrollWidth <= e.clientWidth && (!card || card.scrollWidth <= card.clientWidth),
    ellipsis: getComputedStyle(e).textOverflow === 'ellipsis',
  };
})"""


def order(number: int, total: str, *, status=OrderStatus.PAID, minutes_ago: int = 0, name="Noah", city="Los Angeles"):
    at = timezone.now() - timedelta(minutes=minutes_ago)
    return OrderData(
        external_id=str(number), number=f"#{number}", status=status, currency="EUR", total=Decimal(total),
        placed_at=at, updated_at=at, customer_first_name=name, customer_city=city,
        line_items=[LineItemData(external_id=f"{number}-1", title="Sofa", quantity=1, price=Decimal(total))],
    )


@pytest.fixture
def busy_store(shopify_store):
    """A store having a record day: €1,234,567.89 in 12,345 orders, and one cancelled order."""
    record_order(store=shopify_store, data=order(1001, "1234567.89"))
    cancelled = order(1002, "4321.00", status=OrderStatus.CANCELLED, name="Ines", city="Porto")
    record_order(store=shopify_store, data=cancelled)
    Metric.objects.filter(store=shopify_store, name=MetricName.ORDERS, granularity=Granularity.DAY).update(value=12345)
    return shopify_store


def test_large_figures_are_shown_whole_on_a_phone_a_laptop_and_tvs(web, busy_store, alice_browser):  # noqa: F811
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page = alice_browser.new_page()
    pages = {
        "dashboard": f"{web.url}/stores/{busy_store.public_id}/",
        "overview": f"{web.url}/",
        "wallboard": f"{web.url}/stores/{busy_store.public_id}/wallboard/",
    }
    for viewport in VIEWPORTS:
        page.set_viewport_size(viewport)
        for name, url in pages.items():
            page.goto(url)
            figures = page.evaluate(MEASURE, FIGURES)

            texts = [figure["text"] for figure in figures]
            assert any("€1,234,567.89" in text for text in texts), (name, viewport, texts)
            assert any(text.endswith("12,345") for text in texts), (name, viewport, texts)
            for figure in figures:
                assert figure["fits"] and not figure["ellipsis"], (name, viewport, figure)
                assert "…" not in figure["text"], (name, viewport, figure)
            page.screenshot(path=str(SCREENSHOTS / f"figures-{name}-{viewport['width']}.png"), full_page=True)
        if viewport["width"] == 390:
            assert page.goto(pages["dashboard"]) and page.inner_text("#kpi-revenue [data-kpi-value]") == "€1,234,567.89"


def test_the_wallboard_marks_a_cancelled_order_and_labels_its_chart(web, busy_store, alice_browser):  # noqa: F811
    page = alice_browser.new_page()
    page.set_viewport_size({"width": 1440, "height": 900})
    page.goto(f"{web.url}/stores/{busy_store.public_id}/wallboard/")

    cancelled = page.locator('#wb-feed [data-order-number="#1002"]')
    status = cancelled.locator("[data-wall-status]")
    total = cancelled.locator("[data-wall-total]")
    assert status.is_visible() and status.inner_text() == "Cancelled"
    assert "line-through" in total.evaluate("e => getComputedStyle(e).textDecorationLine")
    sale = page.locator('#wb-feed [data-order-number="#1001"] [data-wall-total]')
    assert "line-through" not in sale.evaluate("e => getComputedStyle(e).textDecorationLine")
    # A sale says so too: the status is shown at every width, not only a cancellation's.
    sale_status = page.locator('#wb-feed [data-order-number="#1001"] [data-wall-status]')
    assert sale_status.is_visible() and sale_status.inner_text() == "Paid"

    # The hourly chart's scale is in euros, from 0 up past the busiest hour, and its hours are named.
    values = page.locator('#wb-chart [data-chart-axis="value"] [data-axis-label]')
    assert values.first.is_visible() and values.last.is_visible()
    assert values.all_inner_texts()[-1] == "€0" and values.all_inner_texts()[0] == "€1,500,000"
    assert page.locator('#wb-chart [data-chart-axis="hours"]').inner_text().split() == [
        "00:00", "06:00", "12:00", "18:00", "24:00"]
    page.screenshot(path=str(SCREENSHOTS / "wallboard-1440.png"))
