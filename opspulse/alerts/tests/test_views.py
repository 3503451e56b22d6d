"""Alert pages: admins manage a store's rules, members read them, everyone acknowledges."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from opspulse.accounts.models import Membership, Role
from opspulse.alerts.forms import describe
from opspulse.alerts.models import Alert, AlertEvent, AlertPreference, AlertType
from tests.support.stores import make_store


@pytest.fixture
def alice(personas) -> Client:
    client = Client()
    client.force_login(personas["alice"])
    return client


@pytest.fixture
def bob(personas) -> Client:
    client = Client()
    client.force_login(personas["bob"])
    return client


def url(name: str, store) -> str:
    return reverse(name, args=[store.public_id])


def test_an_owner_adds_a_high_value_rule_in_the_store_currency(shopify_store, alice):
    form = alice.get(url("alert-rule-create", shopify_store) + "?type=high_value_order")
    assert "Order total at least (EUR)" in form.content.decode()

    response = alice.post(url("alert-rule-create", shopify_store), {"type": "high_value_order", "amount": "750.5"})

    assert response.status_code == 302
    rule = Alert.objects.get(store=shopify_store)
    assert (rule.type, rule.config, rule.is_active) == (
        AlertType.HIGH_VALUE_ORDER, {"threshold": "750.50", "window_minutes": 60}, True
    )
    assert "Orders of €750.50 or more, placed in the last 60 min" in alice.get(
        url("alert-rules", shopify_store)
    ).content.decode()


def test_an_invalid_rule_is_refused_with_clear_errors(shopify_store, alice):
    response = alice.post(url("alert-rule-create", shopify_store), {
        "type": "no_orders", "hours": "0", "weekdays": ["0"], "opens_at": "18:00", "closes_at": "09:00",
    })

    page = response.content.decode()
    assert response.status_code == 400
    assert "Ensure this value is greater than or equal to 1." in page
    assert "Closing time must be after opening time (same day)." in page
    assert Alert.objects.count() == 0


def test_sync_trouble_needs_something_to_watch(shopify_store, alice):
    response = alice.post(url("alert-rule-create", shopify_store), {"type": "sync_trouble", "webhook_hours": "0"})

    assert response.status_code == 400
    assert "Choose at least one thing to watch" in response.content.decode()


def test_a_sync_trouble_rule_can_watch_only_failed_webhooks(shopify_store, alice):
    form = alice.get(url("alert-rule-create", shopify_store) + "?type=sync_trouble").content.decode()
    alice.post(url("alert-rule-create", shopify_store), {"type": "sync_trouble", "failed_deliveries": "on"})

    assert re.search(r'name="failed_deliveries"[^>]*checked', form)
    rule = Alert.objects.get()
    assert rule.config == {"integration_error": False, "webhook_hours": 0, "failed_deliveries": True}
    assert describe(rule.type, rule.config, "EUR") == "Sync: failed webhooks"


def test_a_low_stock_rule_can_be_limited_to_a_sku_and_location(shopify_store, alice):
    alice.post(url("alert-rule-create", shopify_store), {
        "type": "low_stock", "stock_threshold": "3", "sku": " TEE-BLK-M ", "location": "9",
    })

    assert Alert.objects.get().config == {"threshold": 3, "sku": "TEE-BLK-M", "location": "9"}


def test_an_owner_edits_pauses_resumes_and_deletes_a_rule(shopify_store, alice):
    rule = Alert.objects.create(store=shopify_store, type=AlertType.NO_ORDERS,
                                config={"hours": 3, "weekdays": [0], "start": "09:00", "end": "18:00"})

    edit = alice.get(url("alert-rule-edit", shopify_store) + f"?rule={rule.public_id}")
    assert 'value="09:00"' in edit.content.decode()
    alice.post(url("alert-rule-edit", shopify_store), {
        "rule": rule.public_id, "hours": "5", "weekdays": ["5", "6"], "opens_at": "10:00", "closes_at": "16:00",
    })
    rule.refresh_from_db()
    assert rule.config == {"hours": 5, "weekdays": [5, 6], "start": "10:00", "end": "16:00"}

    alice.post(url("alert-rule-toggle", shopify_store), {"rule": rule.public_id, "active": "0"})
    rule.refresh_from_db()
    assert not rule.is_active
    assert "Paused" in alice.get(url("alert-rules", shopify_store)).content.decode()
    alice.post(url("alert-rule-toggle", shopify_store), {"rule": rule.public_id, "active": "1"})
    rule.refresh_from_db()
    assert rule.is_active

    alice.post(url("alert-rule-delete", shopify_store), {"rule": rule.public_id})
    assert not Alert.objects.exists()


def test_a_member_reads_rules_but_cannot_change_them(shopify_store, bob):
    rule = Alert.objects.create(store=shopify_store, type=AlertType.LOW_STOCK, config={"threshold": 5})

    page = bob.get(url("alert-rules", shopify_store)).content.decode()
    edit = bob.post(url("alert-rule-edit", shopify_store), {"rule": rule.public_id, "stock_threshold": "1"})
    pause = bob.post(url("alert-rule-toggle", shopify_store), {"rule": rule.public_id, "active": "0"})

    assert "Stock at or below 5 (every item)" in page
    assert "Only admins and owners can change rules." in page and "Add a rule" not in page
    assert (edit.status_code, pause.status_code) == (403, 403)
    rule.refresh_from_db()
    assert rule.config == {"threshold": 5} and rule.is_active


def test_a_rule_of_another_store_is_not_found(shopify_store, personas, alice):
    foreign = make_store(personas["other_account"], platform="shopify", domain="chairs.myshopify.com", secret="s")
    rule = Alert.objects.create(store=foreign, type=AlertType.LOW_STOCK, config={"threshold": 5})

    response = alice.post(url("alert-rule-delete", shopify_store), {"rule": rule.public_id})

    assert response.status_code == 404
    assert Alert.objects.filter(pk=rule.pk).exists()


def test_history_shows_alerts_and_who_acknowledged_them(shopify_store, bob):
    rule = Alert.objects.create(store=shopify_store, type=AlertType.LOW_STOCK, config={"threshold": 5})
    event = AlertEvent.objects.create(alert=rule, store=shopify_store, subject="stock:1", condition="stock:1",
                                      message="Low stock: Mug has 2 left")
    history = url("alert-history", shopify_store)
    assert "ongoing" in bob.get(history).content.decode()

    bob.post(url("alert-acknowledge", shopify_store), {"event": event.public_id})
    again = bob.post(url("alert-acknowledge", shopify_store), {"event": event.public_id}, follow=True)

    event.refresh_from_db()
    assert event.acknowledged_by.email == "bob@example.com" and event.acknowledged_at is not None
    assert "Acknowledged by bob@example.com" in again.content.decode()
    assert "Someone acknowledged this alert already." in again.content.decode()
    assert "Nothing needs attention." in bob.get(history + "?show=open").content.decode()


def test_a_member_sets_their_own_quiet_hours_and_digest(shopify_store, bob, personas):
    response = bob.post(reverse("alert-preferences"), {
        "email_enabled": "on", "daily_digest": "on", "digest_hour": "7", "timezone": "America/New_York",
        "quiet_start": "22:00", "quiet_end": "07:00",
    })

    assert response.status_code == 302
    preference = AlertPreference.objects.get(user=personas["bob"])
    assert (preference.daily_digest, preference.digest_hour, preference.timezone) == (True, 7, "America/New_York")
    assert str(preference.quiet_start) == "22:00:00"


def test_quiet_hours_need_both_ends(shopify_store, bob):
    response = bob.post(reverse("alert-preferences"), {"timezone": "UTC", "digest_hour": "8", "quiet_start": "22:00"})

    assert response.status_code == 400
    assert "Give both ends of the quiet hours, or neither." in response.content.decode()


def test_an_admin_adds_a_webhook_and_sees_its_secret_once(shopify_store, personas, alice, private_receivers):
    Membership.objects.filter(user=personas["alice"]).update(role=Role.ADMIN)

    response = alice.post(url("alert-channels", shopify_store),
                          {"kind": "slack", "name": "Ops room", "url": "http://127.0.0.1:9/hook"})

    page = response.content.decode()
    channel = shopify_store.alert_channels.get()
    assert "Ops room" in page and channel.secret in page and channel.secret.startswith("whsec_")
    assert channel.secret not in channel.secret_encrypted
    assert channel.secret not in alice.get(url("alert-channels", shopify_store)).content.decode()


def test_the_dashboard_links_to_rules_and_history(shopify_store, bob):
    page = bob.get(reverse("dashboard", args=[shopify_store.public_id])).content.decode()

    assert url("alert-rules", shopify_store) in page and url("alert-history", shopify_store) in page


def test_history_pages_through_older_alerts(shopify_store, bob):
    from opspulse.alerts.selectors import HISTORY_SIZE

    rule = Alert.objects.create(store=shopify_store, type=AlertType.HIGH_VALUE_ORDER, config={"threshold": "100"})
    start = timezone.now() - timedelta(days=1)
    events = AlertEvent.objects.bulk_create(
        AlertEvent(alert=rule, store=shopify_store, subject=f"order:{n}", message=f"High-value order #{n}")
        for n in range(HISTORY_SIZE + 5)
    )
    for n, event in enumerate(events):
        event.fired_at = start + timedelta(minutes=n // 2)  # two alerts a minute: ties on fired_at too
    AlertEvent.objects.bulk_update(events, ["fired_at"])
    history = url("alert-history", shopify_store)

    first = bob.get(history).content.decode()
    older = re.search(r'href="(\?before=[^"]+)" rel="next"', first).group(1)
    second = bob.get(history + older.replace("&amp;", "&")).content.decode()

    shown = [int(n) for n in re.findall(r"High-value order #(\d+)</p>", first + second)]
    assert shown == list(range(HISTORY_SIZE + 4, -1, -1))  # each once, newest first
    assert 'rel="next"' not in second and "← Newest alerts" in second


def test_a_page_of_history_after_another_stores_alert_is_not_found(shopify_store, personas, bob):
    foreign = make_store(personas["other_account"], platform="shopify", domain="chairs.myshopify.com", secret="s")
    rule = Alert.objects.create(store=foreign, type=AlertType.LOW_STOCK, config={"threshold": 5})
    event = AlertEvent.objects.create(alert=rule, store=foreign, subject="stock:1", message="Low stock: Chair")

    response = bob.get(url("alert-history", shopify_store) + f"?before={event.public_id}")

    assert response.status_code == 404


def test_acknowledge_all_covers_the_alerts_on_screen_not_later_ones_nor_other_stores(shopify_store, personas, bob):
    rule = Alert.objects.create(store=shopify_store, type=AlertType.HIGH_VALUE_ORDER, config={"threshold": "100"})
    earlier = [
        AlertEvent.objects.create(alert=rule, store=shopify_store, subject=f"order:{n}", message=f"Order #{n}")
        for n in range(3)
    ]
    page = bob.get(url("alert-history", shopify_store)).content.decode()
    until = re.search(r'name="until" value="([^"]+)"', page).group(1)
    # fired while the page was on screen
    later = AlertEvent.objects.create(alert=rule, store=shopify_store, subject="order:9", message="Order #9")
    foreign = make_store(personas["other_account"], platform="shopify", domain="chairs.myshopify.com", secret="s")
    foreign_rule = Alert.objects.create(store=foreign, type=AlertType.LOW_STOCK, config={"threshold": 5})
    foreign_event = AlertEvent.objects.create(alert=foreign_rule, store=foreign, subject="stock:1", message="Chair")

    response = bob.post(url("alert-acknowledge-all", shopify_store), {"until": until}, follow=True)

    assert "3 alerts acknowledged." in response.content.decode()
    assert {event.acknowledged_by.email for event in AlertEvent.objects.filter(pk__in=[e.pk for e in earlier])} == {
        "bob@example.com"
    }
    later.refresh_from_db()
    foreign_event.refresh_from_db()
    assert later.acknowledged_at is None and foreign_event.acknowledged_at is None
    again = bob.post(url("alert-acknowledge-all", shopify_store), {"until": until}, follow=True)
    assert "Every alert was acknowledged already." in again.content.decode()
    for garbled in ("yesterday", "2026-13-45T25:00:00+00:00", "2026-11-30T10:00:00"):
        response = bob.post(url("alert-acknowledge-all", shopify_store), {"until": garbled}, follow=True)
        assert "Nothing was acknowledged" in response.content.decode()
