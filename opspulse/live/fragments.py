"""Server-rendered dashboard panels.

Each panel is one element with a stable id. The page includes them; the consumer and
the snapshot endpoint send them again marked `hx-swap-oob="morph"`, and htmx morphs
them in place (idiomorph), so rows keep their DOM nodes and only changed text moves.
A socket sends a panel whose new render has the same elements and attributes as the
one its page has as a patch of its text and attribute values instead
(opspulse.live.frames). So a template keeps its structure where only figures change,
and closes every element it opens: HTML a browser would repair is always sent whole.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from datetime import date, datetime
from decimal import Decimal
from functools import cached_property, partial
from typing import Any
from zoneinfo import ZoneInfo

from django.template import engines
from django.template.defaultfilters import pluralize
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.safestring import mark_safe

from opspulse.alerts import selectors as alert_selectors
from opspulse.alerts.models import AlertType
from opspulse.commerce import selectors as commerce_selectors
from opspulse.commerce.models import NOT_COUNTED
from opspulse.lib.formatting import NOT_ENOUGH_HISTORY, format_count, format_money, percent_change
from opspulse.live import selectors
from opspulse.live.panels import (
    ALERTS,
    DAILY_CHART,
    KPI_AOV,
    KPI_CARTS,
    KPI_ORDERS,
    KPI_ORDERS_PER_CART,
    KPI_REVENUE,
    KPI_UNITS,
    LOW_STOCK,
    ORDER_CHANGES,
    ORDER_FEED,
    ORDER_FEED_TODAY,
    OUT_OF_STOCK,
    PANEL_IDS,
    REVENUE_CHART,
    SALES_PANELS,
    TOP_PRODUCTS,
)
from opspulse.live.store_view import RowChange, StoreView
from opspulse.metrics import selectors as metric_selectors
from opspulse.stores.models import Platform, Store


class _Reads:
    """The selector results one render needs, each read at most once.

    Seeded from a store's view, the sales panels' data comes from it instead of the
    database.
    """

    def __init__(self, store: Store, now: datetime | None = None, *, view: StoreView | None = None) -> None:
        self.store = store
        self.day = metric_selectors.local_day(store, now)
        if view is not None:
            self.__dict__.update(summary=view.summary, hours=view.hours, feed=view.feed)

    @cached_property
    def summary(self) -> commerce_selectors.DaySummary:
        return commerce_selectors.today_summary(self.store, day=self.day)

    @cached_property
    def carts(self) -> commerce_selectors.CartActivity:
        return commerce_selectors.active_carts(self.store, day=self.day)

    @cached_property
    def hours(self) -> dict[datetime, Decimal]:
        return metric_selectors.revenue_hour_buckets(self.store, day=self.day)

    @cached_property
    def series(self) -> metric_selectors.RevenueSeries:
        return metric_selectors.revenue_series(self.hours, day=self.day, tz=ZoneInfo(self.store.timezone))

    @cached_property
    def feed(self) -> list[commerce_selectors.FeedOrder]:
        return commerce_selectors.recent_orders(self.store)

    def view_parts(self) -> dict[str, Any]:
        """What this render read of the data a store's view holds."""
        return {name: self.__dict__[name] for name in ("summary", "hours", "feed") if name in self.__dict__}


def _change(current, previous) -> dict[str, str]:
    """The change from `previous` to `current` as a short badge: "+12%", "−5%", "0%" or "new"."""
    change = percent_change(current or 0, previous or 0)
    if change is None:
        return {"direction": "up", "text": "new"} if current else {"direction": "flat", "text": "—"}
    if change == 0:
        return {"direction": "flat", "text": "0%"}
    return {"direction": "up" if change > 0 else "down", "text": f"{'+' if change > 0 else '−'}{abs(change)}%"}


def _comparisons(reads: _Reads, current, pick: Callable[[commerce_selectors.Totals], Any],
                 show: Callable[[Any], str]) -> list[dict[str, Any]]:
    """Today against yesterday and the same weekday last week, each up to this time of day
    (or "not enough history yet" for a day before the store's history starts)."""
    summary, day = reads.summary, reads.day
    # No clock time in the text: the panel would change every minute without a sale.
    rows = []
    for label, long_label, totals, known in (
        ("Yesterday", "Yesterday by this time", summary.yesterday, summary.has_yesterday),
        (f"Last {day.last_week_start.strftime('%a')}", f"Last {day.last_week_start.strftime('%A')} by this time",
         summary.last_week, summary.has_last_week),
    ):
        if not known:
            rows.append({"label": label, "long_label": long_label, "known": False, "text": NOT_ENOUGH_HISTORY})
            continue
        previous = pick(totals)
        rows.append({"label": label, "long_label": long_label, "known": True, "value": show(previous),
                     **_change(current, previous)})
    return rows


def _kpi(label: str, value: str, *, comparisons: list | None = None, detail: str = "",
         wide_value: bool = False) -> dict[str, Any]:
    return {"label": label, "value": value, "comparisons": comparisons or [], "detail": detail,
            "wide_value": wide_value}


def _kpi_revenue(reads: _Reads) -> dict[str, Any]:
    summary, currency = reads.summary, reads.store.currency
    money = partial(format_money, currency=currency)
    return {
        **_kpi("Revenue today", money(summary.revenue),
               comparisons=_comparisons(reads, summary.revenue, lambda t: t.revenue, money)),
        # Read by the daily chart, whose bar for today follows the live total.
        "raw": str(summary.revenue),
        "raw_day": reads.day.start.date().isoformat(),
    }


def _kpi_orders(reads: _Reads) -> dict[str, Any]:
    summary = reads.summary
    return {
        **_kpi("Orders today", format_count(summary.orders),
               comparisons=_comparisons(reads, summary.orders, lambda t: t.orders, format_count)),
        "raw": str(summary.orders),
        "raw_day": reads.day.start.date().isoformat(),
    }


def _kpi_aov(reads: _Reads) -> dict[str, Any]:
    summary, currency = reads.summary, reads.store.currency
    current = summary.today.average_order_value
    return _kpi("Avg order value", format_money(current, currency),
                comparisons=_comparisons(reads, current, lambda t: t.average_order_value,
                                         partial(format_money, currency=currency)))


def _kpi_units(reads: _Reads) -> dict[str, Any]:
    summary = reads.summary
    return _kpi("Units sold today", format_count(summary.units),
                comparisons=_comparisons(reads, summary.units, lambda t: t.units, format_count))


def _format_ratio(value: Decimal | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def _kpi_orders_per_cart(reads: _Reads) -> dict[str, Any]:
    if reads.store.platform == Platform.WOOCOMMERCE:
        # WooCommerce core tracks no carts, so it sends no cart webhooks.
        return _kpi("Orders per cart", "Not reported", detail="WooCommerce does not report carts", wide_value=True)
    summary = reads.summary
    current = summary.today.orders_per_cart
    return _kpi(
        "Orders per cart", _format_ratio(current),
        comparisons=_comparisons(reads, current, lambda t: t.orders_per_cart, _format_ratio),
        detail=(
            f"{format_count(summary.orders)} order{pluralize(summary.orders)} · "
            f"{format_count(summary.carts)} new cart{pluralize(summary.carts)} today"
        ),
    )


def _kpi_carts(reads: _Reads) -> dict[str, Any]:
    if reads.store.platform == Platform.WOOCOMMERCE:
        return _kpi("Active carts", "Not reported", detail="WooCommerce does not report carts", wide_value=True)
    carts = reads.carts
    if carts.count:
        detail = f"{format_money(carts.value, reads.store.currency)} · last 30 min"
    else:
        detail = "No shopper activity in the last 30 min"
    return _kpi("Active carts", format_count(carts.count), detail=detail)


def _revenue_chart(reads: _Reads) -> dict[str, Any]:
    series = reads.series
    has_yesterday = reads.summary.has_yesterday
    chart = {
        "x": series.hours,
        "today": series.today,
        # No line for a yesterday the store's history does not cover: it would read as no sales.
        "yesterday": series.yesterday if has_yesterday else [None] * len(series.hours),
        "now": series.now_hour,
        # Real hours, 23 or 25 on the days the clocks change: the page needs no timezone rules.
        "length": series.length,
        "labels": series.labels,
        "ticks": series.ticks,
        "currency": reads.store.currency,
    }
    return {
        "chart_json": json.dumps(chart, separators=(",", ":")),
        "today_total": format_money(reads.summary.revenue, reads.store.currency),
        "has_yesterday": has_yesterday,
        "has_sales": any(series.today) or (has_yesterday and any(series.yesterday)),
    }


def _feed_time(placed_at: datetime, reads: _Reads) -> str:
    local = placed_at.astimezone(ZoneInfo(reads.store.timezone))
    if local >= reads.day.start:
        return local.strftime("%H:%M")
    if local >= reads.day.yesterday_start:
        return local.strftime("Yesterday %H:%M")
    return local.strftime("%b %-d, %H:%M")


def _feed_row(order: commerce_selectors.FeedOrder, reads: _Reads) -> dict[str, Any]:
    return {
        "number": order.number,
        "row_id": "order-" + "".join(c if c.isalnum() else "-" for c in order.external_id),
        "total": format_money(order.total, order.currency),
        "status": order.status,
        # Cancelled and refunded orders no longer count towards today's figures.
        "voided": order.status in NOT_COUNTED,
        "test": order.is_test,
        "first_name": order.first_name,
        "city": order.city,
        "time": _feed_time(order.placed_at, reads),
        "today": order.placed_at >= reads.day.start,
    }


def _order_feed(reads: _Reads) -> dict[str, Any]:
    rows = [_feed_row(order, reads) for order in reads.feed]
    today = [row for row in rows if row["today"]]
    earlier = [row for row in rows if not row["today"]]
    return {"today_rows": today, "earlier_rows": earlier, "feed_size": commerce_selectors.FEED_SIZE}


def _order_changes(reads: _Reads) -> dict[str, Any]:
    rows = []
    for voided in commerce_selectors.recent_voided_orders(reads.store, day=reads.day):
        row = _feed_row(voided.order, reads)
        row["row_id"] = "voided-" + row["row_id"]
        row["time"] = _feed_time(voided.changed_at, reads)
        row["placed"] = _feed_time(voided.order.placed_at, reads)
        rows.append(row)
    return {"rows": rows, "days": commerce_selectors.VOIDED_DAYS}


def _low_stock(reads: _Reads) -> dict[str, Any]:
    stock = selectors.low_stock(reads.store)
    return {"threshold": stock.threshold, "items": stock.items, "total": stock.total}


def _out_of_stock(reads: _Reads) -> dict[str, Any]:
    stock = commerce_selectors.out_of_stock(reads.store)
    return {"items": stock.items, "total": stock.total}


def _top_products(reads: _Reads) -> dict[str, Any]:
    currency = reads.store.currency
    products = metric_selectors.top_products(reads.store, day=reads.day)
    most = max((product.units for product in products), default=0)
    return {
        "products": [
            {
                "title": product.title,
                "units": format_count(product.units),
                "revenue": format_money(product.revenue, currency),
                # The bar's width, an SVG attribute (the CSP allows no inline style).
                "share": max(round(product.units * 100 / most), 2) if most else 0,
            }
            for product in products
        ],
    }


def alert_state(event) -> str:
    """How an alert stands: acknowledged, resolved, open (its condition goes on) or new."""
    if event.acknowledged_at:
        return "acknowledged"
    if event.resolved_at:
        return "resolved"
    return "open" if event.condition else "new"


def _alerts(reads: _Reads) -> dict[str, Any]:
    events = []
    # The store's own alerts only: another store's are on its own dashboard.
    for event in alert_selectors.recent_store_events(reads.store):
        events.append(
            {
                "id": str(event.public_id),
                "message": event.message,
                "kind": event.alert.type,
                "kind_label": AlertType(event.alert.type).label,
                "time": _feed_time(event.fired_at, reads),
                "state": alert_state(event),
            }
        )
    unacknowledged = alert_selectors.unacknowledged_count(reads.store)
    return {
        "events": events,
        "low_stock_kind": AlertType.LOW_STOCK,
        "latest": events[0]["message"] if events else "",
        "unacknowledged": unacknowledged,
        "unacknowledged_label": (
            f"{alert_selectors.UNACKNOWLEDGED_SHOWN}+" if unacknowledged > alert_selectors.UNACKNOWLEDGED_SHOWN
            else str(unacknowledged)
        ),
        "history_url": reverse("alert-history", args=[reads.store.public_id]),
        "rules_url": reverse("alert-rules", args=[reads.store.public_id]),
    }


# Rendered for every new order (the KPIs, a feed row) or with the feed, by the Jinja2
# engine (opspulse.live.jinja).
KPI_TEMPLATE = "live/panels/kpi.html"
# Defines the macro order_row(row, row_oob).
ORDER_ROW_TEMPLATE = "live/includes/order_row.html"
REVENUE_CHART_TEMPLATE = "live/panels/revenue_chart.html"
ORDER_FEED_TEMPLATE = "live/panels/order_feed.html"
ORDER_CHANGES_TEMPLATE = "live/panels/order_changes.html"
_ENGINES = {
    name: "jinja2" for name in (KPI_TEMPLATE, REVENUE_CHART_TEMPLATE, ORDER_FEED_TEMPLATE, ORDER_CHANGES_TEMPLATE)
}

_PANELS: dict[str, tuple[str, Callable[[_Reads], dict[str, Any]]]] = {
    KPI_REVENUE: (KPI_TEMPLATE, _kpi_revenue),
    KPI_ORDERS: (KPI_TEMPLATE, _kpi_orders),
    KPI_AOV: (KPI_TEMPLATE, _kpi_aov),
    KPI_UNITS: (KPI_TEMPLATE, _kpi_units),
    KPI_ORDERS_PER_CART: (KPI_TEMPLATE, _kpi_orders_per_cart),
    KPI_CARTS: (KPI_TEMPLATE, _kpi_carts),
    REVENUE_CHART: (REVENUE_CHART_TEMPLATE, _revenue_chart),
    ORDER_FEED: (ORDER_FEED_TEMPLATE, _order_feed),
    TOP_PRODUCTS: ("live/panels/top_products.html", _top_products),
    ORDER_CHANGES: (ORDER_CHANGES_TEMPLATE, _order_changes),
    OUT_OF_STOCK: ("live/panels/out_of_stock.html", _out_of_stock),
    LOW_STOCK: ("live/panels/low_stock.html", _low_stock),
    ALERTS: ("live/panels/alerts.html", _alerts),
}


def render_panels(
    store: Store, panel_ids: Iterable[str], *, oob: bool, now: datetime | None = None
) -> dict[str, str]:
    """Return {panel id: HTML} for the requested panels, in page order, read fresh from the database."""
    return _render(_Reads(store, now), panel_ids, oob=oob)


def read_panels(store: Store, panel_ids: Iterable[str]) -> tuple[dict[str, str], metric_selectors.LocalDay, dict[str, Any]]:
    """Render the panels (out of band) from the database; also return the day and what
    was read of a store view's data (see opspulse.live.store_view.renewed)."""
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
    rows = list(rows)
    # A page keeps FEED_SIZE rows: of more new ones in one frame, only the newest would stay.
    prepends = [index for index, (kind, _) in enumerate(rows) if kind == "prepend"]
    dropped = set(prepends[: max(len(prepends) - commerce_selectors.FEED_SIZE, 0)])
    frames = []
    # The template's macro, called for each row: no template lookup or context per row.
    order_row = engines["jinja2"].env.get_template(ORDER_ROW_TEMPLATE).module.order_row
    for index, (kind, order) in enumerate(rows):
        if index in dropped:
            continue
        row = order_row(_feed_row(order, reads), kind)
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
            # Jinja2 escapes as it renders, but hands back a plain str: the page includes it as is.
            rendered[panel_id] = mark_safe(render_to_string(template_name, context, using=_ENGINES.get(template_name)))
    return rendered


DAILY_PRESETS = (7, 30, 90)


def render_daily_chart(store: Store, *, first: date, last: date, preset: int | None = None,
                       errors: Iterable[str] = (), now: datetime | None = None) -> str:
    """The daily chart panel for local dates `first`..`last`, with the period before it.

    Each page picks its own range, so this panel is not pushed by the hub: its bar for
    today follows the live revenue KPI in the browser (opspulse/static/src/daily-chart.js).
    """
    day = metric_selectors.local_day(store, now)
    series = metric_selectors.daily_series(store, first=first, last=last)
    currency = store.currency
    today = day.start.date()
    chart = {
        "days": [d.isoformat() for d in series.days],
        "revenue": [float(v) for v in series.revenue],
        "orders": series.orders,
        "previous_days": [d.isoformat() for d in series.previous_days],
        # None: the store's history does not cover the period before, so no line is drawn.
        "previous": [float(v) for v in series.previous_revenue] if series.has_previous else None,
        "today": today.isoformat() if first <= today <= last else None,
        "currency": currency,
    }
    change = percent_change(series.total_revenue, series.previous_total_revenue) if series.has_previous else None
    return render_to_string(
        "live/panels/daily_chart.html",
        {
            "panel_id": DAILY_CHART,
            "store": store,
            "chart_json": json.dumps(chart, separators=(",", ":")),
            "first": first,
            "last": last,
            "today": today,
            "preset": preset,
            "presets": DAILY_PRESETS,
            "max_days": metric_selectors.MAX_RANGE_DAYS,
            "errors": list(errors),
            "total": format_money(series.total_revenue, currency),
            "orders": format_count(sum(series.orders)),
            "has_previous": series.has_previous,
            "previous_total": format_money(series.previous_total_revenue, currency),
            "not_enough_history": NOT_ENOUGH_HISTORY,
            "previous_first": series.previous_days[0],
            "previous_last": series.previous_days[-1],
            "change": None if change is None else _change(series.total_revenue, series.previous_total_revenue),
            "has_sales": any(series.revenue) or (series.has_previous and any(series.previous_revenue)),
        },
    )
