"""Alert jobs (procrastinate, queue "alerts"): evaluate time-based rules, deliver events.

Network work (SMTP, webhook receivers) runs here, never in the drain job, so a slow
receiver cannot hold up webhook processing.
"""

from __future__ import annotations

import logging
import random
import smtplib
from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings
from django.db import DatabaseError, connection
from django.db.models import Count
from django.utils import timezone
from procrastinate import JobContext, RetryStrategy
from procrastinate.contrib.django import app
from procrastinate.retry import RetryDecision

from opspulse.alerts import actions, delivery, selectors
from opspulse.alerts.models import AlertNotification, ChannelDelivery
from opspulse.lib.jobs import defer_once

logger = logging.getLogger("opspulse.alerts")

ALERTS_QUEUE = "alerts"
WEBHOOK_ATTEMPTS = 5
MAIL_ATTEMPTS = 4
# Advisory locks (class, key) of the posts under way: one lock per account and slot.
IN_FLIGHT_LOCK_CLASS = 0x616C7274
# A post whose account has every slot taken looks again after about this long.
SLOT_WAIT_SECONDS = 2


class JitteredRetry(RetryStrategy):
    """procrastinate's exponential retry, spread by up to a quarter so receivers are not hit in step."""

    def get_retry_decision(self, *, exception, job) -> RetryDecision | None:
        decision = super().get_retry_decision(exception=exception, job=job)
        if decision is None or decision.retry_at is None:
            return decision
        jitter = (decision.retry_at - timezone.now()) * random.uniform(0, 0.25)
        return RetryDecision(retry_at=decision.retry_at + jitter, priority=decision.priority, queue=decision.queue,
                             lock=decision.lock)


@app.task(name="opspulse.alerts.dispatch_event", queue=ALERTS_QUEUE)
def dispatch_event(event_id: int) -> None:
    """Queue the mail and webhook deliveries of a fired alert (once), and its resolution's
    if it is already resolved."""
    deliveries, recipients = actions.dispatch_event(event_id)
    _defer_deliveries(deliveries)
    for user_id, account_id in recipients:
        defer_mail(user_id, account_id)


@app.task(name="opspulse.alerts.dispatch_resolution", queue=ALERTS_QUEUE)
def dispatch_resolution(event_id: int) -> None:
    """Queue the posts and mails of an alert's resolution to the webhooks and members that
    got the alert (once)."""
    deliveries, recipients = actions.dispatch_resolution(event_id)
    _defer_deliveries(deliveries)
    for user_id, account_id in recipients:
        defer_mail(user_id, account_id)


def _defer_deliveries(delivery_ids: list[int]) -> None:
    for delivery_id in delivery_ids:
        defer_once(deliver_to_channel.configure(queueing_lock=f"alert-delivery-{delivery_id}"), delivery_id=delivery_id)


def defer_mail(user_id: int, account_id: int) -> None:
    # One waiting job per member and account: it mails everything pending when it runs.
    defer_once(
        send_alert_mail.configure(queueing_lock=f"alert-mail-{user_id}-{account_id}"),
        user_id=user_id, account_id=account_id,
    )


@app.task(
    name="opspulse.alerts.deliver_to_channel",
    queue=ALERTS_QUEUE,
    pass_context=True,
    retry=JitteredRetry(
        max_attempts=WEBHOOK_ATTEMPTS, exponential_wait=4, retry_exceptions={delivery.RetryableDeliveryError}
    ),
)
def deliver_to_channel(context: JobContext, delivery_id: int) -> None:
    """Post an alert to a webhook channel; network errors and 5xx are retried with backoff.

    An account has at most ALERT_DELIVERIES_PER_ACCOUNT posts under way: a post beyond
    them is queued again a moment later instead of waiting in an alerts slot.
    """
    row = ChannelDelivery.objects.filter(pk=delivery_id).values_list("channel__account_id", "attempts").first()
    if row is None:
        return  # the channel (or the alert) was deleted meanwhile
    account_id, recorded_attempts = row
    with in_flight_slot(account_id) as slot:
        if slot is None:
            _defer_delivery_later(delivery_id)
            return
        # A post queued again keeps counting the attempts its delivery already made.
        final = max(context.job.attempts, recorded_attempts) + 1 >= WEBHOOK_ATTEMPTS
        delivery.post_delivery(delivery_id, final=final)


@contextmanager
def in_flight_slot(account_id: int) -> Iterator[int | None]:
    """Hold one of the account's post slots while the block runs; yield its number, or
    None when every slot is taken.

    Session advisory locks: a worker that dies frees its slots with its connection.
    """
    taken = None
    with connection.cursor() as cursor:
        for slot in range(max(settings.ALERT_DELIVERIES_PER_ACCOUNT, 1)):
            cursor.execute(
                "SELECT pg_try_advisory_lock(%s, hashtext(%s))", [IN_FLIGHT_LOCK_CLASS, f"{account_id}:{slot}"]
            )
            if cursor.fetchone()[0]:
                taken = slot
                break
    try:
        yield taken
    finally:
        if taken is not None:
            try:
                with connection.cursor() as cursor:
                    cursor.execute(
                        "SELECT pg_advisory_unlock(%s, hashtext(%s))", [IN_FLIGHT_LOCK_CLASS, f"{account_id}:{taken}"]
                    )
            except DatabaseError:
                pass  # the connection is gone, and the lock with it


def _defer_delivery_later(delivery_id: int) -> None:
    later = {"seconds": SLOT_WAIT_SECONDS * random.uniform(0.75, 1.25)}
    defer_once(
        deliver_to_channel.configure(queueing_lock=f"alert-delivery-{delivery_id}", schedule_in=later),
        delivery_id=delivery_id,
    )


@app.task(
    name="opspulse.alerts.send_alert_mail",
    queue=ALERTS_QUEUE,
    retry=JitteredRetry(max_attempts=MAIL_ATTEMPTS, exponential_wait=5, retry_exceptions={smtplib.SMTPException, OSError}),
)
def send_alert_mail(user_id: int, account_id: int) -> None:
    """Mail a member's pending alerts, unless quiet hours or a digest hold them."""
    delivery.send_pending_mail(user_id, account_id)


@app.periodic(cron="* * * * *", periodic_id="alerts-evaluate")
@app.task(name="opspulse.alerts.evaluate", queue=ALERTS_QUEUE, queueing_lock="opspulse.alerts.evaluate")
def evaluate(timestamp: int) -> None:
    """Every minute: time-based rules, deliveries a stopped process left unqueued, held mail now due."""
    actions.evaluate_timed_rules()
    for event_id in selectors.undispatched_events():
        actions.defer_dispatch(event_id)
    for event_id in selectors.unannounced_resolutions():
        actions.defer_resolution(event_id)
    release_held_mail()


def release_held_mail() -> int:
    """Queue the mail of members whose quiet hours ended or whose digest hour came; return how many."""
    now = timezone.now()
    pairs = (
        AlertNotification.objects.filter(sent_at__isnull=True, attempts__lt=delivery.MAX_MAIL_ATTEMPTS)
        .values("user_id", "account_id")
        .annotate(count=Count("pk"))
        .order_by()
    )
    queued = 0
    for pair in pairs:
        if delivery.mail_due(delivery.preference_for(pair["user_id"], pair["account_id"]), now):
            defer_mail(pair["user_id"], pair["account_id"])
            queued += 1
    return queued
