"""The ids of what live screens show, and which live messages change which.

Each panel, tile and region is one element with a stable id: the page includes it,
and a socket sends it again when it changes: whole and out of band, or, if it kept its
elements and attributes, only its changed text and attribute values, addressed within
the element (opspulse.live.frames). The dashboard's panels are
rendered by opspulse.live.fragments and paced by opspulse.live.hub; the overview's
tiles by opspulse.live.overview; the wallboard's regions by
opspulse.live.wallboard_regions.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opspulse.stores.models import Store

# The dashboard.
KPI_REVENUE = "kpi-revenue"
KPI_ORDERS = "kpi-orders"
KPI_AOV = "kpi-aov"
KPI_CARTS = "kpi-carts"
KPI_UNITS = "kpi-units"
KPI_ORDERS_PER_CART = "kpi-orders-per-cart"
REVENUE_CHART = "revenue-chart"
TOP_PRODUCTS = "top-products"
# Cancellations and refunds, including of orders the feed no longer shows.
ORDER_CHANGES = "order-changes"
ORDER_FEED = "order-feed"
# Today's list in the feed panel: new orders are prepended to it one row at a time.
ORDER_FEED_TODAY = "order-feed-today"
LOW_STOCK = "low-stock"
OUT_OF_STOCK = "out-of-stock"
ALERTS = "alerts"
# Not a live panel: each page picks its own range (see opspulse.live.views.daily_chart).
DAILY_CHART = "daily-chart"

PANEL_IDS = (
    KPI_REVENUE, KPI_ORDERS, KPI_AOV, KPI_UNITS, KPI_ORDERS_PER_CART, KPI_CARTS, REVENUE_CHART, ORDER_FEED,
    TOP_PRODUCTS, ORDER_CHANGES, OUT_OF_STOCK, LOW_STOCK, ALERTS,
)

# The panels drawn from a store's view (opspulse.live.store_view) of today's buckets.
SALES_PANELS = frozenset({KPI_REVENUE, KPI_ORDERS, KPI_AOV, KPI_UNITS, KPI_ORDERS_PER_CART, REVENUE_CHART})
PANELS_FOR_MESSAGE: dict[str, frozenset[str]] = {
    "new_order": SALES_PANELS | {ORDER_FEED, TOP_PRODUCTS, ORDER_CHANGES},
    "order_updated": SALES_PANELS | {ORDER_FEED, TOP_PRODUCTS, ORDER_CHANGES},
    "metric_update": SALES_PANELS,
    "inventory_update": frozenset({LOW_STOCK, OUT_OF_STOCK}),
    "cart_activity": frozenset({KPI_CARTS}),
    "alert_fired": frozenset({ALERTS}),
    # An alert resolved by itself or acknowledged.
    "alert_updated": frozenset({ALERTS}),
}
# Panels whose content changes with the clock alone (the 30-minute cart window, the
# "yesterday at this time" comparison, the chart's "now", the feed's times), re-read
# periodically without any message. The re-read also renews the store's view
# (opspulse.live.store_view), from which new orders are shown between reads.
CLOCK_PANELS = SALES_PANELS | {ORDER_FEED, KPI_CARTS, TOP_PRODUCTS, ORDER_CHANGES}
# Panels read from the database on every order message, even when the view has the order.
ORDER_REREAD_PANELS = frozenset({TOP_PRODUCTS})

# The all-stores overview: a tile per store, the totals and the alerts.
TOTALS_ID = "overview-totals"
ALERTS_ID = "overview-alerts"

# The wallboard.
WB_DAY = "wb-day"
WB_REVENUE = "wb-revenue"
WB_ORDERS = "wb-orders"
WB_AOV = "wb-aov"
WB_CHART = "wb-chart"
WB_FEED = "wb-feed"
REGION_IDS = (WB_DAY, WB_REVENUE, WB_ORDERS, WB_AOV, WB_CHART, WB_FEED)


def tile_id(store: Store) -> str:
    return f"store-tile-{store.public_id}"


def panels_for_messages(messages: Iterable[dict[str, Any]]) -> set[str]:
    """Return the panels that the given live messages may have changed."""
    dirty: set[str] = set()
    for message in messages:
        if isinstance(message, dict):
            dirty |= PANELS_FOR_MESSAGE.get(message.get("type"), frozenset())
    return dirty


def mentions_alerts(messages: Any) -> bool:
    """Whether the live messages say that alerts fired, resolved or were acknowledged."""
    return isinstance(messages, list) and ALERTS in panels_for_messages(messages)
