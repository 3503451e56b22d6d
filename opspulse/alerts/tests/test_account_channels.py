"""Account-wide webhook channels: they get the alerts of every store of their account, stores
added later included; admins and owners manage them on the account's page."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from opspulse.accounts.models import Account, Membership, Role
from opspulse.alerts import actions as alert_actions
from opspulse.alerts import delivery
from opspulse.alerts.models import Alert, AlertChannel, AlertEvent, AlertType, ChannelDelivery
from opspulse.commerce import actions
from tests.support.alerts import Receiver
from tests.support.stores import client_for, make_store


# Their receivers listen on 127.0.0.1.
pytestmark = pytest.mark.usefixtures("private_receivers")


@pytest.fixture
def receivers() -> Iterator[list[Receiver]]:
    started: list[Receiver] = []
    yield started
    for receiver in started:
        receiver.close()


@pytest.fixture
def new_receiver(receivers):
    def start() -> Receiver:
        receiver = Receiver([])
        receivers.append(receiver)
        return receiver

    return start


def fire(store, number: str) -> AlertEvent:
    """A high-value order alert of `store`."""
    Alert.objects.get_or_create(
        store=store, type=AlertType.HIGH_VALUE_ORDER, defaults={"config": {"threshold": "400.00"}}
    )
    actions.record_order(store=store, data=actions.OrderData(
        external_id=number, number=f"#{number}", status="paid", currency=store.currency, total=Decimal("950.00"),
        placed_at=timezone.now(), updated_at=timezone.now(),
    ))
    return AlertEvent.objects.get(store=store, subject=f"order:{number}")


def deliver(event: AlertEvent) -> None:
    """Queue the event's deliveries and make every post the jobs would make."""
    deliveries, _ = alert_actions.dispatch_event(event.pk)
    for delivery_id in deliveries:
        delivery.post_delivery(delivery_id, final=True)


def posted_stores(receiver: Receiver) -> list[str]:
    return [json.loads(body)["event"]["store"]["name"] for _, body in receiver.requests]



# Delivery.


def test_an_account_webhook_gets_the_alerts_of_every_store_including_one_added_later(
    shopify_store, personas, new_receiver
):
    receiver = new_receiver()
    channel = alert_actions.create_channel(account=personas["account"], kind="webhook", name="All shops",
                                           url=receiver.url)
    later = make_store(personas["account"], platform="woocommerce", domain="outlet.alice.example", secret="s")

    deliver(fire(shopify_store, "1"))
    deliver(fire(later, "2"))

    assert posted_stores(receiver) == ["Alice-Apparel", "Outlet"]
    assert channel.deliveries.filter(status="delivered").count() == 2


def test_a_slack_message_to_an_account_webhook_names_the_store(shopify_store, personas, new_receiver):
    receiver = new_receiver()
    alert_actions.create_channel(account=personas["account"], kind="slack", name="All shops", url=receiver.url)

    deliver(fire(shopify_store, "1"))

    text = json.loads(receiver.requests[0][1])["text"]
    assert text.startswith("High-value order #1: €950.00 (Alice-Apparel) fired ")
    assert " (Europe/Paris) http" in text


def test_a_stores_webhook_does_not_get_another_stores_alerts(shopify_store, woo_store, personas, new_receiver):
    receiver = new_receiver()
    alert_actions.create_channel(account=personas["account"], store=shopify_store, kind="webhook", name="Apparel",
                                 url=receiver.url)

    deliver(fire(woo_store, "2"))
    deliver(fire(shopify_store, "1"))

    assert posted_stores(receiver) == ["Alice-Apparel"]


def test_an_alert_goes_once_to_its_stores_webhook_and_once_to_the_account_webhook(
    shopify_store, personas, new_receiver
):
    store_receiver, account_receiver = new_receiver(), new_receiver()
    alert_actions.create_channel(account=personas["account"], store=shopify_store, kind="webhook", name="Apparel",
                                 url=store_receiver.url)
    alert_actions.create_channel(account=personas["account"], kind="webhook", name="All shops",
                                 url=account_receiver.url)
    event = fire(shopify_store, "1")

    deliver(event)
    deliver(event)  # dispatched again: nothing new

    assert len(store_receiver.requests) == len(account_receiver.requests) == 1
    assert ChannelDelivery.objects.filter(event=event).count() == 2


def test_another_accounts_webhooks_never_get_anything(shopify_store, woo_store, personas, new_receiver):
    receiver = new_receiver()
    chairs = make_store(personas["other_account"], platform="shopify", domain="chairs.myshopify.com", secret="s")
    alert_actions.create_channel(account=personas["other_account"], kind="webhook", name="Chairs, all",
                                 url=receiver.url)
    alert_actions.create_channel(account=personas["other_account"], store=chairs, kind="slack", name="Chairs",
                                 url=receiver.url)

    deliver(fire(shopify_store, "1"))
    deliver(fire(woo_store, "2"))

    assert receiver.requests == []
    assert not ChannelDelivery.objects.filter(channel__account=personas["other_account"]).exists()


def test_a_paused_account_webhook_gets_nothing(shopify_store, personas, new_receiver):
    receiver = new_receiver()
    channel = alert_actions.create_channel(account=personas["account"], kind="webhook", name="All shops",
                                           url=receiver.url)
    alert_actions.set_channel_active(channel=channel, active=False)

    deliver(fire(shopify_store, "1"))

    assert receiver.requests == []


def test_a_store_channel_cannot_belong_to_another_account(shopify_store, personas):
    with pytest.raises(ValueError):
        alert_actions.create_channel(account=personas["other_account"], store=shopify_store, kind="webhook",
                                     name="Elsewhere", url="http://127.0.0.1:9/hook")

    assert not AlertChannel.objects.exists()


# The account's page.


def test_an_owner_adds_an_account_webhook_and_sees_its_secret_once(shopify_store, personas):
    alice = client_for(personas["alice"])
    page_url = reverse("alert-account-channels")

    response = alice.post(reverse("alert-account-channel-add", args=[personas["account"].public_id]),
                          {"kind": "slack", "name": "Ops room", "url": "http://127.0.0.1:9/hook"})

    channel = AlertChannel.objects.get()
    assert (channel.account, channel.store, channel.is_account_wide) == (personas["account"], None, True)
    page = response.content.decode()
    assert response.status_code == 200 and "Ops room" in page and channel.secret in page
    later = alice.get(page_url).content.decode()
    assert "Ops room" in later and channel.secret not in later


def test_an_admin_removes_an_account_webhook(shopify_store, personas):
    Membership.objects.filter(user=personas["bob"]).update(role=Role.ADMIN)
    channel = alert_actions.create_channel(account=personas["account"], kind="webhook", name="All shops",
                                           url="http://127.0.0.1:9/hook")

    response = client_for(personas["bob"]).post(
        reverse("alert-account-channel-remove", args=[personas["account"].public_id]),
        {"channel": channel.public_id}, follow=True,
    )

    assert response.status_code == 200 and "Channel All shops removed." in response.content.decode()
    assert not AlertChannel.objects.exists()


def test_an_invalid_account_webhook_is_refused(shopify_store, personas):
    response = client_for(personas["alice"]).post(
        reverse("alert-account-channel-add", args=[personas["account"].public_id]),
        {"kind": "slack", "name": "", "url": "not a url"},
    )

    assert response.status_code == 400
    assert not AlertChannel.objects.exists()


def test_a_member_cannot_see_or_change_account_webhooks(shopify_store, personas):
    channel = alert_actions.create_channel(account=personas["account"], kind="webhook", name="All shops",
                                           url="http://127.0.0.1:9/hook")
    bob = client_for(personas["bob"])
    account_id = personas["account"].public_id

    page = bob.get(reverse("alert-account-channels"))
    added = bob.post(reverse("alert-account-channel-add", args=[account_id]),
                     {"kind": "slack", "name": "Mine", "url": "http://127.0.0.1:9/hook"})
    removed = bob.post(reverse("alert-account-channel-remove", args=[account_id]), {"channel": channel.public_id})

    assert (page.status_code, added.status_code, removed.status_code) == (403, 403, 403)
    assert list(AlertChannel.objects.values_list("name", flat=True)) == ["All shops"]


def test_an_outsider_finds_no_account_webhooks_of_another_account(shopify_store, personas):
    channel = alert_actions.create_channel(account=personas["account"], kind="webhook", name="All shops",
                                           url="http://127.0.0.1:9/hook")
    charlie = client_for(personas["charlie"])
    account_id = personas["account"].public_id

    named = charlie.get(reverse("alert-account-channels") + f"?account={account_id}")
    own = charlie.get(reverse("alert-account-channels"))
    added = charlie.post(reverse("alert-account-channel-add", args=[account_id]),
                         {"kind": "slack", "name": "Mine", "url": "http://127.0.0.1:9/hook"})
    removed = charlie.post(reverse("alert-account-channel-remove", args=[account_id]), {"channel": channel.public_id})
    # Through his own account's URL, Alice's channel is not found either.
    through_own = charlie.post(reverse("alert-account-channel-remove", args=[personas["other_account"].public_id]),
                               {"channel": channel.public_id})

    assert (named.status_code, added.status_code, removed.status_code, through_own.status_code) == (404,) * 4
    assert own.status_code == 200 and "All shops" not in own.content.decode()
    assert list(AlertChannel.objects.values_list("name", flat=True)) == ["All shops"]


def test_a_stores_own_webhook_is_not_removed_from_the_account_page(shopify_store, personas):
    channel = alert_actions.create_channel(account=personas["account"], store=shopify_store, kind="webhook",
                                           name="Apparel", url="http://127.0.0.1:9/hook")

    response = client_for(personas["alice"]).post(
        reverse("alert-account-channel-remove", args=[personas["account"].public_id]), {"channel": channel.public_id}
    )

    assert response.status_code == 404
    assert AlertChannel.objects.filter(pk=channel.pk).exists()


def test_the_account_page_shows_each_post_with_its_store(shopify_store, woo_store, personas, new_receiver):
    receiver = new_receiver()
    receiver.statuses = [200, 410]
    alert_actions.create_channel(account=personas["account"], kind="webhook", name="All shops", url=receiver.url)
    deliver(fire(shopify_store, "1"))
    deliver(fire(woo_store, "2"))

    page = client_for(personas["alice"]).get(reverse("alert-account-channels")).content.decode()

    assert "HTTP 200" in page and "HTTP 410" in page
    assert "Alice-Apparel" in page and "Shop" in page


def test_a_stores_link_opens_its_account_when_another_is_current(shopify_store, personas):
    outlet = Account.objects.create(name="Alice Outlet")  # sorts first: the current account by default
    Membership.objects.create(account=outlet, user=personas["alice"], role=Role.OWNER)
    alert_actions.create_channel(account=personas["account"], kind="webhook", name="Apparel, all stores",
                                 url="http://127.0.0.1:9/hook")
    alice = client_for(personas["alice"])

    current = alice.get(reverse("alert-account-channels")).content.decode()
    linked = alice.get(reverse("alert-account-channels") + f"?account={personas['account'].public_id}")

    assert "Alert webhooks of Alice Outlet" in current and "Apparel, all stores" not in current
    assert "Apparel, all stores" in linked.content.decode()


def test_the_store_page_lists_the_account_webhooks_that_also_get_its_alerts(shopify_store, personas):
    alert_actions.create_channel(account=personas["account"], store=shopify_store, kind="webhook", name="Apparel only",
                                 url="http://127.0.0.1:9/store")
    account_channel = alert_actions.create_channel(account=personas["account"], kind="slack", name="All shops",
                                                   url="http://127.0.0.1:9/all")

    page = client_for(personas["alice"]).get(reverse("alert-channels", args=[shopify_store.public_id])).content.decode()

    also = page[page.index("data-account-channels"):]
    # The URL is a credential: the page shows where it posts, not its path.
    assert "All shops" in also and "http://127.0.0.1:9/…" in also and "/all" not in also
    assert reverse("alert-account-channels") + f"?account={personas['account'].public_id}" in page
    # Read-only here: it is removed on the account's page.
    assert f'name="channel" value="{account_channel.public_id}"' not in page
    assert "Apparel only" in page[: page.index("data-account-channels")]
