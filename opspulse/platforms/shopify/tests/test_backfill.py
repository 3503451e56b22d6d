"""A connected shop's last 60 days of orders and its stock are imported, once, resumably."""

from __future__ import annotations

import time
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db.models import Sum
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from opspulse.accounts.models import Role
from opspulse.commerce import actions as commerce
from opspulse.commerce.models import Backfill, BackfillStatus, InventoryLevel, Order, OrderStatus
from opspulse.live.tests.factories import MembershipFactory, UserFactory
from opspulse.metrics.models import Metric
from opspulse.platforms.shopify import backfill, handlers
from opspulse.platforms.shopify.client import ShopifyClient
from opspulse.platforms.shopify.tests.conftest import create_shop, fake_get, install
from opspulse.stores.models import Integration, Store

pytestmark = pytest.mark.django_db(transaction=True)


def run_platform_jobs() -> None:
    """Run every due job of the platform queue, in this process, on the real queue."""
    from procrastinate.contrib.django import app

    with app.replace_connector(app.connector.get_worker_connector()) as worker_app:
        worker_app.run_worker(queues=["shopify"], wait=False, install_signal_handlers=False, listen_notify=False)


@pytest.fixture
def owner_client():
    owner = MembershipFactory(user=UserFactory(email="owner@example.com"), role=Role.OWNER).user
    client = Client()
    client.force_login(owner)
    return client


def revenue_in_buckets(store: Store) -> Decimal:
    return Metric.objects.filter(store=store, name="revenue", granularity="day").aggregate(total=Sum("value"))["total"]


def test_connecting_a_shop_imports_its_last_60_days_of_orders_and_its_stock(shopify_app, owner_client):
    shop = "tidewater-trading.myshopify.com"
    create_shop(shopify_app, shop, orders=90, days=90, seed=7)

    install(owner_client, shop)
    store = Store.objects.get(domain=shop)
    assert Backfill.objects.get(store=store).status == BackfillStatus.RUNNING
    run_platform_jobs()

    done = Backfill.objects.get(store=store)
    orders = Order.objects.filter(store=store)
    assert done.status == BackfillStatus.DONE and done.orders_done == orders.count()
    assert 30 < orders.count() < 90  # a third of the 90 days are older than 60
    assert not orders.filter(placed_at__lt=timezone.now() - timedelta(days=60, minutes=5)).exists()
    counted = orders.aggregate(total=Sum("counted_revenue"))["total"]
    assert counted > 0 and revenue_in_buckets(store) == counted
    variants = fake_get(shopify_app, f"/shops/{shop}")["variants"]
    levels = {(level.sku, level.available) for level in InventoryLevel.objects.filter(store=store)}
    assert levels == {(variant["sku"], variant["available"]) for variant in variants}
    # The dashboard shows the import's state; its progress endpoint stops asking when done.
    progress = owner_client.get(reverse("store-backfill", args=[store.public_id])).content.decode()
    assert 'data-backfill-status="done"' in progress and "hx-trigger" not in progress


def test_an_interrupted_import_resumes_from_its_last_page_and_counts_each_order_once(shopify_app, owner_client):
    shop = "quayside-goods.myshopify.com"
    create_shop(shopify_app, shop, orders=70, days=30, seed=11)
    install(owner_client, shop)
    store = Store.objects.get(domain=shop)
    client = ShopifyClient(Integration.objects.select_related("store").get(store=store))

    first_page = Backfill.objects.get(store=store)
    backfill._orders_page(client, first_page)  # the worker dies after one page
    assert Order.objects.filter(store=store).count() == backfill.ORDERS_PER_PAGE
    run_platform_jobs()  # the job runs again (procrastinate retries a dead worker's job)

    assert Order.objects.filter(store=store).count() == 70
    assert Backfill.objects.get(store=store).orders_done == 70
    counted = Order.objects.filter(store=store).aggregate(total=Sum("counted_revenue"))["total"]
    assert revenue_in_buckets(store) == counted


def test_a_webhook_newer_than_the_import_wins_and_the_order_counts_once(shopify_app, owner_client):
    shop = "saltmarsh-supply.myshopify.com"
    create_shop(shopify_app, shop, orders=10, days=5, seed=3)
    install(owner_client, shop)
    store = Store.objects.get(domain=shop)
    client = ShopifyClient(Integration.objects.select_related("store").get(store=store))
    node = client.query(
        backfill.ORDERS_QUERY,
        {"first": 1, "after": None, "query": "created_at:>='2000-01-01T00:00:00+00:00'", "lineItems": 25},
    ).data["orders"]["edges"][0]["node"]
    # The order was cancelled a minute after the import read it; the webhook came first.
    cancelled = backfill.order_payload(node) | {
        "cancelled_at": timezone.now().isoformat(),
        "updated_at": (timezone.now() + timedelta(minutes=1)).isoformat(),
        "financial_status": "voided",
    }
    commerce.apply_records(store=store, records=[handlers.parse_order(cancelled)])

    run_platform_jobs()

    order = Order.objects.get(store=store, external_id=str(node["legacyResourceId"]))
    assert order.status == OrderStatus.CANCELLED
    assert Order.objects.filter(store=store).count() == 10
    counted = Order.objects.filter(store=store).aggregate(total=Sum("counted_revenue"))["total"]
    assert order.counted_revenue == 0 and revenue_in_buckets(store) == counted


def test_a_large_shop_is_imported_in_bulk_by_two_workers_without_passing_two_calls_a_second(
    shopify_app, owner_client, process_logs
):
    from conftest import SHOPIFY_APP_CLIENT_ID, SHOPIFY_APP_CLIENT_SECRET, Worker

    shop = "grand-bazaar.myshopify.com"
    create_shop(shopify_app, shop, orders=20_000, days=50, seed=17)
    install(owner_client, shop)
    store = Store.objects.get(domain=shop)
    env = {
        "SHOPIFY_CLIENT_ID": SHOPIFY_APP_CLIENT_ID, "SHOPIFY_CLIENT_SECRET": SHOPIFY_APP_CLIENT_SECRET,
        "SHOPIFY_SHOP_URL_TEMPLATE": f"{shopify_app.url}/shops/{{shop}}",
    }
    workers = [Worker(process_logs, f"worker-bulk-{n}", **env) for n in range(2)]
    try:
        # Meanwhile the other worker reconciles the same shop: both call its API.
        from opspulse.stores.tasks import reconcile_shopify_store

        reconcile_shopify_store.defer(store_id=store.pk)
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            backfill_state = Backfill.objects.get(store=store)
            if backfill_state.status != BackfillStatus.RUNNING:
                break
            time.sleep(1)
    finally:
        for worker in workers:
            worker.stop()

    backfill_state = Backfill.objects.get(store=store)
    assert backfill_state.status == BackfillStatus.DONE, backfill_state.error
    assert Order.objects.filter(store=store).count() == 20_000
    assert backfill_state.orders_done == 20_000
    counted = Order.objects.filter(store=store).aggregate(total=Sum("counted_revenue"))["total"]
    assert revenue_in_buckets(store) == counted
    calls = fake_get(shopify_app, f"/shops/{shop}/calls")
    # Five pages, the bulk run and its polls, the stock and the reconciliation: paging all
    # 20,000 orders would take 2,000 calls.
    assert len(calls["calls"]) < 100
    assert calls["max_per_second"] <= 2
