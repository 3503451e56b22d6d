"""Alerts fire once per cause: a replayed order or a stock level that stays low is quiet."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from opspulse.alerts.models import Alert, AlertEvent, AlertType
from opspulse.commerce import actions
from opspulse.commerce.models import OrderStatus
from tests.support.webhooks import T0


@pytest.fixture
def alerts(shopify_store):
    return {
        "high_value": Alert.objects.create(store=shopify_store, type=AlertType.HIGH_VALUE_ORDER, config={"threshold": "400.00"}),
        "low_stock": Alert.objects.create(store=shopify_store, type=AlertType.LOW_STOCK, config={"threshold": 5}),
    }


def order(external_id: str, total: str, *, minutes: int = 0, status: OrderStatus = OrderStatus.PAID) -> actions.OrderData:
    return actions.OrderData(
        external_id=external_id, number=f"#{external_id}", status=status, currency="EUR", total=Decimal(total),
        placed_at=timezone.now(), updated_at=T0 + timedelta(minutes=minutes),
    )


def stock(available: int, minutes: int) -> actions.StockData:
    return actions.StockData(item_external_id="77", location_external_id="9", available=available,
                             updated_at=T0 + timedelta(minutes=minutes))


def test_high_value_order_fires_once(shopify_store, alerts):
    actions.record_order(store=shopify_store, data=order("1", "450.00"))
    actions.record_order(store=shopify_store, data=order("1", "460.00", minutes=1))
    actions.record_order(store=shopify_store, data=order("2", "399.99"))

    event = AlertEvent.objects.get()
    assert event.alert == alerts["high_value"]
    assert event.message == "High-value order #1: €450.00"


def test_cancelled_high_value_order_does_not_fire(shopify_store, alerts):
    actions.record_order(store=shopify_store, data=order("1", "900.00", status=OrderStatus.CANCELLED))

    assert AlertEvent.objects.count() == 0


def test_low_stock_fires_when_crossing_and_again_after_a_restock(shopify_store, alerts):
    actions.apply_stock_change(store=shopify_store, data=stock(20, 0))
    actions.apply_stock_change(store=shopify_store, data=stock(4, 1))  # crosses: fires
    actions.apply_stock_change(store=shopify_store, data=stock(2, 2))  # still low: quiet
    actions.apply_stock_change(store=shopify_store, data=stock(4, 1))  # stale replay: quiet
    actions.apply_stock_change(store=shopify_store, data=stock(30, 3))  # restocked
    actions.apply_stock_change(store=shopify_store, data=stock(5, 4))  # crosses again: fires

    assert list(AlertEvent.objects.order_by("id").values_list("message", flat=True)) == [
        "Low stock: Inventory item 77 has 4 left",
        "Low stock: Inventory item 77 has 5 left",
    ]


def test_inactive_alert_stays_quiet(shopify_store, alerts):
    Alert.objects.update(is_active=False)

    actions.record_order(store=shopify_store, data=order("1", "999.00"))
    actions.apply_stock_change(store=shopify_store, data=stock(0, 0))

    assert AlertEvent.objects.count() == 0
