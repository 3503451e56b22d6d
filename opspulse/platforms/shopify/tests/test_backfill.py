"""A connected shop's last 60 days of orders and its stock are imported, once, resumably."""

from __future__ import annotations

import time
from datetime import timedelta
from decimal import Decimal

import httpx
import pytest
from django.db.models import Sum
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from opspulse.accounts.models import Role
from opspulse.alerts.models import Alert, AlertEvent, AlertType
from opspulse.commerce import actions as commerce
from opspulse.commerce.models import InventoryLevel, Order, OrderStatus
from opspulse.metrics.models import Metric
from opspulse.platforms.models import Backfill, BackfillStatus
from opspulse.platforms.shopify import backfill, handlers
from opspulse.platforms.shopify.client import ShopifyClient
from opspulse.platforms.shopify.tasks import reconcile_shopify_stores
from opspulse.stores.models import Integration, Store
from tests.factories import MembershipFactory, StoreFactory, UserFactory
from tests.support.jobs import run_platform_jobs, run_worker_until_idle
from tests.support.processes import WebServer, Worker
from tests.support.shopify import app_env, create_shop, fake_get, install
from tests.support.stores import SHOPIFY_APP_CLIENT_SECRET
from tests.support.webhooks import post_shopify

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="module")
def app_web(django_db_setup, process_logs, fake_shopify):
    """A running OpsPulse that receives the shops' webhooks."""
    server = WebServer(process_logs, "web-backfill", **app_env(fake_shopify))
    yield server
    server.stop()


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
    # The bar's totals were counted on the shop before the import began.
    assert done.orders_total == orders.count() and done.percent == 100
    assert 30 < orders.count() < 90  # a third of the 90 days are older than 60
    assert not orders.filter(placed_at__lt=timezone.now() - timedelta(days=60, minutes=5)).exists()
    counted = orders.aggregate(total=Sum("counted_revenue"))["total"]
    assert counted > 0 and revenue_in_buckets(store) == counted
    variants = fake_get(shopify_app, f"/shops/{shop}")["variants"]
    levels = {(level.sku, level.available) for level in InventoryLevel.objects.filter(store=store)}
    assert levels == {(variant["sku"], variant["available"]) for variant in variants}
    assert done.items_total == done.items_done == len(variants)
    # The dashboard shows the import's state; its progress endpoint stops asking when done.
    progress = owner_client.get(reverse("store-backfill", args=[store.public_id])).content.decode()
    assert 'data-backfill-status="done"' in progress and "hx-trigger" not in progress
    # The store's history now reaches back to the import's first day: its dashboard
    # compares with days before the connection.
    store.refresh_from_db()
    assert store.history_starts_at == done.since
    dashboard = owner_client.get(reverse("dashboard", args=[store.public_id])).content.decode()
    assert "Previous period" in dashboard and "not enough history yet" not in dashboard.lower()


def test_a_connected_shops_imported_history_fires_no_alert(shopify_app, owner_client):
    """60 days of orders, some of them placed minutes ago, and stock that is low: the
    merchant connected a shop, nothing happened just now."""
    shop = "lantern-row.myshopify.com"
    create_shop(shopify_app, shop, orders=40, days=60, seed=5)
    for _ in range(3):  # placed while the merchant was connecting
        assert httpx.post(f"{shopify_app.url}/_fake/shops/{shop}/orders", json={}, timeout=10).status_code == 201
    install(owner_client, shop)
    store = Store.objects.get(domain=shop)
    Alert.objects.create(store=store, type=AlertType.HIGH_VALUE_ORDER, config={"threshold": "0.01"})
    Alert.objects.create(store=store, type=AlertType.LOW_STOCK, config={"threshold": 1_000_000})

    run_platform_jobs()

    assert Backfill.objects.get(store=store).status == BackfillStatus.DONE
    recent = Order.objects.filter(store=store, placed_at__gte=timezone.now() - timedelta(minutes=10))
    assert recent.count() == 3 and InventoryLevel.objects.filter(store=store).exists()
    assert not AlertEvent.objects.exists()


def test_an_interrupted_import_resumes_from_its_last_page_and_counts_each_order_once(shopify_app, owner_client):
    shop = "quayside-goods.myshopify.com"
    create_shop(shopify_app, shop, orders=70, days=30, seed=11)
    install(owner_client, shop)
    store = Store.objects.get(domain=shop)
    client = ShopifyClient(Integration.objects.select_related("store").get(store=store))

    first_page = Backfill.objects.get(store=store)
    backfill._count(client, first_page)
    backfill._orders_page(client, first_page)  # the worker dies after one page
    assert Order.objects.filter(store=store).count() == backfill.ORDERS_PER_PAGE
    # The merchant sees how far it got, out of what there is.
    progress = owner_client.get(reverse("store-backfill", args=[store.public_id])).content.decode()
    variants = len(fake_get(shopify_app, f"/shops/{shop}")["variants"])
    assert f"10 of 70 orders · 0 of {variants} stock items" in progress
    assert f'value="{1000 // (70 + variants)}" max="100"' in progress
    # Part of the period imported: the history still starts at the connection.
    store.refresh_from_db()
    assert store.history_starts_at > first_page.since
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


def test_a_slow_bulk_export_frees_the_worker_and_its_finish_webhook_resumes_the_import(
    shopify_app, owner_client, monkeypatch, app_web
):
    from procrastinate.contrib.django.models import ProcrastinateJob

    shop = "longshore-outfitters.myshopify.com"
    create_shop(shopify_app, shop, orders=70, days=30, seed=23)
    install(owner_client, shop)
    store = Store.objects.get(domain=shop)
    imports = ProcrastinateJob.objects.filter(task_name="opspulse.stores.backfill_shopify_store")
    monkeypatch.setattr(backfill, "BULK_WAIT_IN_JOB_SECONDS", 0)
    httpx.put(f"{shopify_app.url}/_fake/bulk/delay", json={"seconds": 2}, timeout=5)
    try:
        run_platform_jobs()  # five pages, then Shopify is still preparing the rest
        waiting = Backfill.objects.get(store=store)
        assert waiting.phase == "orders_bulk_wait" and waiting.orders_done == 50
        progress = owner_client.get(reverse("store-backfill", args=[store.public_id])).content.decode()
        assert "50 of 70 orders" in progress and "Shopify is preparing the rest" in progress
        # The job gave its worker back; nothing of the import is queued.
        assert not imports.filter(status__in=["todo", "doing"]).exists()
        httpx.post(f"{shopify_app.url}/_fake/webhooks/flush", timeout=30)  # the export finishes
    finally:
        httpx.put(f"{shopify_app.url}/_fake/bulk/delay", json={"seconds": 0.05}, timeout=5)

    def finish_webhook(operation_id: str) -> int:
        payload = {
            "admin_graphql_api_id": operation_id, "status": "completed", "error_code": None, "type": "query",
            "created_at": timezone.now().isoformat(), "completed_at": timezone.now().isoformat(),
        }
        return post_shopify(
            app_web.url, store, "bulk_operations/finish", payload, secret=SHOPIFY_APP_CLIENT_SECRET
        ).status_code

    # Another operation's finish (an old one, say) starts nothing.
    assert finish_webhook("gid://shopify/BulkOperation/999999") == 200
    run_worker_until_idle()
    assert not imports.filter(status="todo").exists()

    assert finish_webhook(backfill.waiting_for(store.pk)) == 200
    run_worker_until_idle()  # the drain applies the webhook: the import's job is queued again
    run_platform_jobs()

    done = Backfill.objects.get(store=store)
    assert done.status == BackfillStatus.DONE and done.orders_done == 70
    assert Order.objects.filter(store=store).count() == 70
    assert Store.objects.get(pk=store.pk).history_starts_at == done.since


def test_an_import_whose_finish_webhook_never_came_is_resumed_by_the_five_minute_sweep(db):
    from procrastinate.contrib.django.models import ProcrastinateJob

    from opspulse.stores.models import IntegrationStatus, Platform

    waiting, importing = (
        StoreFactory(platform=Platform.SHOPIFY, domain=f"{name}.myshopify.com") for name in ("fernhill", "osprey")
    )
    for store, phase in ((waiting, "orders_bulk_wait"), (importing, "orders")):
        Integration.objects.update_or_create(
            store=store, defaults={"type": Platform.SHOPIFY, "app_installed": True, "status": IntegrationStatus.ACTIVE}
        )
        backfill.start(store)
        Backfill.objects.filter(store=store).update(phase=phase)

    reconcile_shopify_stores(timestamp=0)
    reconcile_shopify_stores(timestamp=300)  # the next sweep, before a worker got to it

    resumed = ProcrastinateJob.objects.filter(task_name="opspulse.stores.backfill_shopify_store", status="todo")
    assert [(job.args, job.lock) for job in resumed] == [({"store_id": waiting.pk}, f"backfill-{waiting.pk}")]


def test_a_large_shop_is_imported_in_bulk_by_two_workers_without_passing_two_calls_a_second(
    shopify_app, owner_client, process_logs, settings, app_web
):
    shop = "grand-bazaar.myshopify.com"
    create_shop(shopify_app, shop, orders=5_000, days=50, seed=17)
    # The shop's webhooks (bulk_operations/finish among them) reach a running OpsPulse.
    settings.PUBLIC_URL = app_web.url
    settings.SHOPIFY_CALL_SPACING_SECONDS = 0.75  # the real spacing: the calls per second are checked
    workers = []
    try:
        install(owner_client, shop)
        store = Store.objects.get(domain=shop)
        workers = [
            Worker(process_logs, f"worker-bulk-{n}", PUBLIC_URL=app_web.url, **app_env(shopify_app)) for n in range(2)
        ]
        # Meanwhile the other worker reconciles the same shop: both call its API.
        from opspulse.platforms.shopify.tasks import reconcile_shopify_store

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

    # Shopify announced the export's end to OpsPulse. When the export outlasts the job's
    # own wait (10 s), this webhook is what resumes the import.
    finished = fake_get(shopify_app, f"/webhooks/deliveries?shop={shop}&topic=bulk_operations/finish")["deliveries"]
    assert [delivery["status"] for delivery in finished] == [200]
    backfill_state = Backfill.objects.get(store=store)
    assert backfill_state.status == BackfillStatus.DONE, backfill_state.error
    assert Order.objects.filter(store=store).count() == 5_000
    assert backfill_state.orders_done == 5_000
    counted = Order.objects.filter(store=store).aggregate(total=Sum("counted_revenue"))["total"]
    assert revenue_in_buckets(store) == counted
    calls = fake_get(shopify_app, f"/shops/{shop}/calls")
    # Five pages, the bulk run and its polls, the stock and the reconciliation: paging all
    # 5,000 orders would take 500 calls.
    assert len(calls["calls"]) < 100
    assert calls["max_per_second"] <= 2
