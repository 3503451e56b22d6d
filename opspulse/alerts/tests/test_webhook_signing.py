"""Posts to channels: a webhook receiver can tell a fresh post from a replayed or changed
one by the procedure docs/alert-webhooks.md gives; Slack reads the merchant's text as text."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.utils import timezone

from opspulse.alerts import delivery
from opspulse.alerts.models import Alert, AlertEvent, AlertType
from opspulse.commerce import actions
from tests.support.alerts import channel_delivery
from tests.support.processes import ROOT
from tests.support.webhooks import T0

pytestmark = pytest.mark.usefixtures("private_receivers")


def documented_verifier():
    """The receiver's check exactly as docs/alert-webhooks.md shows it."""
    text = Path(ROOT, "docs", "alert-webhooks.md").read_text()
    [code] = re.findall(r"```python\n(.*?)```", text, re.S)
    namespace: dict = {}
    exec(compile(code, "docs/alert-webhooks.md", "exec"), namespace)  # noqa: S102 - our own documentation
    return namespace["verify_opspulse_webhook"]


def test_a_receiver_following_the_docs_accepts_a_fresh_post_and_refuses_a_replay_or_a_changed_body(
    fired, shopify_store, receiver  # noqa: F811
):
    """Replay: someone who captured a signed post sends it again later; tampering: the
    body is changed in transit. Both are refused, the post as sent is accepted."""
    sent = channel_delivery(shopify_store, fired, url=receiver.url)
    verify = documented_verifier()

    delivery.post_delivery(sent.pk, final=False)

    [(headers, body)] = receiver.requests
    signature, secret = headers["x-opspulse-signature"], sent.channel.secret
    sent_at = json.loads(body)["timestamp"]
    accepted = verify(body, signature, secret)
    assert accepted is not None and accepted["event"]["id"] == str(fired.public_id)
    assert verify(body, signature, secret, now=sent_at + 299) == accepted
    assert verify(body, signature, secret, now=sent_at + 301) is None
    changed = body.replace(b'"timestamp":%d' % sent_at, b'"timestamp":%d' % (sent_at + 600))
    assert changed != body
    assert verify(changed, signature, secret, now=sent_at + 601) is None
    assert verify(body, signature, "whsec_another-channels-secret") is None


def test_each_attempt_is_signed_with_its_own_sending_time(fired, shopify_store, receiver):  # noqa: F811
    """A retry is a new post: it is not refused as a replay of the first attempt."""
    sent = channel_delivery(shopify_store, fired, url=receiver.url)
    first = delivery.payload(sent, sent_at=T0)

    later = delivery.payload(sent, sent_at=T0 + timedelta(minutes=10))

    assert json.loads(first)["timestamp"] == int(T0.timestamp())
    assert json.loads(later)["timestamp"] == int(T0.timestamp()) + 600


def test_a_slack_message_escapes_the_merchants_text(shopify_store, receiver):  # noqa: F811
    """A store named with Slack markup, or an order number carrying `<!channel>`, would
    otherwise ping the whole Slack channel or show a link the merchant chose."""
    shopify_store.name = "Tom & Jerry <https://evil.example|Bank>"
    shopify_store.save(update_fields=["name"])
    Alert.objects.create(store=shopify_store, type=AlertType.HIGH_VALUE_ORDER, config={"threshold": "400.00"})
    actions.record_order(store=shopify_store, data=actions.OrderData(
        external_id="1", number="<!channel>", status="paid", currency="EUR", total=Decimal("950.00"),
        placed_at=timezone.now(), updated_at=timezone.now(),
    ))
    sent = channel_delivery(shopify_store, AlertEvent.objects.get(), url=receiver.url, kind="slack")

    delivery.post_delivery(sent.pk, final=False)

    text = json.loads(receiver.requests[0][1])["text"]
    assert text.startswith(
        "High-value order &lt;!channel&gt;: €950.00 (Tom &amp; Jerry &lt;https://evil.example|Bank&gt;) fired "
    )
    assert "<" not in text and ">" not in text
