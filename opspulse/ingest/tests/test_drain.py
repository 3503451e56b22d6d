"""Processing: deliveries become orders, stock, carts and exact metric buckets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from opspulse.commerce.models import Cart, InventoryLevel, Order
from opspulse.ingest import actions
from opspulse.ingest.models import DeliveryStatus, WebhookDelivery
from opspulse.metrics.models import Metric
from opspulse.sim import payloads
from tests.support.jobs import run_worker_until_idle
from tests.support.processes import database_url_for_processes
from tests.support.webhooks import MUG, T0, TEE, orders_refused, post_shopify, post_woo, shopify_order

pytestmark = pytest.mark.django_db(transaction=True)


def metric(store, name: str, granularity: str = "day") -> Decimal:
    values = Metric.objects.filter(store=store, name=name, granularity=granularity).values_list("value", flat=True)
    return sum(values, Decimal("0"))


def test_order_and_line_items_are_recorded(web, shopify_store):
    post_shopify(web.url, shopify_store, "orders/create", shopify_order(5001))

    run_worker_until_idle()

    order = Order.objects.get()
    assert (order.number, order.total, order.units, order.status) == ("#1001", Decimal("62.50"), 3, "paid")
    assert (order.customer_first_name, order.customer_city) == ("Ada", "Lyon")
    assert sorted(order.line_items.values_list("sku", "quantity")) == [("MUG-01", 1), ("TEE-BLK-M", 2)]
    assert WebhookDelivery.objects.get().status == DeliveryStatus.PROCESSED


def test_metrics_fall_in_the_stores_local_day_and_hour(web, shopify_store):
    # 23:30 UTC on the 29th is 00:30 on the 30th in Paris.
    late = datetime(2026, 11, 29, 23, 30, tzinfo=UTC)
    post_shopify(web.url, shopify_store, "orders/create", shopify_order(5001, created_at=late))

    run_worker_until_idle()

    day = Metric.objects.get(store=shopify_store, name="revenue", granularity="day")
    hour = Metric.objects.get(store=shopify_store, name="revenue", granularity="hour")
    assert day.timestamp == datetime(2026, 11, 29, 23, 0, tzinfo=UTC)  # Paris midnight
    assert hour.timestamp == datetime(2026, 11, 29, 23, 0, tzinfo=UTC)
    assert day.value == hour.value == Decimal("62.50")


def test_older_update_arriving_late_changes_nothing(web, shopify_store):
    post_shopify(web.url, shopify_store, "orders/create", shopify_order(5001))
    post_shopify(web.url, shopify_store, "orders/updated", shopify_order(5001, minutes=10, fulfillment_status="fulfilled"))
    post_shopify(web.url, shopify_store, "orders/updated", shopify_order(5001, minutes=5, items=[TEE]))

    run_worker_until_idle()

    order = Order.objects.get()
    assert (order.status, order.total, order.units) == ("fulfilled", Decimal("62.50"), 3)
    assert order.platform_updated_at == T0 + timedelta(minutes=10)
    assert metric(shopify_store, "revenue") == Decimal("62.50")


def test_metrics_are_exact_after_replays_and_reruns(web, shopify_store):
    for order_id in (5001, 5002, 5003):
        post_shopify(web.url, shopify_store, "orders/create", shopify_order(order_id))
        # Each subscription gets its own delivery of the same event: a new webhook id.
        post_shopify(web.url, shopify_store, "orders/updated", shopify_order(order_id))
    run_worker_until_idle()

    # Replay every delivery and run the drain again, as a re-run job would.
    WebhookDelivery.objects.update(status=DeliveryStatus.PENDING)
    actions.drain_store(store_id=shopify_store.pk)
    actions.drain_store(store_id=shopify_store.pk)

    assert Order.objects.count() == 3
    assert metric(shopify_store, "revenue") == Decimal("187.50")
    assert metric(shopify_store, "orders") == 3
    assert metric(shopify_store, "units_sold") == 9
    assert metric(shopify_store, "revenue", "hour") == Decimal("187.50")


def test_cancellation_and_changed_total_adjust_the_buckets(web, shopify_store):
    post_shopify(web.url, shopify_store, "orders/create", shopify_order(5001))
    post_shopify(web.url, shopify_store, "orders/create", shopify_order(5002))
    # An order edit removes the mug from 5001; 5002 is cancelled.
    post_shopify(web.url, shopify_store, "orders/updated", shopify_order(5001, minutes=3, items=[TEE]))
    post_shopify(web.url, shopify_store, "orders/updated", shopify_order(5002, minutes=4, cancelled_at=T0 + timedelta(minutes=4)))

    run_worker_until_idle()

    assert metric(shopify_store, "revenue") == Decimal("50.00")
    assert metric(shopify_store, "orders") == 1
    assert metric(shopify_store, "units_sold") == 2
    cancelled = Order.objects.get(external_id="5002")
    # Shopify's current total of a cancelled order is zero; its row shows what it was worth.
    assert (cancelled.status, cancelled.total) == ("cancelled", Decimal("62.50"))


def test_a_merchant_testing_checkout_sees_no_sales_and_no_alert(web, shopify_store):
    """Shopify's `test: true` orders (a test gateway, a development store) are stored and
    marked, and count in no revenue, orders, units, best sellers or high-value alert,
    even once updated."""
    from opspulse.alerts.models import Alert, AlertEvent, AlertType
    from opspulse.metrics.models import ProductDay

    Alert.objects.create(store=shopify_store, type=AlertType.HIGH_VALUE_ORDER, config={"threshold": "50.00"})
    just_now = timezone.now().replace(microsecond=0) - timedelta(minutes=10)
    post_shopify(web.url, shopify_store, "orders/create", shopify_order(5001, at=just_now, test=True))
    post_shopify(web.url, shopify_store, "orders/updated",
                 shopify_order(5001, at=just_now, minutes=5, fulfillment_status="fulfilled", test=True))
    post_shopify(web.url, shopify_store, "orders/create", shopify_order(5002, items=[MUG]))

    run_worker_until_idle()

    test_order = Order.objects.get(external_id="5001")
    assert (test_order.is_test, test_order.status, test_order.total) == (True, "fulfilled", Decimal("62.50"))
    assert Order.objects.get(external_id="5002").is_test is False
    assert metric(shopify_store, "revenue") == Decimal("12.50")
    assert metric(shopify_store, "orders") == 1
    assert metric(shopify_store, "units_sold") == 1
    assert list(ProductDay.objects.filter(units__gt=0).values_list("title", "units")) == [("Mug", 1)]
    assert not AlertEvent.objects.exists()


def test_woocommerce_order_and_stock_are_recorded(web, woo_store):
    order = payloads.woo_order(880, status="processing", items=[TEE, MUG], date_created=T0, date_modified=T0)
    completed = payloads.woo_order(880, status="completed", items=[TEE, MUG], date_created=T0, date_modified=T0 + timedelta(minutes=1))
    product = payloads.woo_product(101, name="Black tee", sku="TEE-BLK-M", stock_quantity=3, date_modified=T0)
    post_woo(web.url, woo_store, "order.created", order)
    post_woo(web.url, woo_store, "order.updated", completed)
    post_woo(web.url, woo_store, "product.updated", product)

    run_worker_until_idle()

    recorded = Order.objects.get()
    assert (recorded.number, recorded.status, recorded.total) == ("#880", "fulfilled", Decimal("62.50"))
    level = InventoryLevel.objects.get()
    assert (level.title, level.sku, level.available) == ("Black tee", "TEE-BLK-M", 3)
    assert metric(woo_store, "orders") == 1


def test_shopify_stock_and_carts_are_recorded(web, shopify_store):
    post_shopify(web.url, shopify_store, "inventory_levels/update", payloads.shopify_inventory_level(
        inventory_item_id=77, location_id=9, available=12, updated_at=T0))
    post_shopify(web.url, shopify_store, "inventory_levels/update", payloads.shopify_inventory_level(
        inventory_item_id=77, location_id=9, available=20, updated_at=T0 - timedelta(minutes=1)))
    cart = payloads.shopify_cart(token="c0ffee", items=[TEE], created_at=T0, updated_at=T0)
    post_shopify(web.url, shopify_store, "carts/create", cart)
    post_shopify(web.url, shopify_store, "carts/create", cart)  # a second subscription's delivery

    run_worker_until_idle()

    assert InventoryLevel.objects.get().available == 12
    assert Cart.objects.get().value == Decimal("50.00")
    assert metric(shopify_store, "carts") == 1


def test_invalid_payload_is_marked_failed_and_the_rest_processed(web, shopify_store):
    post_shopify(web.url, shopify_store, "orders/create", {"id": "not-a-number", "line_items": []})
    post_shopify(web.url, shopify_store, "orders/create", shopify_order(5002))

    run_worker_until_idle()

    failed = WebhookDelivery.objects.get(status=DeliveryStatus.FAILED)
    assert failed.error.startswith("invalid Order: id:")
    assert Order.objects.get().external_id == "5002"


def test_transient_failure_is_retried_then_marked_failed(web, shopify_store, settings):
    settings.DELIVERY_RETRY_BASE_SECONDS = 0
    # A database-level fault only for order 5001: processing it raises every time.
    with orders_refused("5001"):
        post_shopify(web.url, shopify_store, "orders/create", shopify_order(5001))
        post_shopify(web.url, shopify_store, "orders/create", shopify_order(5002))

        for _ in range(settings.DELIVERY_MAX_ATTEMPTS):
            actions.drain_store(store_id=shopify_store.pk)

    failed = WebhookDelivery.objects.get(status=DeliveryStatus.FAILED)
    assert failed.attempts == settings.DELIVERY_MAX_ATTEMPTS
    assert "disk on fire" in failed.error
    assert list(Order.objects.values_list("external_id", flat=True)) == ["5002"]
    assert metric(shopify_store, "orders") == 1


def test_retry_delays_back_off_with_jitter():
    from opspulse.ingest.tasks import backoff_seconds

    third = [backoff_seconds(2) for _ in range(50)]
    late = [backoff_seconds(12) for _ in range(50)]

    # Third attempt: between 0.5 s and 0.5 + 2**2 s, spread out so stores don't retry in step.
    assert all(0.5 <= delay <= 4.5 for delay in third)
    assert max(third) - min(third) > 1
    assert all(0.5 <= delay <= 60.5 for delay in late)  # capped


def test_failing_delivery_waits_for_its_retry_without_holding_up_other_stores(web, shopify_store, woo_store, settings):
    from procrastinate.contrib.django.models import ProcrastinateJob

    from opspulse.ingest import queue
    from opspulse.ingest.tasks import drain_lane

    settings.DRAIN_LANES = 1  # both stores share the lane
    post_shopify(web.url, shopify_store, "orders/create", shopify_order(5001))
    post_woo(web.url, woo_store, "order.created", payloads.woo_order(7001, items=[TEE], date_created=T0, date_modified=T0))
    ProcrastinateJob.objects.all().delete()
    with orders_refused("5001"):
        drain_lane(lane=0)

    # the other store's order went through; the failing one waits for its next attempt
    assert list(Order.objects.values_list("external_id", flat=True)) == ["7001"]
    waiting = WebhookDelivery.objects.get(store=shopify_store)
    assert (waiting.status, waiting.attempts) == (DeliveryStatus.PENDING, 1)
    assert "disk on fire" in waiting.error
    assert waiting.next_attempt_at > datetime.now(UTC)
    # a delayed job will retry it, under a queueing lock that leaves the lane's own free
    retry = ProcrastinateJob.objects.get()
    assert (retry.queueing_lock, retry.status) == (queue.retry_lock(0), "todo")
    assert retry.scheduled_at > datetime.now(UTC)

    WebhookDelivery.objects.update(next_attempt_at=datetime.now(UTC))
    drain_lane(lane=0)
    assert Order.objects.count() == 2


def test_failed_drain_job_hands_over_to_a_delayed_successor(web, shopify_store):
    from procrastinate.contrib.django.models import ProcrastinateJob

    from opspulse.ingest import queue
    from opspulse.ingest.tasks import drain_lane

    lane = queue.lane_of(shopify_store.pk)
    post_shopify(web.url, shopify_store, "orders/create", shopify_order(5001))
    ProcrastinateJob.objects.all().delete()
    with connection.cursor() as cursor:
        # The job itself cannot work: its table is gone for the moment.
        cursor.execute("ALTER TABLE ingest_webhook_delivery RENAME TO ingest_webhook_delivery_away")
    try:
        with pytest.raises(Exception, match="ingest_webhook_delivery"):
            drain_lane(lane=lane, attempt=3)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("ALTER TABLE ingest_webhook_delivery_away RENAME TO ingest_webhook_delivery")

    successor = ProcrastinateJob.objects.get()
    assert (successor.args, successor.status, successor.queueing_lock) == (
        {"lane": lane, "attempt": 4}, "todo", queue.retry_lock(lane),
    )
    assert successor.scheduled_at > datetime.now(UTC)


def test_deliveries_left_behind_are_requeued(web, shopify_store):
    from procrastinate.contrib.django.models import ProcrastinateJob

    post_shopify(web.url, shopify_store, "orders/create", shopify_order(5001))
    ProcrastinateJob.objects.all().delete()  # as if the job had failed for good
    WebhookDelivery.objects.update(received_at=datetime.now(UTC) - timedelta(minutes=5))

    from opspulse.ingest import queue

    assert actions.requeue_waiting_deliveries() == [queue.lane_of(shopify_store.pk)]
    run_worker_until_idle()

    assert Order.objects.get().external_id == "5001"


def run_sweep() -> None:
    from asgiref.sync import async_to_sync
    from procrastinate.contrib.django import app

    from opspulse.ingest.tasks import sweep

    class Context:
        pass

    context = Context()
    context.app = app
    async_to_sync(sweep.func)(context, timestamp=0)


def drain_job_doing_for_twenty_minutes() -> int:
    """Mark the drain job taken by a live worker (fresh heartbeat) 20 minutes ago; return its id."""
    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO procrastinate_workers (last_heartbeat) VALUES (now()) RETURNING id")
        worker_id = cursor.fetchone()[0]
        cursor.execute(
            "UPDATE procrastinate_jobs SET status = 'doing', worker_id = %s"
            " WHERE task_name = 'opspulse.ingest.drain_lane' RETURNING id",
            [worker_id],
        )
        job_id = cursor.fetchone()[0]
        # procrastinate logged the start when the job went `doing`.
        cursor.execute(
            "UPDATE procrastinate_events SET at = now() - interval '20 minutes' WHERE job_id = %s", [job_id]
        )
    return job_id


def test_job_left_doing_under_a_live_worker_is_ended_and_its_store_drained(web, shopify_store):
    post_shopify(web.url, shopify_store, "orders/create", shopify_order(5001))
    # A live worker (fresh heartbeat) lost the database while finishing this job.
    drain_job_doing_for_twenty_minutes()
    WebhookDelivery.objects.update(received_at=datetime.now(UTC) - timedelta(minutes=20))

    run_sweep()
    run_worker_until_idle()

    assert Order.objects.get().external_id == "5001"


def test_job_running_for_twenty_minutes_under_a_live_worker_is_left_to_finish(web, shopify_store):
    """A long drain job (a shop's erasure) is not ended while it runs, however long it takes."""
    import psycopg
    from procrastinate.contrib.django.models import ProcrastinateJob

    from opspulse.ingest import queue

    post_shopify(web.url, shopify_store, "orders/create", shopify_order(5001))
    job_id = drain_job_doing_for_twenty_minutes()
    # The job's own connection, as `queue.running` holds it while the job runs.
    with psycopg.connect(database_url_for_processes(), autocommit=True) as job_connection:
        job_connection.execute("SELECT pg_advisory_lock(%s)", [queue.running_lock_key(queue.lane_of(shopify_store.pk))])

        run_sweep()

        assert ProcrastinateJob.objects.get(id=job_id).status == "doing"
    # Its connection gone (the database restarted under it), the next sweep ends it.
    run_sweep()
    assert ProcrastinateJob.objects.get(id=job_id).status == "failed"


def test_job_stuck_on_a_dead_worker_runs_again(web, shopify_store):
    post_shopify(web.url, shopify_store, "orders/create", shopify_order(5001))
    with connection.cursor() as cursor:
        # A worker that stopped sending heartbeats ten minutes ago holds the job.
        cursor.execute(
            "INSERT INTO procrastinate_workers (last_heartbeat) VALUES (now() - interval '10 minutes') RETURNING id"
        )
        worker_id = cursor.fetchone()[0]
        cursor.execute(
            "UPDATE procrastinate_jobs SET status = 'doing', worker_id = %s WHERE task_name = 'opspulse.ingest.drain_lane'",
            [worker_id],
        )

    run_sweep()
    run_worker_until_idle()

    assert Order.objects.get().external_id == "5001"


def test_drain_job_hands_over_to_a_successor_when_its_time_is_up(web, shopify_store, woo_store, settings):
    from procrastinate.contrib.django.models import ProcrastinateJob

    from opspulse.ingest import queue

    settings.DRAIN_LANES = 1
    settings.DRAIN_JOB_MAX_SECONDS = 0
    post_shopify(web.url, shopify_store, "orders/create", shopify_order(5001))
    post_woo(web.url, woo_store, "order.created", payloads.woo_order(7001, items=[TEE], date_created=T0, date_modified=T0))
    ProcrastinateJob.objects.all().delete()

    drained = actions.drain_lane(lane=0, batch_size=1)

    # one full batch, then the time is up: a successor job takes the rest
    assert drained.handled == 1
    assert WebhookDelivery.objects.filter(status=DeliveryStatus.PENDING).count() == 1
    successor = ProcrastinateJob.objects.get()
    assert (successor.queueing_lock, successor.status) == (queue.drain_lock(0), "todo")
