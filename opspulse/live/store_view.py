"""What a store's sales panels show, kept current from live messages between reads.

A new order's message carries the feed row (number, status, total, first name, city,
time) and the metric message carries the buckets' new values, so the hub of a store
(opspulse.live.hub) can show a new order without reading the database: the KPIs and
the chart are rendered from this view, and the order goes to the top of each page's
feed as one row. Messages that carry no such data (stock, carts, alerts, or a message
from an older writer) still mark panels for a re-read, and every re-read replaces
what it read here.

Messages arrive in commit order, and values in them are absolute (the bucket after the
write, the order as written), so applying a message twice, or one the re-read already
saw, leaves the view as it was.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from opspulse.commerce import selectors as commerce_selectors
from opspulse.commerce.models import NOT_COUNTED
from opspulse.live.panels import (
    KPI_AOV,
    KPI_ORDERS,
    KPI_ORDERS_PER_CART,
    KPI_REVENUE,
    KPI_UNITS,
    ORDER_CHANGES,
    ORDER_FEED,
    ORDER_REREAD_PANELS,
    PANELS_FOR_MESSAGE,
    REVENUE_CHART,
    SALES_PANELS,
)
from opspulse.metrics import selectors as metric_selectors
from opspulse.metrics.models import Granularity, MetricName

ORDER_MESSAGES = frozenset({"new_order", "order_updated"})
ORDER_FIELDS = ("order", "number", "status", "total", "currency", "placed_at", "first_name", "city")

RowChange = tuple[Literal["prepend", "update"], commerce_selectors.FeedOrder]

# Today's day buckets the view follows: the summary's field, and the panels showing it.
DAY_BUCKETS: dict[str, tuple[str, frozenset[str]]] = {
    MetricName.REVENUE: ("revenue", frozenset({KPI_REVENUE, KPI_AOV, REVENUE_CHART})),
    MetricName.ORDERS: ("orders", frozenset({KPI_ORDERS, KPI_AOV, KPI_ORDERS_PER_CART})),
    MetricName.UNITS_SOLD: ("units", frozenset({KPI_UNITS})),
    MetricName.CARTS: ("carts", frozenset({KPI_ORDERS_PER_CART})),
}


@dataclass
class ViewChange:
    """What applying messages changed: panels to render from the view, feed rows to send,
    and panels that must be read from the database instead."""

    panels: set[str] = field(default_factory=set)
    rows: list[RowChange] = field(default_factory=list)
    reread: set[str] = field(default_factory=set)

    def __bool__(self) -> bool:
        return bool(self.panels or self.rows or self.reread)


@dataclass
class StoreView:
    day: metric_selectors.LocalDay
    summary: commerce_selectors.DaySummary
    hours: dict[datetime, Decimal]
    feed: list[commerce_selectors.FeedOrder]

    def apply(self, messages: list[dict[str, Any]]) -> ViewChange:
        """Apply `messages` in order."""
        change = ViewChange()
        for message in messages:
            if not isinstance(message, dict):
                continue
            kind = message.get("type")
            if kind in ORDER_MESSAGES and (order := _feed_order(message)) is not None:
                changed = self._apply_order(order, change)
                if changed and order.placed_at >= self.day.start:
                    # Best sellers need the order's line items, which no message carries.
                    change.reread |= ORDER_REREAD_PANELS
                if changed and order.status in NOT_COUNTED:
                    change.reread.add(ORDER_CHANGES)
            elif kind == "metric_update" and isinstance(message.get("buckets"), list):
                self._apply_buckets(message["buckets"], change)
            else:
                change.reread |= PANELS_FOR_MESSAGE.get(kind, frozenset())
        if ORDER_FEED in change.panels:
            change.rows.clear()  # the whole feed goes out instead
        return change

    def _apply_order(self, order: commerce_selectors.FeedOrder, change: ViewChange) -> bool:
        """Show `order` in the feed; return False if it is the very order shown already."""
        for index, shown in enumerate(self.feed):
            if shown.external_id == order.external_id:
                if shown == order:
                    return False
                self.feed[index] = order
                change.rows.append(("update", order))
                return True
        if len(self.feed) >= commerce_selectors.FEED_SIZE and order.placed_at < self.feed[-1].placed_at:
            return True  # older than every order shown, but it may still be today's
        # Newest first; an order placed in the same second as a shown one came later.
        position = next(
            (index for index, shown in enumerate(self.feed) if shown.placed_at <= order.placed_at), len(self.feed)
        )
        had_today_rows = bool(self.feed) and self.feed[0].placed_at >= self.day.start
        self.feed.insert(position, order)
        del self.feed[commerce_selectors.FEED_SIZE :]
        if position == 0 and had_today_rows:
            # The page drops its oldest row itself when it has more than FEED_SIZE.
            change.rows.append(("prepend", order))
        else:
            change.panels.add(ORDER_FEED)
        return True

    def _apply_buckets(self, buckets: list[Any], change: ViewChange) -> None:
        for bucket in buckets:
            try:
                name, granularity, at, raw = bucket
                timestamp = datetime.fromisoformat(at)
                value = Decimal(raw)
            except (TypeError, ValueError, InvalidOperation):
                change.reread |= SALES_PANELS
                continue
            if granularity == Granularity.DAY and timestamp == self.day.start:
                if name in DAY_BUCKETS:
                    field_name, panels = DAY_BUCKETS[name]
                    if name != MetricName.REVENUE:
                        value = int(value)
                    if value != getattr(self.summary, field_name):
                        self.summary = replace(self.summary, **{field_name: value})
                        change.panels |= panels
            elif (
                granularity == Granularity.HOUR
                and name == MetricName.REVENUE
                and self.day.yesterday_start <= timestamp < self.day.end
                and self.hours.get(timestamp) != value
            ):
                self.hours[timestamp] = value
                change.panels.add(REVENUE_CHART)


def _feed_order(message: dict[str, Any]) -> commerce_selectors.FeedOrder | None:
    """The feed row a message carries, or None if it lacks any of it."""
    if not all(isinstance(message.get(key), str) for key in ORDER_FIELDS):
        return None
    try:
        return commerce_selectors.FeedOrder(
            external_id=message["order"],
            number=message["number"],
            total=Decimal(message["total"]),
            currency=message["currency"],
            status=message["status"],
            first_name=message["first_name"],
            city=message["city"],
            placed_at=datetime.fromisoformat(message["placed_at"]),
            is_test=message.get("test") is True,
        )
    except (ValueError, InvalidOperation):
        return None


def renewed(view: StoreView | None, day: metric_selectors.LocalDay, parts: dict[str, Any]) -> StoreView | None:
    """The view after a database read of `parts` (summary, hours, feed) on `day`.

    A read of the same day replaces what it read; a view of an earlier day is dropped,
    and a new one needs all three parts.
    """
    parts = {name: (dict(value) if name == "hours" else list(value) if name == "feed" else value)
             for name, value in parts.items()}
    if view is not None and view.day.start == day.start:
        for name, value in parts.items():
            setattr(view, name, value)
        return view
    if {"summary", "hours", "feed"} <= parts.keys():
        return StoreView(day=day, **parts)
    return None
