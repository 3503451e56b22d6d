"""Alerts reach members by email (respecting quiet hours and digests) and webhook channels
(signed, retried on network errors and 5xx, every attempt recorded)."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, time
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core import mail

from conftest import free_port
from opspulse.alerts import actions as alert_actions
from opspulse.alerts import delivery
from opspulse.alerts.models import (
    Alert,
    AlertEvent,
    AlertNotification,
    AlertPreference,
    AlertType,
    ChannelDelivery,
    DeliveryStatus,
)
from opspulse.commerce import actions
from opspulse.ingest.tests.helpers import T0


class Receiver:
    """A webhook receiver on 127.0.0.1 answering with the given statuses in turn."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses = list(statuses)
        self.requests: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(receiver.statuses.pop(0) if receiver.statuses else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver([])
    yield server
    server.close()


@pytest.fixture
def fired(shopify_store) -> AlertEvent:
    """A high-value order alert of Alice's store (alice and bob are its account's members)."""
    Alert.objects.create(store=shopify_store, type=AlertType.HIGH_VALUE_ORDER, config={"threshold": "400.00"})
    actions.record_order(store=shopify_store, data=actions.OrderData(
        external_id="1", number="#1001", status="paid", currency="EUR", total=Decimal("950.00"),
        placed_at=T0, updated_at=T0,
    ))
    return AlertEvent.objects.get()


def channel_delivery(store, event, *, url: str, kind: str = "webhook") -> ChannelDelivery:
    channel = alert_actions.create_channel(account=store.account, store=store, kind=kind, name="Ops", url=url)
    deliveries, _ = alert_actions.dispatch_event(event.pk)
    return ChannelDelivery.objects.get(pk__in=deliveries, channel=channel)


# Email.


def test_each_member_gets_one_mail_per_alert(fired, personas):
    _, recipients = alert_actions.dispatch_event(fired.pk)
    for user_id, account_id in recipients:
        delivery.send_pending_mail(user_id, account_id)
    for user_id, account_id in recipients:
        delivery.send_pending_mail(user_id, account_id)

    assert sorted(message.to[0] for message in mail.outbox) == ["alice@example.com", "bob@example.com"]
    message = mail.outbox[0]
    assert message.subject == "[OpsPulse] High-value order #1001: €950.00"
    assert "Alice-Apparel" in message.body and f"/stores/{fired.store.public_id}/alerts/history/" in message.body
    assert "€950.00" in message.alternatives[0][0]
    assert AlertNotification.objects.filter(sent_at__isnull=True).count() == 0


def test_a_member_who_turned_email_off_gets_none(fired, personas):
    AlertPreference.objects.create(user=personas["bob"], account=personas["account"], email_enabled=False)

    _, recipients = alert_actions.dispatch_event(fired.pk)
    for user_id, account_id in recipients:
        delivery.send_pending_mail(user_id, account_id)

    assert [message.to[0] for message in mail.outbox] == ["alice@example.com"]


def test_dispatching_an_alert_twice_queues_its_mail_once(fired):
    alert_actions.dispatch_event(fired.pk)
    again = alert_actions.dispatch_event(fired.pk)

    assert again == ([], [])
    assert AlertNotification.objects.count() == 2


def test_mail_is_held_during_quiet_hours_and_sent_when_they_end(fired, personas):
    bob = personas["bob"]
    AlertPreference.objects.create(user=bob, account=personas["account"], timezone="Europe/Paris",
                                   quiet_start=time(22, 0), quiet_end=time(7, 0))
    alert_actions.dispatch_event(fired.pk)

    at_night = delivery.send_pending_mail(bob.pk, personas["account"].pk, now=datetime(2026, 11, 30, 22, 0, tzinfo=UTC))
    assert at_night == 0 and mail.outbox == []

    morning = delivery.send_pending_mail(bob.pk, personas["account"].pk, now=datetime(2026, 12, 1, 6, 30, tzinfo=UTC))

    assert morning == 1
    assert [message.to[0] for message in mail.outbox] == ["bob@example.com"]


def test_a_daily_digest_collects_the_days_alerts_in_one_mail(fired, shopify_store, personas):
    bob, account = personas["bob"], personas["account"]
    AlertPreference.objects.create(user=bob, account=account, daily_digest=True, digest_hour=8, timezone="UTC")
    alert_actions.dispatch_event(fired.pk)
    actions.record_order(store=shopify_store, data=actions.OrderData(
        external_id="2", number="#1002", status="paid", currency="EUR", total=Decimal("420.00"),
        placed_at=T0, updated_at=T0,
    ))
    alert_actions.dispatch_event(AlertEvent.objects.latest("pk").pk)

    early = delivery.send_pending_mail(bob.pk, account.pk, now=datetime(2026, 11, 30, 7, 0, tzinfo=UTC))
    digest = delivery.send_pending_mail(bob.pk, account.pk, now=datetime(2026, 11, 30, 8, 5, tzinfo=UTC))
    same_day = delivery.send_pending_mail(bob.pk, account.pk, now=datetime(2026, 11, 30, 9, 0, tzinfo=UTC))

    assert (early, digest, same_day) == (0, 2, 0)
    [message] = mail.outbox
    assert message.subject == "[OpsPulse] Daily alert digest for Alice's Apparel: 2 alerts"
    assert "#1001" in message.body and "#1002" in message.body


# Webhook channels.


def test_a_webhook_gets_the_alert_signed_with_the_channels_secret(fired, shopify_store, receiver):
    sent = channel_delivery(shopify_store, fired, url=receiver.url)

    status = delivery.post_delivery(sent.pk, final=False)

    [(headers, body)] = receiver.requests
    secret = sent.channel.secret
    assert headers["x-opspulse-signature"] == "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    event = json.loads(body)["event"]
    assert (event["id"], event["message"], event["alert_type"]) == (
        str(fired.public_id), "High-value order #1001: €950.00", "high_value_order"
    )
    assert status == DeliveryStatus.DELIVERED
    attempt = sent.attempt_log.get()
    assert attempt.status_code == 200 and attempt.error == ""


def test_a_slack_channel_gets_a_text_message(fired, shopify_store, receiver):
    sent = channel_delivery(shopify_store, fired, url=receiver.url, kind="slack")

    delivery.post_delivery(sent.pk, final=False)

    text = json.loads(receiver.requests[0][1])["text"]
    assert text.startswith("High-value order #1001: €950.00 (Alice-Apparel) http")


def test_a_server_error_is_retried_and_each_attempt_recorded(fired, shopify_store, receiver):
    receiver.statuses = [503]
    sent = channel_delivery(shopify_store, fired, url=receiver.url)

    with pytest.raises(delivery.RetryableDeliveryError):
        delivery.post_delivery(sent.pk, final=False)
    sent.refresh_from_db()
    assert sent.status == DeliveryStatus.PENDING
    delivery.post_delivery(sent.pk, final=False)

    sent.refresh_from_db()
    assert sent.status == DeliveryStatus.DELIVERED and sent.attempts == 2
    assert [a.status_code for a in sent.attempt_log.order_by("pk")] == [503, 200]


def test_a_client_error_fails_the_delivery_without_retrying(fired, shopify_store, receiver):
    receiver.statuses = [404]
    sent = channel_delivery(shopify_store, fired, url=receiver.url)

    status = delivery.post_delivery(sent.pk, final=False)

    assert status == DeliveryStatus.FAILED
    assert sent.attempt_log.get().error == "HTTP 404"


def test_an_unreachable_receiver_is_retried_until_the_last_attempt(fired, shopify_store):
    sent = channel_delivery(shopify_store, fired, url=f"http://127.0.0.1:{free_port()}/hook")

    with pytest.raises(delivery.RetryableDeliveryError):
        delivery.post_delivery(sent.pk, final=False)
    last = delivery.post_delivery(sent.pk, final=True)

    assert last == DeliveryStatus.FAILED
    assert all("ConnectError" in attempt.error for attempt in sent.attempt_log.all())


def test_private_addresses_are_refused_where_not_allowed(fired, shopify_store, receiver, settings):
    sent = channel_delivery(shopify_store, fired, url=receiver.url)
    settings.ALERT_WEBHOOKS_ALLOW_PRIVATE = False

    status = delivery.post_delivery(sent.pk, final=False)

    assert status == DeliveryStatus.FAILED and receiver.requests == []
    assert "private or local address" in sent.attempt_log.get().error


def test_a_name_that_turns_private_after_the_check_still_reaches_only_the_checked_address(settings, monkeypatch):
    # DNS rebinding: the receiver's name resolves to a public address when it is checked,
    # then to an internal one. The post connects to the address that was checked.
    import socket

    answers = iter(["93.184.215.14", "127.0.0.1"])

    def getaddrinfo(host, port, *args, **kwargs):
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (next(answers), port))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    settings.ALERT_WEBHOOKS_ALLOW_PRIVATE = False

    target = delivery.resolve_target("https://hooks.example.com/opspulse?team=ops")

    assert target.url == "https://93.184.215.14/opspulse?team=ops"
    assert (target.host_header, target.sni_hostname) == ("hooks.example.com", "hooks.example.com")
