"""A worker keeps each store's alert rules between batches, and never acts on old ones."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from opspulse.alerts.models import Alert, AlertEvent, AlertType
from opspulse.stores.models import Store
from tests.support.jobs import run_worker_until_idle
from tests.support.webhooks import post_shopify, shopify_order

pytestmark = pytest.mark.django_db(transaction=True)


def order(web, store, number: int) -> None:
    placed = timezone.now().replace(microsecond=0) - timedelta(minutes=1)
    post_shopify(web.url, store, "orders/create", shopify_order(number, at=placed, currency="EUR"))


def rule_reads(queries) -> int:
    return sum('FROM "alerts_alert"' in query["sql"] for query in queries)


def test_a_rule_made_between_two_batches_fires_on_the_next_order(web, shopify_store):
    # The first batch finds no rule, and the worker keeps that.
    order(web, shopify_store, 5001)
    run_worker_until_idle()
    order(web, shopify_store, 5002)
    with CaptureQueriesContext(connection) as batch:
        run_worker_until_idle()
    assert rule_reads(batch.captured_queries) == 0  # the kept (empty) rules were used

    # Made as any code or the admin would: the database moves the store's version on.
    Alert.objects.create(store=shopify_store, type=AlertType.HIGH_VALUE_ORDER, config={"threshold": "50.00"})
    order(web, shopify_store, 5003)
    run_worker_until_idle()
    assert list(AlertEvent.objects.values_list("message", flat=True)) == ["High-value order #1003: €62.50"]

    # Switched off the same way: the next order fires nothing.
    Alert.objects.filter(store=shopify_store).update(is_active=False)
    order(web, shopify_store, 5004)
    run_worker_until_idle()
    assert AlertEvent.objects.count() == 1


def test_saving_a_store_read_before_a_rule_changed_does_not_set_its_version_back(shopify_store):
    stale = Store.objects.get(pk=shopify_store.pk)
    Alert.objects.create(store=shopify_store, type=AlertType.LOW_STOCK, config={"threshold": 5})
    moved = Store.objects.get(pk=shopify_store.pk).alert_rules_version
    assert moved == stale.alert_rules_version + 1

    stale.name = "Renamed"
    stale.save()

    assert Store.objects.get(pk=shopify_store.pk).alert_rules_version == moved
