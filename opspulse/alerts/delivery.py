"""Sending alerts out: mail to members, signed posts to webhook channels.

Times are shown in the recipient's timezone: a member's own (their alert preferences)
in mail, the store's in Slack messages and webhook bodies, which no one person reads.

The jobs in opspulse.alerts.tasks call these; state changes go through alerts.actions.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import ssl
import time
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import dateformat, timezone

from opspulse.accounts.models import Membership
from opspulse.alerts import actions
from opspulse.alerts.models import (
    AlertNotification,
    AlertPreference,
    ChannelDelivery,
    ChannelKind,
    DeliveryKind,
    ChannelDeliveryStatus,
)
from opspulse.lib import http

# A notification whose mail failed this often is given up on.
MAX_MAIL_ATTEMPTS = 5
SIGNATURE_HEADER = "X-OpsPulse-Signature"


class RetryableDeliveryError(Exception):
    """The receiver could not be reached or failed (5xx): worth trying again later."""


# Mail.


def preference_for(user_id: int, account_id: int) -> AlertPreference:
    """The member's saved preference, or the default (one mail per alert, UTC)."""
    return AlertPreference.objects.filter(user_id=user_id, account_id=account_id).first() or AlertPreference(
        user_id=user_id, account_id=account_id
    )


def in_quiet_hours(preference: AlertPreference, local: datetime) -> bool:
    start, end = preference.quiet_start, preference.quiet_end
    if start is None or end is None or start == end:
        return False
    now = local.time()
    if start < end:
        return start <= now < end
    return now >= start or now < end  # spans midnight, e.g. 22:00–07:00


def zone_named(name: str) -> ZoneInfo:
    """The timezone called `name`, or UTC if there is none by that name."""
    try:
        return ZoneInfo(name)
    except (KeyError, ValueError):
        return ZoneInfo("UTC")


def local_time(preference: AlertPreference, now: datetime) -> datetime:
    return now.astimezone(zone_named(preference.timezone))


def shown_time(moment: datetime, zone: ZoneInfo) -> str:
    """`moment` as a message shows it in `zone`, e.g. "Dec 6, 23:42"."""
    return dateformat.format(timezone.localtime(moment, zone), "M j, H:i")


def mail_due(preference: AlertPreference, now: datetime) -> bool:
    """Whether the member's pending alerts may be mailed now."""
    if not preference.email_enabled:
        return False
    local = local_time(preference, now)
    if preference.daily_digest:
        return local.hour >= preference.digest_hour and preference.last_digest_on != local.date()
    return not in_quiet_hours(preference, local)


def send_pending_mail(user_id: int, account_id: int, *, now: datetime | None = None) -> int:
    """Mail the member's pending alerts if their preferences allow it now; return how many."""
    now = now or timezone.now()
    preference = preference_for(user_id, account_id)
    if not mail_due(preference, now):
        return 0
    pending = list(
        AlertNotification.objects.filter(
            user_id=user_id, account_id=account_id, sent_at__isnull=True, attempts__lt=MAX_MAIL_ATTEMPTS
        ).values_list("pk", flat=True)
    )
    if not pending:
        return 0
    claimed = actions.claim_notifications(user_id=user_id, account_id=account_id, ids=pending)
    if not claimed:
        return 0
    membership = Membership.objects.select_related("user", "account").filter(
        user_id=user_id, account_id=account_id, user__is_active=True
    ).first()
    if membership is None:
        # No longer a member: what was queued for them is dropped, not sent.
        actions.mark_notifications_sent(ids=claimed)
        return 0
    notifications = sorted(
        AlertNotification.objects.filter(pk__in=claimed).select_related("event__store", "event__alert"),
        key=lambda notification: (_happened_at(notification), notification.event_id, notification.kind),
    )
    local = local_time(preference, now)
    try:
        _send_mail(membership, notifications, preference=preference, digest=preference.daily_digest)
    except Exception:
        actions.release_notifications(ids=claimed)
        raise
    actions.mark_notifications_sent(
        ids=claimed, digest_on=local.date() if preference.daily_digest else None, preference=preference
    )
    return len(notifications)


def _happened_at(notification: AlertNotification) -> datetime:
    event = notification.event
    if notification.kind == DeliveryKind.RESOLVED and event.resolved_at is not None:
        return event.resolved_at
    return event.fired_at


def _send_mail(
    membership, notifications: list[AlertNotification], *, preference: AlertPreference, digest: bool
) -> None:
    zone = zone_named(preference.timezone)
    rows = []
    for notification in notifications:
        event = notification.event
        resolution = notification.kind == DeliveryKind.RESOLVED
        rows.append({
            "message": f"Resolved: {event.message}" if resolution else event.message,
            "resolution": resolution,
            "kind": event.alert.get_type_display(),
            "store": event.store.name,
            "fired_at": shown_time(event.fired_at, zone),
            # An alert that ended before its mail went out (held, or in a digest) says so.
            "resolved_at": shown_time(event.resolved_at, zone) if event.resolved_at else None,
            "history_url": settings.PUBLIC_URL + reverse("alert-history", args=[event.store.public_id]),
        })
    context = {
        "account_name": membership.account.name,
        "events": rows,
        "count": len(rows),
        "digest": digest,
        "timezone": zone.key,
        "preferences_url": settings.PUBLIC_URL + reverse("alert-preferences"),
    }
    prefix = getattr(settings, "ACCOUNT_EMAIL_SUBJECT_PREFIX", "")
    subject = prefix + " ".join(render_to_string("alerts/email/alert_subject.txt", context).split())
    mail = EmailMultiAlternatives(
        subject=subject[:200], body=render_to_string("alerts/email/alert_message.txt", context),
        to=[membership.user.email],
    )
    mail.attach_alternative(render_to_string("alerts/email/alert_message.html", context), "text/html")
    mail.send()


# Webhook channels.


def sign(body: bytes, secret: str) -> str:
    """The signature header's value: the HMAC-SHA256 of the whole body, whose `timestamp`
    it thereby covers (docs/alert-webhooks.md shows a receiver checking both)."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def slack_escape(text: str) -> str:
    """Escape text for a Slack message: `&`, `<` and `>` would otherwise be read as
    mentions and links (https://api.slack.com/reference/surfaces/formatting#escaping)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def payload(delivery: ChannelDelivery, *, sent_at: datetime | None = None) -> bytes:
    """The body of one attempt, with its times in the store's timezone. A webhook's says
    when it was sent (`timestamp`, Unix seconds) so that a receiver can refuse a replayed post."""
    event = delivery.event
    store = event.store
    zone = zone_named(store.timezone)
    history_url = settings.PUBLIC_URL + reverse("alert-history", args=[store.public_id])
    resolution = delivery.kind == DeliveryKind.RESOLVED
    if delivery.channel.kind == ChannelKind.SLACK:
        # The store's name and the message (product titles, SKUs, cities) are the merchant's text.
        text = f"Resolved: {event.message}" if resolution else event.message
        if resolution and event.resolved_at:
            when = f"resolved {shown_time(event.resolved_at, zone)}"
        else:
            when = f"fired {shown_time(event.fired_at, zone)}"
        body: dict[str, Any] = {
            "text": f"{slack_escape(text)} ({slack_escape(store.name)}) {when} ({zone.key}) {history_url}"
        }
    else:
        body = {
            "type": "alert.resolved" if resolution else "alert.fired",
            "timestamp": int((sent_at or timezone.now()).timestamp()),
            "event": {
                "id": str(event.public_id),
                "alert_type": event.alert.type,
                "message": event.message,
                "store": {"id": str(store.public_id), "name": store.name, "currency": store.currency,
                          "timezone": zone.key},
                "fired_at": timezone.localtime(event.fired_at, zone).isoformat(),
                "resolved_at": (
                    timezone.localtime(event.resolved_at, zone).isoformat() if resolution and event.resolved_at else None
                ),
                "data": event.data,
                "url": history_url,
            },
        }
    return json.dumps(body, separators=(",", ":")).encode()


def _post(url: str, body: bytes, headers: dict[str, str]) -> http.Reply:
    http.check_url(url)
    with http.client(guarded=True) as client:
        return http.send(client, "POST", url, content=body, headers=headers,
                         deadline=settings.ALERT_WEBHOOK_TIMEOUT_SECONDS)


def failure_reason(exc: Exception) -> str:
    """What a merchant sees of a failed post: a few generic reasons, never the socket's own
    error (which would map internal hosts and ports)."""
    if isinstance(exc, http.BlockedAddress):
        return "address not allowed"
    if isinstance(exc, http.ReplyTooLarge):
        return "reply too large"
    if isinstance(exc, httpx.TimeoutException):
        return f"timed out after {settings.ALERT_WEBHOOK_TIMEOUT_SECONDS:g} s"
    if _caused_by(exc, ssl.SSLError):
        return "TLS error"
    if isinstance(exc, httpx.ConnectError):
        return "could not connect"
    return "connection failed"


def _caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, kind):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def post_delivery(delivery_id: int, *, final: bool) -> str:
    """Make one attempt at a channel delivery and record it; return the delivery's status.

    Raise RetryableDeliveryError on a network error, a timeout, a reply too large or a
    5xx/429 answer unless `final`; a 3xx or 4xx answer or a refused address fails the
    delivery at once.
    """
    delivery = (
        ChannelDelivery.objects.select_related("channel", "event__store", "event__alert").filter(pk=delivery_id).first()
    )
    if delivery is None:
        return ChannelDeliveryStatus.FAILED  # the channel (or the alert) was deleted meanwhile
    if delivery.status != ChannelDeliveryStatus.PENDING or not delivery.channel.is_active:
        return delivery.status
    channel = delivery.channel
    body = payload(delivery)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "OpsPulse-Alerts/1.0",
        SIGNATURE_HEADER: sign(body, channel.secret),
        "X-OpsPulse-Event": str(delivery.event.public_id),
        "X-OpsPulse-Delivery": str(delivery.pk),
    }
    started_at, started = timezone.now(), time.monotonic()
    status_code: int | None = None
    error = ""
    retryable = False
    try:
        reply = _post(channel.url, body, headers)
        status_code = reply.status_code
        if status_code >= 500 or status_code == 429:
            retryable, error = True, f"HTTP {status_code}"
        elif status_code >= 400:
            error = f"HTTP {status_code}"
        elif status_code >= 300:
            error = "redirects are not followed"
    except http.BlockedAddress as exc:
        error = failure_reason(exc)
    except httpx.HTTPError as exc:
        retryable, error = True, failure_reason(exc)
    duration_ms = int((time.monotonic() - started) * 1000)
    actions.record_attempt(
        delivery=delivery, started_at=started_at, duration_ms=duration_ms, status_code=status_code, error=error,
        final=final or not retryable,
    )
    if retryable and not final:
        raise RetryableDeliveryError(error)
    return delivery.status

