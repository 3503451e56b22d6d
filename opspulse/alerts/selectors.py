"""Reads of alert rules, events and channels: a page's within one store (or its account), the
minute sweep's across every store."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from uuid import UUID

from django.core.exceptions import ValidationError
from django.db.models import Q, QuerySet
from django.http import Http404
from django.utils import timezone

from opspulse.accounts.models import Account
from opspulse.alerts.models import Alert, AlertChannel, AlertEvent, DeliveryAttempt
from opspulse.stores.models import Store

HISTORY_SIZE = 100
PANEL_SIZE = 6
ACCOUNT_PANEL_SIZE = 8


def rules_of_store(store: Store) -> QuerySet[Alert]:
    return Alert.objects.filter(store=store).order_by("type", "created_at", "pk")


def get_rule(store: Store, public_id: UUID | str | None) -> Alert:
    """The store's rule with `public_id`, else Http404 (rules of other stores are not found)."""
    try:
        return Alert.objects.select_related("store").get(store=store, public_id=public_id)
    except (Alert.DoesNotExist, ValidationError, ValueError):
        raise Http404("No such alert rule") from None


@dataclass(frozen=True)
class HistoryPage:
    events: list[AlertEvent]
    # The public id of this page's last event, when older events follow it.
    older: UUID | None


def history_of_store(store: Store, *, open_only: bool = False, before: str | None = None) -> HistoryPage:
    """A page of the store's events, newest first: the latest, or those older than the
    event `before` (the last of the page before; another store's is not found)."""
    events = AlertEvent.objects.filter(store=store)
    if open_only:
        events = events.filter(resolved_at__isnull=True, acknowledged_at__isnull=True)
    if before:
        fired_at, pk = _position(store, before)
        events = events.filter(Q(fired_at__lt=fired_at) | Q(fired_at=fired_at, pk__lt=pk))
    rows = list(events.select_related("alert", "acknowledged_by").order_by("-fired_at", "-id")[: HISTORY_SIZE + 1])
    older = rows[HISTORY_SIZE - 1].public_id if len(rows) > HISTORY_SIZE else None
    return HistoryPage(events=rows[:HISTORY_SIZE], older=older)


def _position(store: Store, public_id: str):
    try:
        return AlertEvent.objects.values_list("fired_at", "pk").get(store=store, public_id=public_id)
    except (AlertEvent.DoesNotExist, ValidationError, ValueError):
        raise Http404("No such alert") from None


def get_event(store: Store, public_id: UUID | str | None) -> AlertEvent:
    try:
        return AlertEvent.objects.get(store=store, public_id=public_id)
    except (AlertEvent.DoesNotExist, ValidationError, ValueError):
        raise Http404("No such alert") from None


# The panel's count of alerts nobody has acknowledged stops here ("99+").
UNACKNOWLEDGED_SHOWN = 99


def recent_store_events(store: Store, *, limit: int = PANEL_SIZE) -> list[AlertEvent]:
    """The store's latest events, each with its rule, as its dashboard's panel shows them
    (through the store's recent-events index)."""
    return list(AlertEvent.objects.filter(store=store).select_related("alert").order_by("-fired_at", "-id")[:limit])


def unacknowledged_count(store: Store) -> int:
    """How many of the store's alerts nobody has acknowledged, up to UNACKNOWLEDGED_SHOWN + 1."""
    return AlertEvent.objects.filter(store=store, acknowledged_at__isnull=True)[: UNACKNOWLEDGED_SHOWN + 1].count()


# Each store's latest events through the store's recent-events index, merged newest
# first, and how many of the stores' events nobody has acknowledged (capped, through the
# unacknowledged index): one round trip. Without events there is nothing unacknowledged.
RECENT_ACCOUNT_EVENTS_SQL = """
SELECT e.id, e.public_id, e.alert_id, e.store_id, e.subject, e.condition, e.message, e.data, e.fired_at,
       e.resolved_at, e.acknowledged_at, e.acknowledged_by_id, e.notified_at, e.resolution_notified_at,
       a.type AS alert_type,
       (SELECT COUNT(*) FROM (
            SELECT 1 FROM alerts_alertevent
            WHERE store_id = ANY(%(stores)s::bigint[]) AND acknowledged_at IS NULL
            LIMIT %(count_cap)s
       ) AS capped) AS unacknowledged
FROM unnest(%(stores)s::bigint[]) AS s(id)
CROSS JOIN LATERAL (
    SELECT * FROM alerts_alertevent WHERE store_id = s.id ORDER BY fired_at DESC, id DESC LIMIT %(limit)s
) AS e
JOIN alerts_alert AS a ON a.id = e.alert_id
ORDER BY e.fired_at DESC, e.id DESC
LIMIT %(limit)s
"""


@dataclass(frozen=True)
class AccountEvents:
    # Newest first, each with its rule's type as `alert_type`.
    events: list[AlertEvent]
    # Up to UNACKNOWLEDGED_SHOWN + 1.
    unacknowledged: int


def recent_account_events(stores: Iterable[Store], *, limit: int = ACCOUNT_PANEL_SIZE) -> AccountEvents:
    """The latest events of `stores` (already scoped to what the viewer may see) and how
    many of their events nobody has acknowledged, as the overview's panel shows them."""
    store_ids = [store.pk for store in stores]
    if not store_ids:
        return AccountEvents(events=[], unacknowledged=0)
    events = list(
        AlertEvent.objects.raw(
            RECENT_ACCOUNT_EVENTS_SQL,
            {"stores": store_ids, "limit": limit, "count_cap": UNACKNOWLEDGED_SHOWN + 1},
        )
    )
    return AccountEvents(events=events, unacknowledged=events[0].unacknowledged if events else 0)


RECENT_ATTEMPTS = 5


def _with_recent_attempts(channels: QuerySet[AlertChannel]) -> list[AlertChannel]:
    """The channels, each with its last few attempts (`recent_attempts`, each with its event's store)."""
    channels = list(channels.order_by("created_at", "pk"))
    for channel in channels:
        channel.recent_attempts = list(
            DeliveryAttempt.objects.filter(delivery__channel=channel)
            .select_related("delivery__event__store")
            .order_by("-started_at", "-pk")[:RECENT_ATTEMPTS]
        )
    return channels


def channels_of_store(store: Store) -> list[AlertChannel]:
    """The store's own channels, with their recent attempts."""
    return _with_recent_attempts(AlertChannel.objects.filter(store=store))


def account_wide_channels(account: Account) -> QuerySet[AlertChannel]:
    """The channels that get the alerts of every store of `account`."""
    return AlertChannel.objects.filter(account=account, store__isnull=True).order_by("created_at", "pk")


def account_wide_channels_with_attempts(account: Account) -> list[AlertChannel]:
    return _with_recent_attempts(account_wide_channels(account))


def get_channel(store: Store, public_id: UUID | str | None) -> AlertChannel:
    """The store's own channel with `public_id`, else Http404."""
    return _get_channel(AlertChannel.objects.filter(store=store), public_id)


def get_account_wide_channel(account: Account, public_id: UUID | str | None) -> AlertChannel:
    """The account-wide channel of `account` with `public_id`, else Http404 (a store's channel is not one)."""
    return _get_channel(AlertChannel.objects.filter(account=account, store__isnull=True), public_id)


def _get_channel(channels: QuerySet[AlertChannel], public_id: UUID | str | None) -> AlertChannel:
    try:
        return channels.get(public_id=public_id)
    except (AlertChannel.DoesNotExist, ValidationError, ValueError):
        raise Http404("No such channel") from None


# Resolutions older than this are not announced by the sweep any more: news that late
# would only confuse.
RESOLUTION_SWEEP_WINDOW = timedelta(hours=1)


def unannounced_resolutions(*, older_than: timedelta = timedelta(minutes=1)) -> list[int]:
    """Resolved events whose firing was dispatched but whose resolution was not (the
    process stopped right after commit)."""
    now = timezone.now()
    return list(
        AlertEvent.objects.filter(
            notified_at__isnull=False, resolution_notified_at__isnull=True,
            resolved_at__lt=now - older_than, resolved_at__gte=now - RESOLUTION_SWEEP_WINDOW,
        )
        .order_by("pk")
        .values_list("pk", flat=True)[:500]
    )


def undispatched_events(*, older_than: timedelta = timedelta(minutes=1)) -> list[int]:
    """Events whose deliveries were never queued (the process stopped right after commit)."""
    return list(
        AlertEvent.objects.filter(notified_at__isnull=True, fired_at__lt=timezone.now() - older_than)
        .order_by("pk")
        .values_list("pk", flat=True)[:500]
    )
