"""Server-rendered dashboard panels.

Each panel is one element with a stable id. The page includes them; the consumer and
the snapshot endpoint send them again marked `hx-swap-oob="morph"`, and htmx morphs
them in place (idiomorph), so rows keep their DOM nodes and only changed text moves.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from datetime import datetime
from decimal import Decimal
from functools import cached_property
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from django.template.loader import render_to_string

from opspulse.alerts.models import AlertType
from opspulse.live import selectors
from opspulse.live.formatting import format_count, format_money, percent_change
from opspulse.stores.models import Platform, Store

if TYPE_CHECKING:
    from opspulse.live.view import RowChange, StoreView

KPI_REVENUE = "kpi-revenue"
KPI_ORDERS = "kpi-orders"
KPI_AOV = "kpi-aov"
KPI_CARTS = "kpi-carts"
REVENUE_CHART = "revenue-chart"
ORDER_FEED = "order-feed"
# Today's list in the feed panel: new orders are prepended to it one row at a time.
ORDER_FEED_TODAY = "order-feed-today"
LOW_STOCK = "low-stock"
ALERTS = "alerts"

PANEL_IDS = (KPI_REVENUE, KPI_ORDERS, KPI_AOV, KPI_CARTS, REVENUE_CHART, ORDER_FEED, LOW_STOCK, ALERTS)

SALES_PANELS = frozenset({KPI_REVENUE, KPI_ORDERS, KPI_AOV, REVENUE_CHART})
PANELS_FOR_MESSAGE: dict[str, frozenset[str]] = {
    "new_order": SALES_PANELS | {ORDER_FEED},
    "order_updated": SALES_PANELS | {ORDER_FEED},
    "metric_update": SALES_PANELS,
    "inventory_update": frozenset({LOW_STOCK}),
    "cart_activity": frozenset({KPI_CARTS}),
    "alert_fired": frozenset({ALERTS}),
}
# Panels whose content changes with the clock alone (the 30-minute cart window, the
# "yesterday at this time" comparison, the chart's "now", the feed's times), re-read
# periodically without any message. The re-read also renews the store's view
# (opspulse.live.view), from which new orders are shown between reads.
CLOCK_PANELS = SALES_PANELS | {ORDER_FEED, KPI_CARTS}


def panels_for_messages(messages: Iterable[dict[str, Any]]) -> set[str]:
    """Return the panels that the given live messages may have changed."""
    dirty: set[str] = set()
    for message in messages:
        if isinstance(message, dict):
            dirty |= PANELS_FOR_MESSAGE.get(message.get("type"), frozenset())
    return dirty


class _Reads:
    """The selector results one render needs, each read at most once.

    Seeded from a store's view, the sales panels' data comes from it instead of the
    database.
    """

    def __init__(self, store: Store, now: datetime | None = None, *, view: StoreView | None = None) -> None:
        self.store = store
        self.day = selectors.local_day(store, now)
        if view is not None:
            self.__dict__.update(summary=view.summary, hours=view.hours, feed=view.feed)

    @cached_property
    def summary(self) -> selectors.DaySummary:
        return selectors.today_summary(self.store, day=self.day)

    @cached_property
    def carts(self) -> selectors.CartActivity:
        return selectors.active_carts(self.store, day=self.day)

    @cached_property
    def hours(self) -> dict[datetime, Decimal]:
        return selectors.revenue_hour_buckets(self.store, day=self.day)

    @cached_property
    def series(self) -> selectors.RevenueSeries:
        return selectors.revenue_series(self.hours, day=self.day, tz=ZoneInfo(self.store.timezone))

    @cached_property
    def feed(self) -> list[selectors.FeedOrder]:
        return selectors.recent_orders(self.store)

    def view_parts(self) -> dict[str, Any]:
        """What this render read of the data a store's view holds."""
        return {name: self.__dict__[name] for name in ("summary", "hours", "feed") if name in self.__dict__}


def _comparison(current, previous, *, noun: str) -> dict[str, str]:
    change = percent_change(current or 0, previous or 0)
    if change is None:
        if current:
            return {"direction": "up", "text": f"No {noun} by this time yesterday"}
        return {"direction": "flat", "text": f"No {noun} yet today"}
    if change == 0:
        return {"direction": "flat", "text": "Same as yesterday"}
    return {
        "direction": "up" if change > 0 else "down",
        "text": f"{'+' if change > 0 else '−'}{abs(change)}% vs. yesterday",
    }


def _kpi_revenue(reads: _Reads) -> dict[str, Any]:
    summary, currency = reads.summary, reads.store.currency
    return {
        "label": "Revenue today",
        "value": format_money(summary.revenue, currency),
        "comparison": _comparison(summary.revenue, summary.yesterday_revenue, noun="sales"),
        "detail": f"Yesterday by this time: {format_money(summary.yesterday_revenue, currency)}",
    }


def _kpi_orders(reads: _Reads) -> dict[str, Any]:
    summary = reads.summary
    return {
        "label": "Orders today",
        "value": format_count(summary.orders),
        "comparison": _comparison(summary.orders, summary.yesterday_orders, noun="orders"),
        "detail": f"Yesterday by this time: {format_count(summary.yesterday_orders)}",
    }


def _kpi_aov(reads: _Reads) -> dict[str, Any]:
    summary, currency = reads.summary, reads.store.currency
    current, previous = summary.average_order_value, summary.yesterday_average_order_value
    return {
        "label": "Average order value",
        "value": format_money(current, currency),
        "comparison": _comparison(current, previous, noun="orders"),
        "detail": f"Yesterday by this time: {format_money(previous, currency)}",
    }


def _kpi_carts(reads: _Reads) -> dict[str, Any]:
    carts = reads.carts
    if carts.count:
        detail = f"{format_money(carts.value, reads.store.currency)} in carts · last 30 min"
    elif reads.store.platform == Platform.WOOCOMMERCE:
        # WooCommerce core tracks no carts, so it sends no cart webhooks.
        detail = "WooCommerce does not report carts"
    else:
        detail = "No shopper activity in the last 30 min"
    return {"label": "Active carts", "value": format_count(carts.count), "comparison": None, "detail": detail}


def _revenue_chart(reads: _Reads) -> dict[str, Any]:
    series = reads.series
    chart = {
        "x": series.hours,
        "today": series.today,
        "yesterday": series.yesterday,
        "now": series.now_hour,
        "currency": reads.store.currency,
    }
    return {
        "chart_json": json.dumps(chart, separators=(",", ":")),
        "today_total": format_money(reads.summary.revenue, reads.store.currency),
        "has_sales": any(series.today) or any(series.yesterday),
    }


def _feed_time(placed_at: datetime, reads: _Reads) -> str:
    local = placed_at.astimezone(ZoneInfo(reads.store.timezone))
    if local >= reads.day.start:
        return local.strftime("%H:%M")
    if local >= reads.day.yesterday_start:
        return local.strftime("Yesterday %H:%M")
    return local.strftime("%b %-d, %H:%M")


def _feed_row(order: selectors.FeedOrder, reads: _Reads) -> dict[str, Any]:
    return {
        "number": order.number,
        "row_id": "order-" + "".join(c if c.isalnum() else "-" for c in order.external_id),
        "total": format_money(order.total, order.currency),
        "status": order.status,
        "first_name": order.first_name,
        "city": order.city,
        "time": _feed_time(order.placed_at, reads),
        "today": order.placed_at >= reads.day.start,
    }


def _order_feed(reads: _Reads) -> dict[str, Any]:
    rows = [_feed_row(order, reads) for order in reads.feed]
    today = [row for row in rows if row["today"]]
    earlier = [row for row in rows if not row["today"]]
    return {"today_rows": today, "earlier_rows": earlier, "feed_size": selectors.FEED_SIZE}


def _low_stock(reads: _Reads) -> dict[str, Any]:
    stock = selectors.low_stock(reads.store)
    return {"threshold": stock.threshold, "items": stock.items, "total": stock.total}


def _alerts(reads: _Reads) -> dict[str, Any]:
    events = []
    for event in selectors.recent_alert_events(reads.store):
        events.append(
            {
                "message": event.message,
                "kind": event.alert.type,
                "kind_label": event.alert.get_type_display(),
                "time": _feed_time(event.fired_at, reads),
            }
        )
    return {"events": events, "low_stock_kind": AlertType.LOW_STOCK}


_PANELS: dict[str, tuple[str, Callable[[_Reads], dict[str, Any]]]] = {
    KPI_REVENUE: ("live/panels/kpi.html", _kpi_revenue),
    KPI_ORDERS: ("live/panels/kpi.html", _kpi_orders),
    KPI_AOV: ("live/panels/kpi.html", _kpi_aov),
    KPI_CARTS: ("live/panels/kpi.html", _kpi_carts),
    REVENUE_CHART: ("live/panels/revenue_chart.html", _revenue_chart),
    ORDER_FEED: ("live/panels/order_feed.html", _order_feed),
    LOW_STOCK: ("live/panels/low_stock.html", _low_stock),
    ALERTS: ("live/panels/alerts.html", _alerts),
}


def render_panels(
    store: Store, panel_ids: Iterable[str], *, oob: bool, now: datetime | None = None
) -> dict[str, str]:
    """Return {panel id: HTML} for the requested panels, in page order, read fresh from the database."""
    return _render(_Reads(store, now), panel_ids, oob=oob)


def read_panels(store: Store, panel_ids: Iterable[str]) -> tuple[dict[str, str], selectors.LocalDay, dict[str, Any]]:
    """Render the panels (out of band) from the database; also return the day and what
    was read of a store view's data (see opspulse.live.view.renewed)."""
    reads = _Reads(store)
    return _render(reads, panel_ids, oob=True), reads.day, reads.view_parts()


def render_from_view(store: Store, view: StoreView, panel_ids: Iterable[str]) -> dict[str, str]:
    """Render the sales panels (out of band) from `view`, without the database."""
    reads = _Reads(store, view=view)
    if reads.day.start != view.day.start:
        raise ValueError("the store's day has turned since the view was read")
    return _render(reads, set(panel_ids) & (SALES_PANELS | {ORDER_FEED}), oob=True)


def render_feed_rows(store: Store, view: StoreView, rows: Iterable[RowChange]) -> str:
    """One frame of feed rows: new orders prepended to today's list, changed ones morphed in place."""
    reads = _Reads(store, view=view)
    frames = []
    for kind, order in rows:
        row = render_to_string("live/includes/order_row.html", {"row": _feed_row(order, reads), "row_oob": kind})
        if kind == "prepend":
            row = f'<ul id="{ORDER_FEED_TODAY}" hx-swap-oob="afterbegin">{row}</ul>'
        frames.append(row)
    return "".join(frames)


def _render(reads: _Reads, panel_ids: Iterable[str], *, oob: bool) -> dict[str, str]:
    wanted = set(panel_ids)
    rendered = {}
    for panel_id in PANEL_IDS:
        if panel_id in wanted:
            template_name, build = _PANELS[panel_id]
            context = {"panel_id": panel_id, "store": reads.store, "oob": oob, **build(reads)}
            rendered[panel_id] = render_to_string(template_name, context)
    return rendered
