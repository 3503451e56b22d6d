"""Rules about single orders fire for orders that just happened, never for late news."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from opspulse.alerts.models import Alert, AlertEvent, AlertType
from opspulse.commerce import actions
from opspulse.commerce.models import Order
from tests.support.jobs import run_worker_until_idle
from tests.support.webhooks import post_shopify, shopify_order


def placed(external_id: str, *, ago: timedelta) -> actions.OrderData:
    at = timezone.now() - ago
    return actions.OrderData(external_id=external_id, number=f"#{external_id}", status="paid", currency="EUR",
                             total=Decimal("900.00"), placed_at=at, updated_at=timezone.now())


def fired() -> list[str]:
    return list(AlertEvent.objects.order_by("pk").values_list("message", flat=True))


@pytest.mark.django_db(transaction=True)
def test_a_delayed_webhook_for_an_order_placed_two_hours_ago_fires_no_high_value_alert(web, shopify_store):
    Alert.objects.create(store=shopify_store, type=AlertType.HIGH_VALUE_ORDER, config={"threshold": "50.00"})
    now = timezone.now().replace(microsecond=0)

    # Both arrive now; Shopify retried the first one for two hours.
    post_shopify(web.url, shopify_store, "orders/create", shopify_order(5001, at=now - timedelta(hours=2), currency="EUR"))
    post_shopify(web.url, shopify_store, "orders/create", shopify_order(5002, at=now - timedelta(minutes=5), currency="EUR"))
    run_worker_until_idle()

    assert Order.objects.count() == 2
    assert fired() == ["High-value order #1002: €62.50"]


def test_an_update_of_an_order_placed_hours_ago_fires_no_high_value_alert(shopify_store):
    Alert.objects.create(store=shopify_store, type=AlertType.HIGH_VALUE_ORDER, config={"threshold": "500.00"})

    actions.record_order(store=shopify_store, data=placed("1", ago=timedelta(hours=3)))

    assert Order.objects.get().total == Decimal("900.00")
    assert fired() == []


def test_a_rules_own_window_set_in_the_rule_form_decides_which_orders_are_recent(shopify_store, personas):
    owner = Client()
    owner.force_login(personas["alice"])
    form = owner.get(reverse("alert-rule-create", args=[shopify_store.public_id]) + "?type=high_value_order")
    assert 'name="window_minutes" value="60"' in form.content.decode()  # the default: one hour
    owner.post(reverse("alert-rule-create", args=[shopify_store.public_id]),
               {"type": "high_value_order", "amount": "500", "window_minutes": "180"})
    Alert.objects.create(store=shopify_store, type=AlertType.HIGH_VALUE_ORDER, config={"threshold": "800.00"})

    actions.apply_records(store=shopify_store, records=[
        placed("1", ago=timedelta(hours=2)), placed("2", ago=timedelta(hours=4)), placed("3", ago=timedelta(minutes=1)),
    ])

    by_rule = {
        threshold: sorted(AlertEvent.objects.filter(alert__config__threshold=threshold).values_list("subject", flat=True))
        for threshold in ("500.00", "800.00")
    }
    # The three-hour rule takes the order of two hours ago, the default one only the new one.
    assert by_rule == {"500.00": ["order:1", "order:3"], "800.00": ["order:3"]}
