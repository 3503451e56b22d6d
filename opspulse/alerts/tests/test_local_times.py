"""Alert mails, Slack messages and webhook bodies give times in their reader's timezone."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from django.core import mail

from opspulse.alerts import actions as alert_actions
from opspulse.alerts import delivery
from opspulse.alerts.models import Alert, AlertEvent, AlertPreference, AlertType
from tests.support.alerts import Receiver

pytestmark = pytest.mark.usefixtures("private_receivers")

# Paris moves its clocks from 02:00 to 03:00 at 01:00 UTC on March 29, 2026; New York
# did on March 8, so it is already on summer time (UTC-4).
BEFORE_SWITCH = datetime(2026, 3, 29, 0, 59, tzinfo=UTC)
AFTER_SWITCH = datetime(2026, 3, 29, 1, 1, tzinfo=UTC)


@pytest.fixture
def receivers() -> Iterator[tuple[Receiver, Receiver]]:
    slack, webhook = Receiver([]), Receiver([])
    yield slack, webhook
    slack.close()
    webhook.close()


def fire_at(rule: Alert, moment: datetime, number: str) -> AlertEvent:
    event = AlertEvent.objects.create(alert=rule, store=rule.store, subject=f"order:{number}",
                                      message=f"High-value order #{number}: €950.00")
    AlertEvent.objects.filter(pk=event.pk).update(fired_at=moment)
    return event


def test_times_are_local_to_the_member_in_mail_and_to_the_store_in_slack_and_webhooks_across_a_dst_change(
    shopify_store, personas, receivers
):
    slack, webhook = receivers
    alice, bob, account = personas["alice"], personas["bob"], personas["account"]
    AlertPreference.objects.create(user=alice, account=account, timezone="Europe/Paris")
    AlertPreference.objects.create(user=bob, account=account, timezone="America/New_York", daily_digest=True,
                                   digest_hour=0)
    alert_actions.create_channel(account=account, store=shopify_store, kind="slack", name="Ops", url=slack.url)
    alert_actions.create_channel(account=account, store=shopify_store, kind="webhook", name="ERP", url=webhook.url)
    rule = Alert.objects.create(store=shopify_store, type=AlertType.HIGH_VALUE_ORDER, config={"threshold": "400.00"})
    events = [fire_at(rule, BEFORE_SWITCH, "1"), fire_at(rule, AFTER_SWITCH, "2")]

    for event in events:
        deliveries, _ = alert_actions.dispatch_event(event.pk)
        for delivery_id in deliveries:
            delivery.post_delivery(delivery_id, final=True)
    for user in (alice, bob):
        delivery.send_pending_mail(user.pk, account.pk)

    mails = {message.to[0]: message for message in mail.outbox}
    # Alice (Paris) gets one mail with both; Bob (New York) his digest.
    paris = mails["alice@example.com"]
    for text in (paris.body, paris.alternatives[0][0]):
        assert "fired Mar 29, 01:59" in text and "fired Mar 29, 03:01" in text and "(Europe/Paris)" in text
    new_york = mails["bob@example.com"]
    assert new_york.subject.startswith("[OpsPulse] Daily alert digest")
    for text in (new_york.body, new_york.alternatives[0][0]):
        assert "fired Mar 28, 20:59" in text and "fired Mar 28, 21:01" in text and "(America/New_York)" in text
    # Slack and webhooks: the store's time (Paris), its offset changing with the clocks.
    assert [json.loads(body)["text"].split(" http")[0] for _, body in slack.requests] == [
        "High-value order #1: €950.00 (Alice-Apparel) fired Mar 29, 01:59 (Europe/Paris)",
        "High-value order #2: €950.00 (Alice-Apparel) fired Mar 29, 03:01 (Europe/Paris)",
    ]
    posts = [json.loads(body)["event"] for _, body in webhook.requests]
    assert [post["fired_at"] for post in posts] == ["2026-03-29T01:59:00+01:00", "2026-03-29T03:01:00+02:00"]
    assert {post["store"]["timezone"] for post in posts} == {"Europe/Paris"}
    assert [datetime.fromisoformat(post["fired_at"]) for post in posts] == [BEFORE_SWITCH, AFTER_SWITCH]


def test_a_resolution_posted_to_slack_gives_its_local_time(shopify_store, personas, receivers):
    slack, _ = receivers
    alert_actions.create_channel(account=personas["account"], store=shopify_store, kind="slack", name="Ops",
                                 url=slack.url)
    rule = Alert.objects.create(store=shopify_store, type=AlertType.LOW_STOCK, config={"threshold": 5})
    event = AlertEvent.objects.create(alert=rule, store=shopify_store, subject="stock:1", condition="stock:1",
                                      message="Low stock: Mug has 2 left")
    AlertEvent.objects.filter(pk=event.pk).update(fired_at=BEFORE_SWITCH, resolved_at=AFTER_SWITCH)

    deliveries, _ = alert_actions.dispatch_event(event.pk)
    for delivery_id in deliveries:
        delivery.post_delivery(delivery_id, final=True)

    assert [json.loads(body)["text"].split(" http")[0] for _, body in slack.requests] == [
        "Low stock: Mug has 2 left (Alice-Apparel) fired Mar 29, 01:59 (Europe/Paris)",
        "Resolved: Low stock: Mug has 2 left (Alice-Apparel) resolved Mar 29, 03:01 (Europe/Paris)",
    ]
