"""An alert that fired, and a webhook receiver to deliver it to."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest
from django.utils import timezone

from opspulse.alerts.models import Alert, AlertEvent, AlertType
from opspulse.commerce import actions
from tests.support.alerts import Receiver


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
        placed_at=timezone.now(), updated_at=timezone.now(),
    ))
    return AlertEvent.objects.get()
