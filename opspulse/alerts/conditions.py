"""Whether a time-based rule's condition holds now: reads only, no writes.

Each check returns a `Condition`: `active` starts an episode (when `may_fire`) and
its end resolves it. All times are compared in the store's timezone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from django.db.models import Sum

from opspulse.alerts.models import Alert, AlertType
from opspulse.commerce.models import NOT_COUNTED, Order
from opspulse.lib.formatting import format_money
from opspulse.stores.models import Integration, IntegrationStatus

# How far back "no orders" counts opening hours: a store quiet for longer is still quiet.
NO_ORDERS_LOOKBACK = timedelta(days=14)

# Webhook deliveries are ingest's (a layer above alerts), which registers how to read a
# store's latest one and the count of its failed ones that can still be retried (their
# body kept) from IngestConfig.ready(): opspulse.ingest.selectors.
_webhook_readers: dict[str, Callable[[int], Any]] = {}


def read_webhooks_with(
    *, last_received_at: Callable[[int], datetime | None], retryable_count: Callable[[int], int]
) -> None:
    _webhook_readers.update(last_received_at=last_received_at, retryable_count=retryable_count)


@dataclass(frozen=True)
class Condition:
    active: bool
    # False while the condition holds but the rule should stay quiet (outside opening hours).
    may_fire: bool = True
    message: str = ""
    data: dict[str, Any] = field(default_factory=dict)


def parse_time(value: Any, default: time) -> time:
    try:
        return time.fromisoformat(str(value))
    except ValueError:
        return default


def decimal_or(value: Any, default: Decimal) -> Decimal:
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return default


def int_or(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def opening_hours(config: dict[str, Any]) -> tuple[set[int], time, time]:
    weekdays = {int_or(day, -1) for day in config.get("weekdays", range(7))}
    return weekdays, parse_time(config.get("start"), time(0, 0)), parse_time(config.get("end"), time(23, 59))


def is_open(config: dict[str, Any], local: datetime) -> bool:
    weekdays, start, end = opening_hours(config)
    return local.weekday() in weekdays and start <= local.time() < end


def opening_time_between(config: dict[str, Any], tz: ZoneInfo, since: datetime, until: datetime) -> timedelta:
    """Return how much of [since, until) falls within the opening hours."""
    weekdays, start, end = opening_hours(config)
    total = timedelta()
    day = since.astimezone(tz).date()
    last = until.astimezone(tz).date()
    while day <= last:
        if day.weekday() in weekdays:
            opens = datetime.combine(day, start, tzinfo=tz)
            closes = datetime.combine(day, end, tzinfo=tz)
            overlap = min(closes, until) - max(opens, since)
            if overlap > timedelta():
                total += overlap
        day += timedelta(days=1)
    return total


def no_orders(alert: Alert, now: datetime) -> Condition:
    store = alert.store
    tz = ZoneInfo(store.timezone)
    hours = max(int_or(alert.config.get("hours"), 3), 1)
    # A test checkout is no sign that customers are buying.
    last_order = (
        Order.objects.filter(store=store, is_test=False)
        .order_by("-placed_at")
        .values_list("placed_at", flat=True)
        .first()
    )
    # A store without any order yet counts from the rule's creation.
    since = max(last_order or alert.created_at, now - NO_ORDERS_LOOKBACK)
    quiet = opening_time_between(alert.config, tz, since, now)
    if quiet < timedelta(hours=hours):
        return Condition(active=False)
    return Condition(
        active=True,
        may_fire=is_open(alert.config, now.astimezone(tz)),
        message=f"No orders on {store.name} for {hours} hour{'s' if hours != 1 else ''} of opening time",
        data={"hours": hours, "last_order_at": last_order.isoformat() if last_order else None},
    )


def _revenue(store, start: datetime, end: datetime) -> Decimal:
    total = (
        Order.objects.filter(store=store, placed_at__gte=start, placed_at__lt=end)
        .exclude(status__in=NOT_COUNTED)
        .aggregate(total=Sum("counted_revenue"))["total"]
    )
    return total or Decimal(0)


def revenue_drop(alert: Alert, now: datetime) -> Condition:
    """Today's revenue so far against yesterday's by the same local time."""
    store = alert.store
    tz = ZoneInfo(store.timezone)
    local = now.astimezone(tz)
    today_start = datetime.combine(local.date(), time(0, 0), tzinfo=tz)
    yesterday = local.date() - timedelta(days=1)
    yesterday_start = datetime.combine(yesterday, time(0, 0), tzinfo=tz)
    yesterday_now = datetime.combine(yesterday, local.time(), tzinfo=tz)
    percent = decimal_or(alert.config.get("percent"), Decimal(30))
    minimum = decimal_or(alert.config.get("minimum"), Decimal(0))
    before = _revenue(store, yesterday_start, yesterday_now)
    if before <= 0 or before < minimum:
        return Condition(active=False)
    today = _revenue(store, today_start, now)
    drop = (before - today) / before * 100
    if drop < percent:
        return Condition(active=False)
    return Condition(
        active=True,
        message=(
            f"Revenue on {store.name} is down {drop.quantize(Decimal(1))}% on yesterday by this time: "
            f"{format_money(today, store.currency)} against {format_money(before, store.currency)}"
        ),
        data={"today": str(today), "yesterday": str(before), "percent": str(percent)},
    )


def sync_trouble(alert: Alert, now: datetime) -> Condition:
    store = alert.store
    problems = []
    if alert.config.get("integration_error", True):
        integration = Integration.objects.filter(store=store).only("status", "last_error").first()
        if integration is not None and integration.status == IntegrationStatus.ERROR:
            detail = f": {integration.last_error[:200]}" if integration.last_error else ""
            problems.append(f"the {store.get_platform_display()} connection has an error{detail}")
    hours = int_or(alert.config.get("webhook_hours"), 0)
    if hours > 0:
        last = _webhook_readers["last_received_at"](store.pk)
        if now - (last or alert.created_at) >= timedelta(hours=hours):
            problems.append(f"no webhook received for {hours} hour{'s' if hours != 1 else ''}")
    # Until they are retried and processed: a failed delivery is data missing from the dashboard.
    if alert.config.get("failed_deliveries", True):
        failed = _webhook_readers["retryable_count"](store.pk)
        if failed:
            plural = "s" if failed != 1 else ""
            problems.append(f"{failed} webhook{plural} could not be processed (retry on the dashboard)")
    if not problems:
        return Condition(active=False)
    return Condition(
        active=True,
        message=f"Sync trouble on {store.name}: " + "; ".join(problems),
        data={"problems": problems},
    )


CHECKS = {
    AlertType.NO_ORDERS: no_orders,
    AlertType.REVENUE_DROP: revenue_drop,
    AlertType.SYNC_TROUBLE: sync_trouble,
}
