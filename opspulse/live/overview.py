"""The all-stores overview: one live tile per store of an account, totals per currency,
and the latest alerts of all its stores.

Totals are summed per currency and never converted: OpsPulse has no exchange rates,
and a made-up rate would make every total wrong. Each tile is one element with a
stable id; the overview's socket sends again only the tiles (and totals) that changed,
and the alerts when a store's alerts did.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from opspulse.alerts import selectors as alert_selectors
from opspulse.alerts.delivery import preference_for
from opspulse.alerts.models import AlertType
from opspulse.commerce import selectors as commerce_selectors
from opspulse.lib.formatting import change_from_yesterday, format_count, format_money
from opspulse.live.fragments import alert_state
from opspulse.live.panels import ALERTS_ID, TOTALS_ID, tile_id
from opspulse.metrics import selectors as metric_selectors
from opspulse.platforms.models import Backfill, BackfillStatus
from opspulse.stores.models import Integration, IntegrationStatus, Store

@dataclass(frozen=True)
class StoreDay:
    store: Store
    summary: commerce_selectors.DaySummary


def store_days(stores: Iterable[Store], *, now: datetime | None = None) -> list[StoreDay]:
    """Each store's day so far, in its own timezone."""
    return [StoreDay(store, commerce_selectors.today_summary(store, day=metric_selectors.local_day(store, now))) for store in stores]


def sync_states(stores: Iterable[Store]) -> dict[int, dict[str, str]]:
    """For each store, a short sync state: {"tone": ok|busy|problem|off, "text": ...}."""
    ids = [store.pk for store in stores]
    integrations = {
        store_id: (status, app_installed)
        for store_id, status, app_installed in Integration.objects.filter(store_id__in=ids).values_list(
            "store_id", "status", "app_installed"
        )
    }
    importing = set(
        Backfill.objects.filter(store_id__in=ids, status=BackfillStatus.RUNNING).values_list("store_id", flat=True)
    )
    states = {}
    for store_id in ids:
        status, _ = integrations.get(store_id, (None, False))
        if status is None or status == IntegrationStatus.INACTIVE:
            states[store_id] = {"tone": "off", "text": "Not connected"}
        elif status == IntegrationStatus.ERROR:
            states[store_id] = {"tone": "problem", "text": "Sync problem"}
        elif store_id in importing:
            states[store_id] = {"tone": "busy", "text": "Importing history"}
        else:
            states[store_id] = {"tone": "ok", "text": "In sync"}
    return states


def render_tile(store_day: StoreDay, sync: dict[str, str], *, oob: bool) -> str:
    store, summary = store_day.store, store_day.summary
    return render_to_string(
        "live/overview/tile.html",
        {
            "id": tile_id(store),
            "oob": oob,
            "store": store,
            "url": reverse("dashboard", args=[store.public_id]),
            "revenue": format_money(summary.revenue, store.currency),
            "orders": format_count(summary.orders),
            "aov": format_money(summary.average_order_value, store.currency),
            "change": change_from_yesterday(
                summary.revenue, summary.yesterday_revenue, new="New today", nothing="No sales yet",
                known=summary.has_yesterday,
            ),
            "sync": sync,
        },
    )


def currency_totals(store_days: Iterable[StoreDay]) -> list[dict[str, str]]:
    """One total per currency (revenue, orders, stores), largest order count first."""
    totals: dict[str, dict] = {}
    for store_day in store_days:
        entry = totals.setdefault(
            store_day.store.currency.upper(), {"revenue": Decimal(0), "orders": 0, "stores": 0}
        )
        entry["revenue"] += store_day.summary.revenue
        entry["orders"] += store_day.summary.orders
        entry["stores"] += 1
    return [
        {
            "currency": currency,
            "revenue": format_money(entry["revenue"], currency),
            "orders": format_count(entry["orders"]),
            "order_count": entry["orders"],
            "stores": entry["stores"],
        }
        for currency, entry in sorted(totals.items(), key=lambda item: (-item[1]["orders"], item[0]))
    ]


def render_totals(store_days: Iterable[StoreDay], *, oob: bool) -> str:
    return render_to_string(
        "live/overview/totals.html", {"id": TOTALS_ID, "oob": oob, "totals": currency_totals(store_days)}
    )


def viewer_timezone(user_id: int, account_id: int) -> str:
    """The timezone the member reads times in (their alert settings': UTC unless they chose one)."""
    return preference_for(user_id, account_id).timezone


def _alert_time(fired_at: datetime, tz: ZoneInfo, now: datetime) -> str:
    local, today = fired_at.astimezone(tz), now.astimezone(tz).date()
    if local.date() == today:
        return local.strftime("%H:%M")
    if local.date() == today - timedelta(days=1):
        return local.strftime("Yesterday %H:%M")
    return local.strftime("%b %-d, %H:%M")


def render_alerts(stores: list[Store], *, tz: str, oob: bool, now: datetime | None = None) -> str:
    """The latest alerts of `stores` (those the viewer may see), each with its store, in the viewer's `tz`."""
    recent = alert_selectors.recent_account_events(stores)
    by_id = {store.pk: store for store in stores}
    zone, now = ZoneInfo(tz), now or timezone.now()
    events = [
        {
            "id": str(event.public_id),
            "store": by_id[event.store_id].name,
            "history_url": reverse("alert-history", args=[by_id[event.store_id].public_id]),
            "message": event.message,
            "kind": event.alert_type,
            "kind_label": AlertType(event.alert_type).label,
            "time": _alert_time(event.fired_at, zone, now),
            "fired_at": event.fired_at,
            "state": alert_state(event),
        }
        for event in recent.events
    ]
    shown = alert_selectors.UNACKNOWLEDGED_SHOWN
    return render_to_string(
        "live/overview/alerts.html",
        {
            "id": ALERTS_ID,
            "oob": oob,
            "events": events,
            "low_stock_kind": AlertType.LOW_STOCK,
            "latest": f"{events[0]['store']}: {events[0]['message']}" if events else "",
            "unacknowledged": recent.unacknowledged,
            "unacknowledged_label": f"{shown}+" if recent.unacknowledged > shown else str(recent.unacknowledged),
            "timezone": tz,
        },
    )


def render_overview(stores: list[Store], *, oob: bool, tz: str = "UTC", now: datetime | None = None) -> dict[str, str]:
    """Return {element id: HTML}: every store's tile, the per-currency totals and the alerts."""
    days = store_days(stores, now=now)
    syncs = sync_states(stores)
    rendered = {tile_id(day.store): render_tile(day, syncs[day.store.pk], oob=oob) for day in days}
    rendered[TOTALS_ID] = render_totals(days, oob=oob)
    rendered[ALERTS_ID] = render_alerts(stores, tz=tz, oob=oob, now=now)
    return rendered


def render_changed(
    stores: list[Store], dirty: set[int], days: dict[int, StoreDay], *, alerts: bool = False, tz: str = "UTC",
    now: datetime | None = None,
) -> dict[str, str]:
    """Re-read the `dirty` stores into `days` (by store id); return their tiles and the
    totals, and the alerts if `alerts` (some store's alerts changed)."""
    changed = [store for store in stores if store.pk in dirty]
    for store_day in store_days(changed, now=now):
        days[store_day.store.pk] = store_day
    syncs = sync_states(changed)
    rendered = {tile_id(store): render_tile(days[store.pk], syncs[store.pk], oob=True) for store in changed}
    rendered[TOTALS_ID] = render_totals([days[store.pk] for store in stores if store.pk in days], oob=True)
    if alerts:
        rendered[ALERTS_ID] = render_alerts(stores, tz=tz, oob=True, now=now)
    return rendered
