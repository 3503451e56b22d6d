"""Failed deliveries: admins see them with their reason on the dashboard and retry them;
an operator retries them with a command; the sync-trouble alert watches them."""

from __future__ import annotations

import io
import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from opspulse.alerts import actions as alert_actions
from opspulse.alerts.models import Alert, AlertType
from opspulse.commerce.models import Order
from opspulse.ingest import actions, queue
from opspulse.ingest.models import DeliveryStatus, WebhookDelivery
from opspulse.metrics.models import Metric
from tests.support.jobs import run_worker_until_idle
from tests.support.stores import client_for
from tests.support.webhooks import orders_refused, post_shopify, shopify_order

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def failed_order(web, shopify_store, settings) -> WebhookDelivery:
    """Order 5001 fails on every attempt (the database refuses it) until it is marked
    failed; order 5002 goes through. The fault is then fixed."""
    settings.DELIVERY_RETRY_BASE_SECONDS = 0
    with orders_refused("5001"):
        post_shopify(web.url, shopify_store, "orders/create", shopify_order(5001))
        post_shopify(web.url, shopify_store, "orders/create", shopify_order(5002))
        for _ in range(settings.DELIVERY_MAX_ATTEMPTS):
            actions.drain_store(store_id=shopify_store.pk)
    failed = WebhookDelivery.objects.get(status=DeliveryStatus.FAILED)
    assert failed.attempts == settings.DELIVERY_MAX_ATTEMPTS
    return failed


def orders_counted(store) -> Decimal:
    return sum(
        Metric.objects.filter(store=store, name="orders", granularity="day").values_list("value", flat=True),
        Decimal(0),
    )


def dashboard(client: Client, store) -> str:
    response = client.get(reverse("dashboard", args=[store.public_id]))
    assert response.status_code == 200
    return response.content.decode()


def test_a_delivery_failing_five_times_shows_on_the_dashboard_with_its_reason_for_an_admin(
    failed_order, shopify_store, personas
):
    page = dashboard(client_for(personas["alice"]), shopify_store)

    assert "1 webhook could not be processed." in page
    assert len(re.findall(r"data-failed-delivery>", page)) == 1
    assert '<span class="font-mono">orders/create</span>' in page
    assert "after 5 attempts" in page
    reason = re.search(r"data-failure-reason>([^<]*)<", page).group(1)
    assert "disk on fire" in reason
    # The body is never shown: not the customer, not the order's contents.
    assert "ada@example.com" not in page and "TEE-BLK-M" not in page
    assert f'name="delivery" value="{failed_order.delivery_key}"' in page
    assert "data-retry-all" in page


def test_an_admin_retries_a_failed_delivery_once_its_cause_is_fixed_and_the_order_is_counted(
    failed_order, shopify_store, personas
):
    assert list(Order.objects.values_list("external_id", flat=True)) == ["5002"]
    alice = client_for(personas["alice"])

    response = alice.post(
        reverse("retry-deliveries", args=[shopify_store.public_id]), {"delivery": failed_order.delivery_key}
    )

    assert response.status_code == 302
    assert response["Location"] == reverse("dashboard", args=[shopify_store.public_id])
    failed_order.refresh_from_db()
    assert (failed_order.status, failed_order.attempts, failed_order.error) == (DeliveryStatus.PENDING, 0, "")
    lane_job = connection.cursor()
    lane_job.execute("SELECT count(*) FROM procrastinate_jobs WHERE queueing_lock = %s AND status = 'todo'",
                     [queue.drain_lock(queue.lane_of(shopify_store.pk))])
    assert lane_job.fetchone()[0] == 1

    run_worker_until_idle()

    failed_order.refresh_from_db()
    assert failed_order.status == DeliveryStatus.PROCESSED
    assert sorted(Order.objects.values_list("external_id", flat=True)) == ["5001", "5002"]
    assert orders_counted(shopify_store) == 2
    page = dashboard(alice, shopify_store)
    assert "1 failed webhook queued again." in page
    assert "data-failed-deliveries" not in page


def test_retry_all_queues_every_failed_delivery_of_the_store_and_no_other_stores(
    failed_order, shopify_store, woo_store, personas
):
    other = WebhookDelivery.objects.create(
        store=woo_store, platform="woocommerce", topic="order.created", delivery_key="w1",
        received_at=timezone.now(), body=b"{}", status=DeliveryStatus.FAILED, error="bad",
    )

    alice = client_for(personas["alice"])
    alice.post(reverse("retry-deliveries", args=[shopify_store.public_id]))

    assert WebhookDelivery.objects.get(pk=failed_order.pk).status == DeliveryStatus.PENDING
    assert WebhookDelivery.objects.get(pk=other.pk).status == DeliveryStatus.FAILED


def test_a_member_sees_the_count_but_no_reason_and_cannot_retry(failed_order, shopify_store, personas):
    bob = client_for(personas["bob"])

    page = dashboard(bob, shopify_store)
    response = bob.post(
        reverse("retry-deliveries", args=[shopify_store.public_id]), {"delivery": failed_order.delivery_key}
    )

    assert "1 webhook could not be processed." in page
    assert "disk on fire" not in page
    assert "data-retry" not in page and "data-failed-delivery>" not in page
    assert response.status_code == 403
    failed_order.refresh_from_db()
    assert failed_order.status == DeliveryStatus.FAILED


def test_an_outsider_gets_404_and_retries_nothing(failed_order, shopify_store, personas):
    charlie = client_for(personas["charlie"])

    response = charlie.post(reverse("retry-deliveries", args=[shopify_store.public_id]))

    assert response.status_code == 404
    failed_order.refresh_from_db()
    assert failed_order.status == DeliveryStatus.FAILED


def test_a_retry_posted_from_another_site_without_the_csrf_token_is_refused(failed_order, shopify_store, personas):
    forger = Client(enforce_csrf_checks=True)
    forger.force_login(personas["alice"])

    response = forger.post(reverse("retry-deliveries", args=[shopify_store.public_id]))

    assert response.status_code == 403
    failed_order.refresh_from_db()
    assert failed_order.status == DeliveryStatus.FAILED


def test_the_operator_command_retries_a_stores_failed_deliveries(failed_order, shopify_store):
    out = io.StringIO()

    call_command("retry_deliveries", "--store", str(shopify_store.public_id), stdout=out)
    run_worker_until_idle()

    assert out.getvalue() == "1 of 1 failed deliveries queued again\n"
    failed_order.refresh_from_db()
    assert failed_order.status == DeliveryStatus.PROCESSED
    assert orders_counted(shopify_store) == 2


def test_the_operator_command_narrows_by_id_and_failure_time(failed_order, shopify_store):
    out = io.StringIO()

    call_command("retry_deliveries", "--all-stores", "--id", str(failed_order.pk + 1000), stdout=out)
    call_command("retry_deliveries", "--all-stores", "--since", "2999-01-01", stdout=out)
    call_command("retry_deliveries", "--all-stores", "--since", "1:00:00", "--id", str(failed_order.pk), stdout=out)

    assert out.getvalue().splitlines() == [
        "0 of 1 failed deliveries queued again",
        "0 of 1 failed deliveries queued again",
        "1 of 1 failed deliveries queued again",
    ]
    assert WebhookDelivery.objects.get(pk=failed_order.pk).status == DeliveryStatus.PENDING


def test_sync_trouble_fires_on_failed_deliveries_and_resolves_once_a_retry_processed_them(
    failed_order, shopify_store
):
    trouble = Alert.objects.create(
        store=shopify_store, type=AlertType.SYNC_TROUBLE, config={"integration_error": True, "webhook_hours": 0}
    )
    now = timezone.now()

    alert_actions.evaluate_timed_rules(now=now)
    assert [(event.message, event.resolved_at) for event in trouble.events.all()] == [
        ("Sync trouble on Alice-Apparel: 1 webhook could not be processed (retry on the dashboard)", None)
    ]

    actions.retry_failed_deliveries(store_ids=[shopify_store.pk])
    run_worker_until_idle()
    alert_actions.evaluate_timed_rules(now=now + timedelta(minutes=1))

    assert WebhookDelivery.objects.filter(status=DeliveryStatus.FAILED).count() == 0
    assert trouble.events.get().resolved_at is not None


def test_sync_trouble_can_leave_failed_deliveries_unwatched(failed_order, shopify_store):
    quiet = Alert.objects.create(
        store=shopify_store, type=AlertType.SYNC_TROUBLE,
        config={"integration_error": True, "webhook_hours": 0, "failed_deliveries": False},
    )

    alert_actions.evaluate_timed_rules(now=timezone.now())

    assert quiet.events.count() == 0
