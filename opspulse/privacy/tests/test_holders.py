"""Every place that keeps a customer's personal data takes part in privacy requests."""

from __future__ import annotations

from opspulse.ingest import privacy as ingest_privacy
from opspulse.privacy import holders


def test_the_orders_and_the_stored_webhooks_are_registered_holders():
    assert holders.orders_of in holders._holders
    assert ingest_privacy.customer_webhooks in holders._holders


def test_ingest_marks_a_request_that_is_not_acted_on_ignored():
    assert ingest_privacy.ignore_request in holders._refusal_listeners
