"""What an owner reads in the audit log about alert channels and customer data exports:
who changed or took what, never the secrets (a channel's URL) or the customer's data."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from opspulse.accounts.models import AuditEvent, AuditKind, Membership, Role
from opspulse.alerts import actions as alert_actions
from opspulse.alerts.models import AlertChannel
from opspulse.privacy.models import CustomerDataRequest

SLACK_URL = "https://hooks.slack.com/services/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ntial"


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def bob_admin(personas):
    Membership.objects.filter(user=personas["bob"], account=personas["account"]).update(role=Role.ADMIN)
    return personas["bob"]


def test_adding_pausing_and_removing_a_channel_are_audited_without_its_url(
    shopify_store, personas, bob_admin, private_receivers
):
    """An admin who points alerts (order totals, customer cities) at their own receiver
    and removes it afterwards leaves a trace; the log itself never holds the Slack URL,
    whose path is its credential, nor the signing secret."""
    bob = signed_in(bob_admin)
    bob.post(
        reverse("alert-channels", args=[shopify_store.public_id]), {"kind": "slack", "name": "Ops", "url": SLACK_URL}
    )
    channel = AlertChannel.objects.get()
    alert_actions.set_channel_active(channel=channel, active=False, actor=bob_admin)
    bob.post(reverse("alert-channel-remove", args=[shopify_store.public_id]), {"channel": str(channel.public_id)})

    events = list(AuditEvent.objects.filter(account=personas["account"]).order_by("pk"))

    assert [(event.kind, event.user) for event in events] == [
        (AuditKind.CHANNEL_ADDED, bob_admin),
        (AuditKind.CHANNEL_CHANGED, bob_admin),
        (AuditKind.CHANNEL_REMOVED, bob_admin),
    ]
    assert events[0].details == {
        "channel_id": str(channel.public_id), "channel_kind": "Slack-compatible", "name": "Ops",
        "host": "hooks.slack.com", "store": shopify_store.name, "store_id": str(shopify_store.public_id),
    }
    assert events[1].details["change"] == "paused"
    assert events[0].ip_address == "127.0.0.1"
    log = signed_in(personas["alice"]).get(reverse("account-audit")).content.decode()
    assert log.count('data-event="channel_') == 3 and "hooks.slack.com" in log
    for event in events:
        assert "s3cr3t" not in str(event.details) and channel.secret not in str(event.details)
    assert "s3cr3t" not in log


def test_an_account_wide_channel_is_audited_as_for_every_store(personas, bob_admin):
    channel = alert_actions.create_channel(
        account=personas["account"], kind="webhook", name="Pager", url="https://hooks.example.com/opspulse?key=k",
        actor=bob_admin,
    )

    event = AuditEvent.objects.get(kind=AuditKind.CHANNEL_ADDED)

    assert (event.details["host"], event.details["store"], event.details["channel_id"]) == (
        "hooks.example.com", None, str(channel.public_id)
    )
    assert "key=k" not in str(event.details)


def test_downloading_a_customers_data_export_is_audited_without_the_customers_data(shopify_store, personas):
    """A customer's exported data (email, orders, addresses) can be taken by any admin:
    the owner sees who downloaded which request, and when."""
    data_request = CustomerDataRequest.objects.create(
        store=shopify_store, external_id="9999", customer_external_id="207119551", customer_email="ada@example.com",
        export={"customer": {"email": "ada@example.com"}, "orders": [{"number": "#1001", "city": "London"}]},
    )
    url = f"{reverse('store-data-request-download', args=[shopify_store.public_id])}?id={data_request.public_id}"

    alice = signed_in(personas["alice"])
    downloaded = alice.get(url)
    refused = signed_in(personas["bob"]).get(url)

    assert (downloaded.status_code, refused.status_code) == (200, 403)
    event = AuditEvent.objects.get(kind=AuditKind.DATA_EXPORT_DOWNLOADED)
    assert (event.user, event.account) == (personas["alice"], personas["account"])
    assert event.details == {
        "store": shopify_store.name, "store_id": str(shopify_store.public_id), "data_request": "9999",
        "data_request_id": str(data_request.public_id),
    }
    log = alice.get(reverse("account-audit")).content.decode()
    assert 'data-event="data_export_downloaded"' in log and "request 9999 of" in log
    assert "ada@example.com" not in log and "London" not in log
