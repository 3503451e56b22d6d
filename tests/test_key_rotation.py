"""A key rotation reaches every encrypted value: after it, the old key can leave the ring
and two-factor sign-in, alert channels and the Shopify API keep working."""

from __future__ import annotations

import hashlib
import hmac
import io
import threading
from collections.abc import Iterator
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from opspulse.accounts.models import Role
from opspulse.alerts import actions as alert_actions
from opspulse.alerts import delivery
from opspulse.alerts.models import Alert, AlertChannel, AlertEvent, AlertType, ChannelDeliveryStatus
from opspulse.commerce import actions
from opspulse.lib import crypto, encrypted_fields
from opspulse.platforms.shopify.client import ShopifyClient
from opspulse.stores.models import Integration
from tests.factories import MembershipFactory, UserFactory
from tests.support.accounts import current_code, sign_in, signed_in, turn_on_totp
from tests.support.shopify import create_shop, install
from tests.support.stores import make_store

pytestmark = pytest.mark.django_db(transaction=True)

EVERY_FIELD = [
    "alerts.AlertChannel.secret",
    "alerts.AlertChannel.url",
    "mfa.Authenticator.recovery_codes",
    "mfa.Authenticator.totp_secret",
    "stores.Integration.access_token",
    "stores.Integration.previous_webhook_secret",
    "stores.Integration.refresh_token",
    "stores.Integration.webhook_secret",
]


class SigningReceiver:
    """An alert receiver on 127.0.0.1 that accepts only posts signed with its secret."""

    def __init__(self) -> None:
        self.secret = ""
        self.received: list[str] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers["Content-Length"]))
                expected = "sha256=" + hmac.new(receiver.secret.encode(), body, hashlib.sha256).hexdigest()
                signed = hmac.compare_digest(self.headers.get("X-OpsPulse-Signature", ""), expected)
                if signed:
                    receiver.received.append(self.path)
                self.send_response(200 if signed else 401)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def signing_receiver() -> Iterator[SigningReceiver]:
    receiver = SigningReceiver()
    yield receiver
    receiver.close()


def rotate(settings, kid: str = "k2") -> tuple[str, str]:
    """Put a new key first in the ring, run the command; return (its output, the new key's entry)."""
    new_entry = crypto.generate_key_entry(kid)
    settings.FIELD_ENCRYPTION_KEYS = f"{new_entry},{settings.FIELD_ENCRYPTION_KEYS}"
    out = io.StringIO()
    call_command("rotate_field_keys", stdout=out)
    return out.getvalue(), new_entry


def test_after_a_rotation_the_old_key_can_go_and_totp_alerts_and_the_shopify_api_still_work(
    shopify_app, signing_receiver, settings, private_receivers  # noqa: F811 - fixture
):
    # given: a two-factor user, her installed Shopify shop and its alert channel, all under the old key
    owner = MembershipFactory(user=UserFactory(email="owner@example.com"), role=Role.OWNER).user
    browser = Client()
    sign_in(browser, email="owner@example.com")
    totp_secret = turn_on_totp(browser)
    recovery_code = browser.get(reverse("mfa_view_recovery_codes")).context["unused_codes"][0]
    shop = "rotation-goods.myshopify.com"
    create_shop(shopify_app, shop, orders=1)
    install(browser, shop)
    store = owner.accounts.get().stores.get(domain=shop)
    url = f"{signing_receiver.base}/services/T000/B000/XXXXSECRETPATH?channel=ops"
    channel = alert_actions.create_channel(account=store.account, store=store, kind="slack", name="Ops", url=url)
    signing_receiver.secret = channel.secret

    # when: a new key is added, everything re-encrypted, and the old key removed
    output, new_entry = rotate(settings)
    settings.FIELD_ENCRYPTION_KEYS = new_entry

    # then: every kind of value was re-encrypted
    assert output.splitlines() == [
        "alerts.AlertChannel.secret: 1 re-encrypted, 0 already current",
        "alerts.AlertChannel.url: 1 re-encrypted, 0 already current",
        "mfa.Authenticator.recovery_codes: 1 re-encrypted, 0 already current",
        "mfa.Authenticator.totp_secret: 1 re-encrypted, 0 already current",
        "stores.Integration.access_token: 1 re-encrypted, 0 already current",
        "stores.Integration.previous_webhook_secret: 0 re-encrypted, 0 already current",
        "stores.Integration.refresh_token: 1 re-encrypted, 0 already current",
        "stores.Integration.webhook_secret: 0 re-encrypted, 0 already current",
    ]
    # and signing in with a TOTP code, then with a recovery code, works with the new key alone
    browser.post(reverse("account_logout"))
    assert sign_in(browser, email="owner@example.com").url == reverse("mfa_authenticate")
    browser.post(reverse("mfa_authenticate"), {"code": current_code(totp_secret, offset=1)})
    assert signed_in(browser)
    browser.post(reverse("account_logout"))
    sign_in(browser, email="owner@example.com")
    browser.post(reverse("mfa_authenticate"), {"code": recovery_code})
    assert signed_in(browser)
    # and an alert reaches the channel's URL, signed with its secret
    Alert.objects.create(store=store, type=AlertType.HIGH_VALUE_ORDER, config={"threshold": "400.00"})
    actions.record_order(store=store, data=actions.OrderData(
        external_id="9", number="#1009", status="paid", currency="EUR", total=Decimal("950.00"),
        placed_at=timezone.now(), updated_at=timezone.now(),
    ))
    deliveries, _ = alert_actions.dispatch_event(AlertEvent.objects.get(store=store).pk)
    assert delivery.post_delivery(deliveries[0], final=True) == ChannelDeliveryStatus.DELIVERED
    assert signing_receiver.received == ["/services/T000/B000/XXXXSECRETPATH?channel=ops"]
    # and the Shopify API is called with the shop's token
    client = ShopifyClient(Integration.objects.select_related("store").get(store=store))
    assert client.query("query { shop { name } }").data["shop"]["name"] == "Harbor Goods"


def test_a_rotation_interrupted_halfway_is_finished_by_running_it_again(personas, settings):
    for number in range(3):
        make_store(personas["account"], platform="woocommerce", domain=f"shop{number}.example", secret=f"woo-{number}")
    old_ring = settings.FIELD_ENCRYPTION_KEYS
    new_entry = crypto.generate_key_entry("k2")
    settings.FIELD_ENCRYPTION_KEYS = f"{new_entry},{old_ring}"
    [field] = [field for field in encrypted_fields.registered() if field.name == "stores.Integration.webhook_secret"]

    # when: the rotation stops after its first committed batch (the process was killed)
    run = encrypted_fields.rotate(field, batch_size=1)
    assert str(next(run)) == "1 re-encrypted, 0 already current"
    run.close()
    under_new_key = [crypto.current_kid(token) == "k2" for token in Integration.objects.values_list(
        "webhook_secret_encrypted", flat=True)]
    assert sorted(under_new_key) == [False, False, True]

    # then: running it again re-encrypts only the rest, and a third run has nothing to do
    again, third = io.StringIO(), io.StringIO()
    call_command("rotate_field_keys", "--batch-size=2", stdout=again)
    call_command("rotate_field_keys", stdout=third)
    assert "stores.Integration.webhook_secret: 2 re-encrypted, 1 already current" in again.getvalue().splitlines()
    assert "stores.Integration.webhook_secret: 0 re-encrypted, 3 already current" in third.getvalue().splitlines()
    settings.FIELD_ENCRYPTION_KEYS = new_entry
    assert sorted(Integration.objects.get(store__domain=f"shop{n}.example").webhook_secret for n in range(3)) == [
        "woo-0", "woo-1", "woo-2",
    ]


def test_a_value_no_key_decrypts_is_reported_and_the_command_fails(personas, shopify_store, settings):
    channel = alert_actions.create_channel(account=personas["account"], kind="webhook", name="Ops",
                                           url="https://hooks.example.com/secret")
    foreign_ring = crypto.parse_key_ring(crypto.generate_key_entry("lost"))
    AlertChannel.objects.filter(pk=channel.pk).update(
        url_encrypted=crypto.encrypt("https://hooks.example.com/secret", associated_data=channel.associated_data("url"),
                                     ring=foreign_ring)
    )
    out = io.StringIO()

    with pytest.raises(CommandError, match="1 row\\(s\\) hold values that no key of the ring decrypts"):
        rotate_with(settings, out)

    assert "alerts.AlertChannel.url: 0 re-encrypted, 0 already current, 1 cannot be decrypted" in out.getvalue()
    assert "stores.Integration.webhook_secret: 1 re-encrypted, 0 already current" in out.getvalue()


def rotate_with(settings, out: io.StringIO) -> None:
    settings.FIELD_ENCRYPTION_KEYS = f"{crypto.generate_key_entry('k2')},{settings.FIELD_ENCRYPTION_KEYS}"
    call_command("rotate_field_keys", stdout=out)


def test_every_encrypted_field_is_registered():
    assert [field.name for field in encrypted_fields.registered()] == EVERY_FIELD
