"""The wallboard: a store's day in very large type, for a screen across the room.

Its regions are rendered here from the dashboard's selectors, each one element with a
stable id that the wallboard's socket sends again (out of band) when it changes. It
shows no customer data at all, since a shared wallboard is seen by anyone in the room
and by anyone holding its link: orders are shown by number, total, time and status.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_CEILING, Decimal
from zoneinfo import ZoneInfo

from django.template.loader import render_to_string

from opspulse.commerce import selectors as commerce_selectors
from opspulse.commerce.models import NOT_COUNTED, Order
from opspulse.lib.formatting import change_from_yesterday, format_count, format_money
from opspulse.live.panels import WB_AOV, WB_CHART, WB_DAY, WB_FEED, WB_ORDERS, WB_REVENUE
from opspulse.metrics import selectors as metric_selectors
from opspulse.stores.models import Store

FEED_SIZE = 8
CHART_HEIGHT = 100
BAR_WIDTH = 10


@dataclass(frozen=True)
class WallOrder:
    """What a wallboard shows of an order."""

    number: str
    total: Decimal
    currency: str
    status: str
    placed_at: datetime


def latest_orders(store: Store, *, limit: int = FEED_SIZE) -> list[WallOrder]:
    # Only these columns are read: customer fields never reach a wallboard's render.
    rows = (
        Order.objects.filter(store=store)
        .order_by("-placed_at", "-id")
        .values_list("number", "total", "currency", "status", "placed_at")[:limit]
    )
    return [WallOrder(*row) for row in rows]


def _comparison(current, previous, *, known: bool) -> dict[str, str]:
    return change_from_yesterday(current, previous, new="No sales by this time yesterday", nothing="—", known=known)


def _value_axis(highest: Decimal) -> tuple[Decimal, list[Decimal]]:
    """Return the top of a value axis that holds `highest`, and its ticks from 0 up.

    Ticks are a round step apart (1, 2 or 5 times a power of ten, at least 1), about four of them.
    """
    rough = highest / 4
    power = Decimal(10) ** rough.adjusted() if rough >= 1 else Decimal(1)
    step = next(power * factor for factor in (1, 2, 5, 10) if power * factor >= rough)
    top = max(step, (highest / step).to_integral_value(rounding=ROUND_CEILING) * step)
    return top, [step * index for index in range(int(top / step) + 1)]


def _hourly_bars(store: Store, day: metric_selectors.LocalDay, *, has_yesterday: bool) -> dict:
    """Revenue per hour of today (bars) with yesterday's hours (ticks), on one value axis;
    no ticks for a yesterday that the store's history does not cover."""
    tz = ZoneInfo(store.timezone)
    today = [Decimal(0)] * 24
    yesterday = [Decimal(0)] * 24
    for timestamp, value in metric_selectors.revenue_hour_buckets(store, day=day).items():
        hour = timestamp.astimezone(tz).hour
        if timestamp >= day.start:
            today[hour] += value
        elif has_yesterday:
            yesterday[hour] += value
    top, ticks = _value_axis(max([*today, *yesterday, Decimal(1)]))
    now_hour = day.now.hour
    bars = []
    for hour in range(24):
        height = int(today[hour] * CHART_HEIGHT / top) if today[hour] > 0 else 0
        bars.append(
            {
                "x": hour * BAR_WIDTH + 1,
                "y": CHART_HEIGHT - height,
                "height": height,
                "tick_y": CHART_HEIGHT - int(yesterday[hour] * CHART_HEIGHT / top),
                "current": hour == now_hour,
                "future": hour > now_hour,
                "label": f"{hour:02d}:00 {format_money(today[hour], store.currency)}",
            }
        )
    return {
        "bars": bars,
        "width": 24 * BAR_WIDTH,
        "height": CHART_HEIGHT,
        "bar_width": BAR_WIDTH - 2,
        "has_sales": any(today) or any(yesterday),
        "has_yesterday": has_yesterday,
        "peak": format_money(max(today), store.currency),
        # Highest first, as the axis reads from the top down.
        "axis": [
            {
                "label": format_money(tick, store.currency, whole=True),
                "y": round(float(CHART_HEIGHT - tick * CHART_HEIGHT / top), 2),
            }
            for tick in reversed(ticks)
        ],
        "hours": ["00:00", "06:00", "12:00", "18:00", "24:00"],
    }


def _status_label(status: str) -> str:
    return status.replace("_", " ").capitalize()


def render_regions(store: Store, *, oob: bool, now: datetime | None = None) -> dict[str, str]:
    """Return {region id: HTML} for every region of the store's wallboard, read now."""
    day = metric_selectors.local_day(store, now)
    summary = commerce_selectors.today_summary(store, day=day)
    currency = store.currency
    tz = ZoneInfo(store.timezone)
    aov, yesterday_aov = summary.average_order_value, summary.yesterday_average_order_value
    known = summary.has_yesterday

    def yesterday_by_now(value: str) -> str:
        return f"Yesterday by now {value}" if known else ""

    metrics = {
        WB_REVENUE: {
            "label": "Revenue today",
            "value": format_money(summary.revenue, currency),
            "comparison": _comparison(summary.revenue, summary.yesterday_revenue, known=known),
            "detail": yesterday_by_now(format_money(summary.yesterday_revenue, currency)),
            "primary": True,
        },
        WB_ORDERS: {
            "label": "Orders today",
            "value": format_count(summary.orders),
            "comparison": _comparison(summary.orders, summary.yesterday_orders, known=known),
            "detail": yesterday_by_now(format_count(summary.yesterday_orders)),
        },
        WB_AOV: {
            "label": "Average order",
            "value": format_money(aov, currency),
            "comparison": _comparison(aov, yesterday_aov, known=known),
            "detail": yesterday_by_now(format_money(yesterday_aov, currency)),
        },
    }
    rendered = {
        # The local date, not the aware time: templates would show that in UTC.
        WB_DAY: render_to_string(
            "live/wallboard/day.html", {"id": WB_DAY, "oob": oob, "date": day.now.date(), "timezone": store.timezone}
        )
    }
    for region_id, context in metrics.items():
        rendered[region_id] = render_to_string("live/wallboard/metric.html", {"id": region_id, "oob": oob, **context})
    rendered[WB_CHART] = render_to_string(
        "live/wallboard/chart.html", {"id": WB_CHART, "oob": oob, **_hourly_bars(store, day, has_yesterday=known)}
    )
    rows = [
        {
            "number": order.number,
            "total": format_money(order.total, order.currency),
            "status": order.status,
            "status_label": _status_label(order.status),
            "voided": order.status in NOT_COUNTED,
            "time": order.placed_at.astimezone(tz).strftime("%H:%M" if order.placed_at >= day.start else "%a %H:%M"),
            "today": order.placed_at >= day.start,
        }
        for order in latest_orders(store)
    ]
    rendered[WB_FEED] = render_to_string("live/wallboard/feed.html", {"id": WB_FEED, "oob": oob, "rows": rows})
    return rendered
