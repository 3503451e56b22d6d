"""Alerts reach members by email (respecting quiet hours and digests) and webhook channels
(signed, retried on network errors and 5xx, every attempt recorded)."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import socket
from datetime import UTC, datetime, time
from decimal import Decimal
from time import monotonic

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from opspulse.alerts import actions as alert_actions
from opspulse.alerts import delivery
from opspulse.alerts.models import (
    AlertEvent,
    AlertNotification,
    AlertPreference,
    ChannelDeliveryStatus,
)
from opspulse.commerce import actions
from opspulse.lib import http
from tests.support.alerts import RawReceiver, channel_delivery
from tests.support.processes import free_port


# Their receivers listen on 127.0.0.1.
pytestmark = pytest.mark.usefixtures("private_receivers")


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
        placed_at=timezone.now(), updated_at=timezone.now(),
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
    assert status == ChannelDeliveryStatus.DELIVERED
    attempt = sent.attempt_log.get()
    assert attempt.status_code == 200 and attempt.error == ""


def test_a_slack_channel_gets_a_text_message(fired, shopify_store, receiver):
    sent = channel_delivery(shopify_store, fired, url=receiver.url, kind="slack")

    delivery.post_delivery(sent.pk, final=False)

    text = json.loads(receiver.requests[0][1])["text"]
    assert text.startswith("High-value order #1001: €950.00 (Alice-Apparel) fired ")
    assert " (Europe/Paris) http" in text


def test_a_server_error_is_retried_and_each_attempt_recorded(fired, shopify_store, receiver):
    receiver.statuses = [503]
    sent = channel_delivery(shopify_store, fired, url=receiver.url)

    with pytest.raises(delivery.RetryableDeliveryError):
        delivery.post_delivery(sent.pk, final=False)
    sent.refresh_from_db()
    assert sent.status == ChannelDeliveryStatus.PENDING
    delivery.post_delivery(sent.pk, final=False)

    sent.refresh_from_db()
    assert sent.status == ChannelDeliveryStatus.DELIVERED and sent.attempts == 2
    assert [a.status_code for a in sent.attempt_log.order_by("pk")] == [503, 200]


def test_a_client_error_fails_the_delivery_without_retrying(fired, shopify_store, receiver):
    receiver.statuses = [404]
    sent = channel_delivery(shopify_store, fired, url=receiver.url)

    status = delivery.post_delivery(sent.pk, final=False)

    assert status == ChannelDeliveryStatus.FAILED
    assert sent.attempt_log.get().error == "HTTP 404"


def test_an_unreachable_receiver_is_retried_until_the_last_attempt(fired, shopify_store, personas):
    port = free_port()
    sent = channel_delivery(shopify_store, fired, url=f"http://127.0.0.1:{port}/hook")

    with pytest.raises(delivery.RetryableDeliveryError):
        delivery.post_delivery(sent.pk, final=False)
    last = delivery.post_delivery(sent.pk, final=True)

    assert last == ChannelDeliveryStatus.FAILED
    # The merchant reads a generic reason, never the socket's error naming hosts and ports.
    assert [attempt.error for attempt in sent.attempt_log.order_by("pk")] == ["could not connect"] * 2
    client = Client()
    client.force_login(personas["alice"])
    page = client.get(reverse("alert-channels", args=[shopify_store.public_id])).content.decode()
    assert "could not connect" in page and "Errno" not in page and "refused" not in page


def test_a_receiver_that_drips_its_answer_is_cut_off_at_the_deadline(fired, shopify_store, settings):
    """Tarpit: one byte every 0.2 s would hold the post for minutes; it ends at the deadline."""
    settings.ALERT_WEBHOOK_TIMEOUT_SECONDS = 1
    tarpit = RawReceiver(drip_seconds=0.2)
    try:
        sent = channel_delivery(shopify_store, fired, url=tarpit.url)
        started = monotonic()
        with pytest.raises(delivery.RetryableDeliveryError):
            delivery.post_delivery(sent.pk, final=False)
        took = monotonic() - started
    finally:
        tarpit.close()

    attempt = sent.attempt_log.get()
    assert (attempt.status_code, attempt.error) == (None, "timed out after 1 s")
    assert took < 3  # the old per-read timeout never fired while bytes kept coming
    sent.refresh_from_db()
    assert sent.status == ChannelDeliveryStatus.PENDING


def test_a_huge_answer_is_not_read_past_64_kib(fired, shopify_store):
    """A receiver answering 50 MiB: the post reads 64 KiB of it and fails as too large."""
    huge = RawReceiver(body_bytes=50 * 1024 * 1024)
    try:
        sent = channel_delivery(shopify_store, fired, url=huge.url)
        with pytest.raises(delivery.RetryableDeliveryError):
            delivery.post_delivery(sent.pk, final=False)
    finally:
        huge.close()

    assert sent.attempt_log.get().error == "reply too large"
    assert huge.sent_bytes < 8 * 1024 * 1024  # it stopped reading: the sender's buffers filled up


def test_a_redirect_is_not_followed(fired, shopify_store, receiver):
    """A receiver that redirects to the cloud metadata address reaches nothing."""
    receiver.statuses = [302]
    sent = channel_delivery(shopify_store, fired, url=receiver.url)

    status = delivery.post_delivery(sent.pk, final=False)

    assert status == ChannelDeliveryStatus.FAILED and len(receiver.requests) == 1
    attempt = sent.attempt_log.get()
    assert (attempt.status_code, attempt.error) == (302, "redirects are not followed")


def test_a_tls_failure_is_reported_as_such(fired, shopify_store, receiver):
    sent = channel_delivery(shopify_store, fired, url=receiver.url.replace("http://", "https://"))

    with pytest.raises(delivery.RetryableDeliveryError):
        delivery.post_delivery(sent.pk, final=False)

    assert sent.attempt_log.get().error == "TLS error"


def test_private_addresses_are_refused_by_default(fired, shopify_store, receiver, settings):
    sent = channel_delivery(shopify_store, fired, url=receiver.url)
    settings.OUTBOUND_ALLOW_PRIVATE_ADDRESSES = False

    status = delivery.post_delivery(sent.pk, final=False)

    assert status == ChannelDeliveryStatus.FAILED and receiver.requests == []
    assert sent.attempt_log.get().error == "address not allowed"


def test_the_guard_is_on_unless_a_setting_turns_it_off():
    from config import settings as defaults

    assert defaults.OUTBOUND_ALLOW_PRIVATE_ADDRESSES is False


def resolve_in_turn(monkeypatch, name: str, answers: list[str]) -> None:
    """Make `name` resolve to each of `answers` in turn (other names resolve as usual)."""
    real_getaddrinfo, answers = socket.getaddrinfo, iter(answers)

    def getaddrinfo(host, port, *args, **kwargs):
        if host != name:
            return real_getaddrinfo(host, port, *args, **kwargs)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (next(answers), port))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


SSRF_ATTACKS = [
    pytest.param("http://127.0.0.1/", id="loopback"),
    pytest.param("http://localhost/", id="localhost-name"),
    pytest.param("http://169.254.169.254/latest/meta-data/", id="cloud-metadata"),
    pytest.param("http://10.0.0.1/", id="private-network"),
    pytest.param("http://0.0.0.0/", id="zero-address"),
    pytest.param("http://2130706433/", id="decimal-ipv4-loopback"),
    pytest.param("http://0177.0.0.1/", id="octal-ipv4-loopback"),
    pytest.param("http://0x7f.1/", id="hex-ipv4-loopback"),
    pytest.param("http://0xa9fea9fe/", id="hex-ipv4-metadata"),
    pytest.param("http://[::1]/", id="ipv6-loopback"),
    pytest.param("http://[fe80::1]/", id="ipv6-link-local"),
    pytest.param("http://[fc00::1]/", id="ipv6-unique-local"),
    pytest.param("http://[fec0::1]/", id="ipv6-site-local-fec0"),
    pytest.param("http://[64:ff9b::a9fe:a9fe]/", id="nat64-to-metadata"),
    pytest.param("http://[64:ff9b::7f00:1]/", id="nat64-to-loopback"),
    pytest.param("http://[2002:a9fe:a9fe::]/", id="6to4-to-metadata"),
    pytest.param("http://[::7f00:1]/", id="ipv4-compatible-loopback"),
    pytest.param("http://[::ffff:127.0.0.1]/", id="ipv4-mapped-loopback"),
    pytest.param("http://[::ffff:a9fe:a9fe]/", id="ipv4-mapped-metadata"),
    pytest.param("https://1.1.1.1:8443/", id="public-address-other-port"),
    pytest.param("http://1.1.1.1:22/", id="public-address-ssh-port"),
    pytest.param("ftp://1.1.1.1/", id="other-scheme"),
]


@pytest.mark.parametrize("url", SSRF_ATTACKS)
def test_an_alert_cannot_be_aimed_at_an_address_that_is_not_public(url, fired, shopify_store, settings, monkeypatch):
    """SSRF: a channel URL naming an internal address in any spelling is refused when it is
    saved and when it is posted to, before any connection is made."""
    import httpcore

    from opspulse.alerts.forms import ChannelForm

    settings.OUTBOUND_ALLOW_PRIVATE_ADDRESSES = False
    connections: list[tuple[str, int]] = []
    monkeypatch.setattr(
        httpcore.SyncBackend, "connect_tcp", lambda self, host, port, **kwargs: connections.append((host, port))
    )
    form = ChannelForm(data={"kind": "webhook", "name": "Ops", "url": url})
    sent = channel_delivery(shopify_store, fired, url=url)  # as if saved before the guard

    status = delivery.post_delivery(sent.pk, final=False)

    assert not form.is_valid() and "url" in form.errors
    assert status == ChannelDeliveryStatus.FAILED and connections == []
    assert sent.attempt_log.get().error == "address not allowed"


@pytest.mark.parametrize("address", [
    pytest.param("93.184.215.14", id="public-ipv4"),
    pytest.param("2606:2800:21f:cb07:6820:80da:af6b:8b2c", id="public-ipv6"),
    pytest.param("64:ff9b::5db8:d70e", id="nat64-to-public"),
    pytest.param("::ffff:93.184.215.14", id="ipv4-mapped-public"),
])
def test_public_addresses_are_allowed_in_any_spelling(address):
    assert http.is_public(ipaddress.ip_address(address))


def test_plain_http_is_refused_in_production(settings):
    settings.OUTBOUND_ALLOW_PRIVATE_ADDRESSES, settings.PRODUCTION = False, True

    with pytest.raises(http.BlockedAddress):
        http.check_url("http://1.1.1.1/hook")
    http.check_url("https://1.1.1.1/hook")


def test_a_name_that_turns_private_after_the_check_is_refused_at_connect_time(fired, shopify_store, receiver, settings,
                                                                            monkeypatch):
    """DNS rebinding: the name is public when the URL is checked, then points at 127.0.0.1."""
    settings.OUTBOUND_ALLOW_PRIVATE_ADDRESSES = False
    resolve_in_turn(monkeypatch, "hooks.example.com", ["93.184.215.14", "127.0.0.1"])
    sent = channel_delivery(shopify_store, fired, url="http://hooks.example.com/opspulse")

    status = delivery.post_delivery(sent.pk, final=False)

    assert status == ChannelDeliveryStatus.FAILED and receiver.requests == []
    assert sent.attempt_log.get().error == "address not allowed"


def test_the_post_connects_to_the_checked_address_with_the_urls_host(receiver, settings, monkeypatch):
    """DNS pinning: the address checked is the one connected to; Host stays the URL's."""
    import httpcore

    settings.OUTBOUND_ALLOW_PRIVATE_ADDRESSES = False
    resolve_in_turn(monkeypatch, "hooks.example.com", ["93.184.215.14", "10.0.0.1"])
    connected_to: list[tuple[str, int]] = []
    real_connect = httpcore.SyncBackend.connect_tcp

    def connect_tcp(self, host, port, **kwargs):
        connected_to.append((host, port))
        # Stand in for the public host: the receiver on 127.0.0.1.
        return real_connect(self, "127.0.0.1", receiver.server.server_address[1], **kwargs)

    monkeypatch.setattr(httpcore.SyncBackend, "connect_tcp", connect_tcp)

    with http.client() as client:
        reply = http.send(client, "POST", "http://hooks.example.com/opspulse?team=ops", content=b"{}", deadline=5)

    assert reply.status_code == 200 and connected_to == [("93.184.215.14", 80)]
    [(headers, _)] = receiver.requests
    assert headers["host"] == "hooks.example.com"
