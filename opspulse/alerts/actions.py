"""Alert actions: the only code that writes rules, alert events and their deliveries.

Evaluation fires once per alert and cause, as an AlertEvent outbox row. A condition
rule (low stock, no orders, revenue down, sync trouble) has at most one open episode
per condition, which the database enforces (a partial unique index), so replays and
concurrent evaluations insert nothing twice; the episode resolves when the condition
ends. The drain job evaluates a whole batch of changes against the store's rules, read
once per batch, and records the events it fired with one statement at the end; the
periodic job (opspulse.alerts.tasks) evaluates the rules the clock alone can make true.

A recorded event is announced on its store's live topic (that store's dashboard shows
it), and its email and webhook deliveries are queued after commit.
"""

from __future__ import annotations

import json
import logging
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from opspulse.accounts.audit import record_event
from opspulse.accounts.models import AuditKind, Membership
from opspulse.alerts import conditions
from opspulse.alerts.models import (
    RECENT_ORDER_MINUTES,
    TIMED_TYPES,
    Alert,
    AlertChannel,
    AlertEvent,
    AlertNotification,
    AlertPreference,
    AlertType,
    ChannelDelivery,
    ChannelDeliveryStatus,
    ChannelKind,
    DeliveryAttempt,
    DeliveryKind,
)
from opspulse.commerce.models import NOT_COUNTED, InventoryLevel
from opspulse.lib.broadcast import publish
from opspulse.lib.formatting import format_money
from opspulse.lib.jobs import defer_once, task_named
from opspulse.stores.models import Store

if TYPE_CHECKING:
    from opspulse.accounts.models import Account

logger = logging.getLogger("opspulse.alerts")

INSERT_EVENTS = """
    INSERT INTO {table} (public_id, alert_id, store_id, subject, condition, message, data, fired_at, resolved_at)
    VALUES {rows}
    ON CONFLICT DO NOTHING
    RETURNING id, public_id, alert_id, store_id, message
"""
ROW = "(%s, %s, %s, %s, %s, %s, %s::jsonb, now(), CASE WHEN %s THEN now() END)"


@dataclass
class Firing:
    alert_id: int
    store_id: int
    subject: str
    message: str
    data: dict[str, Any]
    condition: str = ""
    # Opened and ended within the same batch: recorded as already resolved.
    resolved: bool = False


@dataclass
class _Episodes:
    """Open/close requests for one (alert, condition), in the order they were made."""

    steps: list[Firing | None] = field(default_factory=list)


# Each store's active rules as this process last read them, with the store's
# alert_rules_version at that moment: reused while the store row (which every batch
# reads) shows the same version. Rules read just after a change are kept under the
# version before it, and read again at the next batch: never older than the version.
_RULES_KEPT: dict[int, tuple[int, list[Alert]]] = {}
_RULES_KEPT_MAX_STORES = 20_000


def _active_rules(stores: dict[int, Any], *, stores_current: bool) -> dict[int, list[Alert]]:
    """The active rules of `stores` (Store rows by id), in rule order.

    Rules kept from an earlier read are used only for `stores_current` rows (read within
    this transaction): an older Store object's version may be behind the rules.
    """
    found: dict[int, list[Alert]] = {}
    versions = {store_id: getattr(store, "alert_rules_version", None) for store_id, store in stores.items()}
    for store_id, version in versions.items():
        kept = _RULES_KEPT.get(store_id) if stores_current else None
        if kept is not None and version is not None and kept[0] == version:
            found[store_id] = kept[1]
    missing = [store_id for store_id in stores if store_id not in found]
    if missing:
        for store_id in missing:
            found[store_id] = []
        for alert in Alert.objects.filter(store_id__in=missing, is_active=True).order_by("pk"):
            found[alert.store_id].append(alert)
        if len(_RULES_KEPT) > _RULES_KEPT_MAX_STORES:
            _RULES_KEPT.clear()
        for store_id in missing:
            if stores_current and versions[store_id] is not None:
                _RULES_KEPT[store_id] = (versions[store_id], found[store_id])
    return found


class AlertCheck:
    """The active rules of a batch's stores and the firings found while it is applied.

    An imported batch (a shop's history, stock read whole) fires nothing: it only ends the
    low-stock episodes that the stock it brings ends. Orders fire only while recent (each
    rule's window), however late they reach OpsPulse.
    """

    def __init__(self, stores: dict[int, Any], *, rules: list[Alert] | None = None,
                 as_of: datetime | None = None, imported: bool = False, stores_current: bool = False) -> None:
        self.stores = stores
        self.imported = imported
        self.stores_current = stores_current
        self.now = timezone.now()
        self._rules: dict[tuple[int, str], list[Alert]] | None = None
        if rules is not None:  # only these rules, not the stores' active ones
            self._rules = {}
            for alert in rules:
                self._rules.setdefault((alert.store_id, alert.type), []).append(alert)
        # A look at the stock as it stands (a rule was saved): its firings are named by
        # this moment rather than by the levels' last updates.
        self._as_of = as_of
        self._firings: dict[tuple[int, str], Firing] = {}
        self._episodes: dict[tuple[int, str], _Episodes] = {}

    def _active(self, store, alert_type: str) -> list[Alert]:
        if self._rules is None:
            # Found once for every store of the batch, at the first change that needs them.
            self._rules = {}
            for rules in _active_rules(self.stores, stores_current=self.stores_current).values():
                for alert in rules:
                    self._rules.setdefault((alert.store_id, alert.type), []).append(alert)
        return self._rules.get((store.pk, alert_type), [])

    def _fire(self, alert: Alert, *, subject: str, message: str, data: dict[str, Any]) -> None:
        self._firings.setdefault((alert.pk, subject), Firing(alert.pk, alert.store_id, subject, message, data))

    def _open(self, alert: Alert, condition: str, *, subject: str, message: str, data: dict[str, Any]) -> None:
        firing = Firing(alert.pk, alert.store_id, subject, message, data, condition=condition)
        self._episodes.setdefault((alert.pk, condition), _Episodes()).steps.append(firing)

    def _close(self, alert: Alert, condition: str) -> None:
        self._episodes.setdefault((alert.pk, condition), _Episodes()).steps.append(None)

    def order(self, store, order) -> None:
        if self.imported or order.status in NOT_COUNTED or order.is_test:
            return
        age = self.now - order.placed_at
        for alert in self._active(store, AlertType.HIGH_VALUE_ORDER):
            # "It just happened": an order placed before the rule's window is history.
            window = conditions.int_or(alert.config.get("window_minutes"), RECENT_ORDER_MINUTES)
            if age > timedelta(minutes=window):
                continue
            try:
                threshold = Decimal(str(alert.config.get("threshold", "")))
            except InvalidOperation:
                continue
            # The threshold is in the store's currency; an order in another one is not compared.
            if order.currency and order.currency != store.currency:
                continue
            if order.total >= threshold:
                self._fire(
                    alert,
                    subject=f"order:{order.external_id}",
                    message=f"High-value order {order.number}: {format_money(order.total, order.currency)}",
                    data={"order": order.external_id, "total": str(order.total)},
                )

    def stock(self, store, level, previous: int | None) -> None:
        for alert in self._active(store, AlertType.LOW_STOCK):
            config = alert.config
            if config.get("sku") and str(config["sku"]).casefold() != (level.sku or "").casefold():
                continue
            if config.get("location") and str(config["location"]) != level.location_external_id:
                continue
            threshold = conditions.int_or(config.get("threshold"), 5)
            condition = f"stock:{level.item_external_id}:{level.location_external_id}"
            if level.available <= threshold:
                if self.imported:
                    continue
                # Low: an episode opens unless one is open (replays and stale updates never
                # reach here: commerce.actions drops them first).
                self._open(
                    alert,
                    condition,
                    subject=f"{condition}:{(self._as_of or level.platform_updated_at).isoformat()}",
                    message=f"Low stock: {level.display_name} has {level.available} left",
                    data={"item": level.item_external_id, "location": level.location_external_id,
                          "available": level.available},
                )
            elif previous is None or previous <= threshold:
                # Restocked above the threshold: the item's episode, if open, resolves.
                self._close(alert, condition)

    def record(self) -> int:
        """Store the firings not recorded before and announce them; return how many."""
        firings, self._firings = list(self._firings.values()), {}
        episodes, self._episodes = self._episodes, {}
        resolves: list[tuple[int, str]] = []
        if episodes:
            open_now = _open_episodes(list(episodes))
            for key, episode in episodes.items():
                is_open, current, resolve_stored = key in open_now, None, False
                for step in episode.steps:
                    if step is not None and not is_open:
                        firings.append(step)
                        is_open, current = True, step
                    elif step is None and is_open:
                        if current is not None:
                            current.resolved = True
                        else:
                            resolve_stored = True
                        is_open, current = False, None
                if resolve_stored:
                    resolves.append(key)
        if resolves:
            _resolve_episodes(resolves)
        if not firings:
            return 0
        return len(_insert_events(firings, self.stores))


def _open_episodes(keys: list[tuple[int, str]]) -> set[tuple[int, str]]:
    found = AlertEvent.objects.filter(
        alert_id__in={alert_id for alert_id, _ in keys},
        condition__in={condition for _, condition in keys},
        resolved_at__isnull=True,
    ).values_list("alert_id", "condition")
    return set(found) & set(keys)


def _resolve_episodes(keys: list[tuple[int, str]]) -> int:
    query = Q()
    for alert_id, condition in keys:
        query |= Q(alert_id=alert_id, condition=condition)
    return _resolve(AlertEvent.objects.filter(query))


def _resolve(events) -> int:
    """Resolve the open episodes among `events`, tell the dashboards that show them, and
    queue the resolution for the webhooks that got the alert, after commit."""
    episodes = list(events.filter(resolved_at__isnull=True).exclude(condition="").values_list("pk", "store_id"))
    if not episodes:
        return 0
    event_ids = [pk for pk, _ in episodes]
    resolved = AlertEvent.objects.filter(pk__in=event_ids, resolved_at__isnull=True).update(resolved_at=timezone.now())
    if resolved:
        announce_change({store_id for _, store_id in episodes})
        transaction.on_commit(lambda: _queue_resolutions(event_ids), robust=True)
    return resolved


def _queue_resolutions(event_ids: list[int]) -> None:
    for event_id in event_ids:
        defer_resolution(event_id)


# Jobs of opspulse.alerts.tasks, deferred by name.
DISPATCH_EVENT_TASK = "opspulse.alerts.dispatch_event"
DISPATCH_RESOLUTION_TASK = "opspulse.alerts.dispatch_resolution"


def defer_dispatch(event_id: int) -> None:
    defer_once(task_named(DISPATCH_EVENT_TASK, queueing_lock=f"alert-dispatch-{event_id}"), event_id=event_id)


def defer_resolution(event_id: int) -> None:
    defer_once(task_named(DISPATCH_RESOLUTION_TASK, queueing_lock=f"alert-resolution-{event_id}"), event_id=event_id)


def announce_change(store_ids: set[int]) -> None:
    """Tell the open dashboards of these stores that their alerts were resolved or seen."""
    for public_id in Store.objects.filter(pk__in=store_ids).values_list("public_id", flat=True):
        publish(public_id, {"type": "alert_updated"})


def _insert_events(firings: list[Firing], stores: dict[int, Store]) -> list[tuple]:
    """Insert the events that are not recorded yet; announce and queue the new ones."""
    rows = [
        (
            uuid.uuid4(), firing.alert_id, firing.store_id, firing.subject[:200], firing.condition[:200],
            firing.message[:500], json.dumps(firing.data), firing.resolved,
        )
        for firing in firings
    ]
    with connection.cursor() as cursor:
        cursor.execute(
            INSERT_EVENTS.format(table=AlertEvent._meta.db_table, rows=", ".join([ROW] * len(rows))),
            [value for row in rows for value in row],
        )
        fired = cursor.fetchall()
    _announce(fired, stores)
    return fired


def _announce(fired: list[tuple], stores: dict[int, Store]) -> None:
    """Tell the open dashboards of the events' stores, and queue the deliveries after commit."""
    if not fired:
        return
    for _, public_id, _, store_id, message in fired:
        store = stores[store_id]
        publish(
            store.public_id,
            {"type": "alert_fired", "event": str(public_id), "store": str(store.public_id), "message": message},
        )
    event_ids = [event_id for event_id, *_ in fired]
    transaction.on_commit(lambda: _queue_dispatch(event_ids), robust=True)


def _queue_dispatch(event_ids: list[int]) -> None:
    for event_id in event_ids:
        defer_dispatch(event_id)


# Time-based rules, evaluated by the periodic job.

CONDITION_KEYS = {
    AlertType.NO_ORDERS: "no_orders",
    AlertType.REVENUE_DROP: "revenue_drop",
    AlertType.SYNC_TROUBLE: "sync",
}


def evaluate_timed_rules(*, now: datetime | None = None, store_ids: list[int] | None = None) -> int:
    """Open or resolve the episodes of every active time-based rule; return how many fired."""
    now = now or timezone.now()
    # A disconnected store hears nothing any more: "no orders" there is no news.
    rules = (
        Alert.objects.filter(
            is_active=True, type__in=TIMED_TYPES, store__disconnected_at__isnull=True, store__deleted_at__isnull=True
        )
        .select_related("store")
        .order_by("pk")
    )
    if store_ids is not None:
        rules = rules.filter(store_id__in=store_ids)
    fired = 0
    for rule in rules:
        try:
            fired += evaluate_rule(rule, now=now)
        except Exception:
            # One broken rule must not stop the others from being evaluated.
            logger.exception("alerts: evaluating rule %s failed", rule.pk)
    return fired


def evaluate_rule(rule: Alert, *, now: datetime) -> int:
    key = CONDITION_KEYS[AlertType(rule.type)]
    state = conditions.CHECKS[AlertType(rule.type)](rule, now)
    with transaction.atomic():
        if not state.active:
            _resolve_episodes([(rule.pk, key)])
            return 0
        if not state.may_fire:
            return 0
        firing = Firing(rule.pk, rule.store_id, f"{key}:{now.isoformat()}", state.message, state.data, condition=key)
        return len(_insert_events([firing], {rule.store_id: rule.store}))


# Rules.


@transaction.atomic
def create_rule(*, store: Store, type: str, config: dict[str, Any]) -> Alert:
    rule = Alert.objects.create(store=store, type=type, config=config)
    check_current_stock(rule)
    return rule


def update_rule(*, rule: Alert, config: dict[str, Any]) -> Alert:
    """Save a rule's new settings; its open episodes end, to be judged again by the new ones."""
    with transaction.atomic():
        rule.config = config
        rule.save(update_fields=["config", "updated_at"])
        _end_open_episodes(rule)
        check_current_stock(rule)
    return rule


def set_rule_active(*, rule: Alert, active: bool) -> Alert:
    """Pause or resume a rule. A paused rule's open episodes end: it watches nothing."""
    with transaction.atomic():
        rule.is_active = active
        rule.save(update_fields=["is_active", "updated_at"])
        if active:
            check_current_stock(rule)
        else:
            _end_open_episodes(rule)
    return rule


def check_current_stock(rule: Alert) -> int:
    """Open an episode for each item already at or below a low-stock rule's threshold.

    Low-stock rules watch stock changes; a rule just made, changed or resumed looks at
    the stock as it stands, so the items that are low already show up at once instead
    of at their next change. Return how many episodes opened.
    """
    if rule.type != AlertType.LOW_STOCK or not rule.is_active:
        return 0
    threshold = conditions.int_or(rule.config.get("threshold"), 5)
    check = AlertCheck({rule.store_id: rule.store}, rules=[rule], as_of=rule.updated_at)
    for level in InventoryLevel.objects.filter(store_id=rule.store_id, available__lte=threshold).order_by("pk"):
        check.stock(rule.store, level, None)
    return check.record()


def delete_rule(*, rule: Alert) -> None:
    rule.delete()


def _end_open_episodes(rule: Alert) -> None:
    _resolve(rule.events.all())


@transaction.atomic
def acknowledge_event(*, event: AlertEvent, user) -> bool:
    """Mark an event as seen by `user`; False if someone acknowledged it already."""
    acknowledged = AlertEvent.objects.filter(pk=event.pk, acknowledged_at__isnull=True).update(
        acknowledged_at=timezone.now(), acknowledged_by=user
    )
    if acknowledged:
        announce_change({event.store_id})
    return bool(acknowledged)


def acknowledge_all(*, store: Store, user, fired_until: datetime) -> int:
    """Mark as seen by `user` every event of the store that fired up to `fired_until` and
    nobody acknowledged yet (later ones were not on the user's screen); return how many."""
    acknowledged = AlertEvent.objects.filter(
        store=store, acknowledged_at__isnull=True, fired_at__lte=fired_until
    ).update(acknowledged_at=timezone.now(), acknowledged_by=user)
    if acknowledged:
        announce_change({store.pk})
    return acknowledged


# Email preferences and webhook channels.


def save_preference(*, user, account, values: dict[str, Any]) -> AlertPreference:
    preference, _ = AlertPreference.objects.update_or_create(user=user, account=account, defaults=values)
    return preference


@transaction.atomic
def create_channel(
    *, account: Account, store: Store | None = None, kind: str, name: str, url: str, actor=None, request=None
) -> AlertChannel:
    """Add a channel with a new signing secret (shown to the admin to configure the receiver).

    With a store, the channel gets that store's alerts; without, those of every store of the account.
    """
    if store is not None and store.account_id != account.pk:
        raise ValueError("A store's channel belongs to the store's account")
    channel = AlertChannel(account=account, store=store, kind=ChannelKind(kind), name=name, url=url)
    channel.secret = "whsec_" + secrets.token_urlsafe(32)
    channel.save()
    _audit_channel(AuditKind.CHANNEL_ADDED, channel, actor=actor, request=request)
    return channel


@transaction.atomic
def set_channel_active(*, channel: AlertChannel, active: bool, actor=None, request=None) -> None:
    channel.is_active = active
    channel.save(update_fields=["is_active"])
    _audit_channel(
        AuditKind.CHANNEL_CHANGED, channel, actor=actor, request=request, change="resumed" if active else "paused"
    )


@transaction.atomic
def delete_channel(*, channel: AlertChannel, actor=None, request=None) -> None:
    _audit_channel(AuditKind.CHANNEL_REMOVED, channel, actor=actor, request=request)
    channel.delete()


def _audit_channel(kind: AuditKind, channel: AlertChannel, *, actor, request, **details: str) -> None:
    # The URL is a credential (a Slack URL's path is its secret): only its host is kept.
    record_event(
        kind, user=actor, request=request, account=channel.account,
        channel_id=str(channel.public_id), channel_kind=ChannelKind(channel.kind).label, name=channel.name,
        host=urlsplit(channel.url).hostname or "", store=channel.store.name if channel.store_id else None,
        store_id=str(channel.store.public_id) if channel.store_id else None, **details,
    )


# Deliveries.


def dispatch_event(event_id: int) -> tuple[list[int], list[tuple[int, int]]]:
    """Create the event's email notifications and channel deliveries (once).

    Return the ids of the new channel deliveries and the (user, account) pairs with mail to send.
    """
    with transaction.atomic():
        event = (
            AlertEvent.objects.select_for_update(of=("self",)).select_related("store").filter(pk=event_id).first()
        )
        if event is None or event.notified_at is not None:
            return [], []
        account_id = event.store.account_id
        muted = set(
            AlertPreference.objects.filter(account_id=account_id, email_enabled=False).values_list("user_id", flat=True)
        )
        recipients = [
            user_id
            for user_id in Membership.objects.filter(account_id=account_id, user__is_active=True).values_list(
                "user_id", flat=True
            )
            if user_id not in muted
        ]
        AlertNotification.objects.bulk_create(
            [AlertNotification(event=event, user_id=user_id, account_id=account_id) for user_id in recipients],
            ignore_conflicts=True,
        )
        # The store's own channels and its account's account-wide ones.
        channels = list(
            AlertChannel.objects.filter(Q(store_id=event.store_id) | Q(account_id=account_id, store__isnull=True))
            .filter(is_active=True)
            .values_list("pk", flat=True)
        )
        deliveries = _create_deliveries(event, channels, DeliveryKind.FIRED)
        event.notified_at = timezone.now()
        event.save(update_fields=["notified_at"])
        if event.resolved_at is not None and event.resolution_notified_at is None:
            # Opened and ended in one batch, or ended before this ran: the end follows at once
            # (the members' mails of the alert, not sent yet, will say it ended).
            deliveries += _announce_resolution(event)[0]
    return deliveries, [(user_id, account_id) for user_id in recipients]


def dispatch_resolution(event_id: int) -> tuple[list[int], list[tuple[int, int]]]:
    """Create the resolution's deliveries and mails (once): to every active channel the
    alert was posted to and every member it was mailed to, and only once its firing was
    dispatched. Return the new deliveries' ids and the (user, account) pairs with mail to send."""
    with transaction.atomic():
        event = AlertEvent.objects.select_for_update().filter(pk=event_id).first()
        if event is None or event.resolved_at is None or event.resolution_notified_at is not None:
            return [], []
        if event.notified_at is None:
            return [], []  # the firing's dispatch queues the resolution with it
        return _announce_resolution(event)


def _announce_resolution(event: AlertEvent) -> tuple[list[int], list[tuple[int, int]]]:
    """The resolution's deliveries and mails of a locked, dispatched event, marked as queued.

    A member whose mail of the alert is still held (quiet hours, digest) gets no second
    mail: that one says the alert resolved when it is sent.
    """
    channels = ChannelDelivery.objects.filter(
        event=event, kind=DeliveryKind.FIRED, channel__is_active=True
    ).values_list("channel_id", flat=True)
    deliveries = _create_deliveries(event, channels, DeliveryKind.RESOLVED)
    mailed = list(
        AlertNotification.objects.filter(event=event, kind=DeliveryKind.FIRED, sent_at__isnull=False).values_list(
            "user_id", "account_id"
        )
    )
    AlertNotification.objects.bulk_create(
        [
            AlertNotification(event=event, user_id=user_id, account_id=account_id, kind=DeliveryKind.RESOLVED)
            for user_id, account_id in mailed
        ],
        ignore_conflicts=True,
    )
    event.resolution_notified_at = timezone.now()
    event.save(update_fields=["resolution_notified_at"])
    return deliveries, mailed


def _create_deliveries(event: AlertEvent, channel_ids, kind: DeliveryKind) -> list[int]:
    """The event's `kind` deliveries to the channels (once each); return those still pending."""
    ChannelDelivery.objects.bulk_create(
        [ChannelDelivery(event=event, channel_id=channel_id, kind=kind) for channel_id in channel_ids],
        ignore_conflicts=True,
    )
    return list(
        ChannelDelivery.objects.filter(event=event, kind=kind, status=ChannelDeliveryStatus.PENDING).values_list("pk", flat=True)
    )


CLAIM_TIMEOUT = timedelta(minutes=10)


def claim_notifications(*, user_id: int, account_id: int, ids: list[int]) -> list[int]:
    """Claim pending notifications for one sending job; return the ids it got."""
    stale = timezone.now() - CLAIM_TIMEOUT
    with transaction.atomic():
        claimed = list(
            AlertNotification.objects.select_for_update(skip_locked=True)
            .filter(pk__in=ids, user_id=user_id, account_id=account_id, sent_at__isnull=True)
            .filter(Q(claimed_at__isnull=True) | Q(claimed_at__lt=stale))
            .values_list("pk", flat=True)
        )
        AlertNotification.objects.filter(pk__in=claimed).update(claimed_at=timezone.now())
    return claimed


def mark_notifications_sent(*, ids: list[int], digest_on=None, preference: AlertPreference | None = None) -> None:
    with transaction.atomic():
        AlertNotification.objects.filter(pk__in=ids).update(sent_at=timezone.now(), claimed_at=None)
        if digest_on is not None and preference is not None and preference.pk:
            AlertPreference.objects.filter(pk=preference.pk).update(last_digest_on=digest_on)


def release_notifications(*, ids: list[int]) -> None:
    """A send failed: the notifications wait for the next attempt."""
    AlertNotification.objects.filter(pk__in=ids).update(claimed_at=None, attempts=F("attempts") + 1)


def record_attempt(
    *, delivery: ChannelDelivery, started_at: datetime, duration_ms: int, status_code: int | None, error: str,
    final: bool,
) -> DeliveryAttempt:
    """Record one request of a channel delivery; set the delivery's outcome if it is settled."""
    with transaction.atomic():
        attempt = DeliveryAttempt.objects.create(
            delivery=delivery, started_at=started_at, duration_ms=duration_ms, status_code=status_code,
            error=error[:500],
        )
        delivery.attempts += 1
        fields = ["attempts"]
        if attempt.succeeded:
            delivery.status, delivery.delivered_at = ChannelDeliveryStatus.DELIVERED, timezone.now()
            fields += ["status", "delivered_at"]
        elif final:
            delivery.status = ChannelDeliveryStatus.FAILED
            fields.append("status")
        delivery.save(update_fields=fields)
    return attempt

