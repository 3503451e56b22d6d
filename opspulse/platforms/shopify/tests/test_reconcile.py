"""The periodic reconciliation heals a webhook that never arrived."""

from __future__ import annotations

import zlib

import httpx
import pytest
from django.test import Client
from django.urls import reverse

from opspulse.accounts.models import Role
from opspulse.commerce.models import InventoryLevel, Order, OrderStatus
from opspulse.platforms.models import SyncHealth
from opspulse.platforms.shopify import reconcile
from opspulse.platforms.shopify.tasks import reconcile_shopify_stores
from opspulse.stores.models import Store
from tests.factories import MembershipFactory, UserFactory
from tests.support.jobs import run_platform_jobs
from tests.support.shopify import create_shop, fake_get, install

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def connected_store(shopify_app, request):
    """A connected shop (one per test: the fake Shopify lives for the whole session)."""
    owner = MembershipFactory(user=UserFactory(email="owner@example.com"), role=Role.OWNER).user
    client = Client()
    client.force_login(owner)
    domain = f"driftwood-{zlib.crc32(request.node.name.encode())}.myshopify.com"
    create_shop(shopify_app, domain, orders=3, days=2, seed=5)
    install(client, domain)
    run_platform_jobs()  # the import of the last 60 days
    store = Store.objects.get(domain=domain)
    reconcile.reconcile(store.pk)  # the first pass finds nothing missed
    return store, client


def fake_order(fake, store: Store, path: str) -> dict:
    response = httpx.post(f"{fake.url}/_fake/shops/{store.domain}{path}", json={}, timeout=10)
    assert response.status_code in (200, 201), response.text
    return response.json()


def test_an_order_whose_webhooks_were_lost_appears_at_the_next_reconciliation(shopify_app, connected_store):
    store, owner_client = connected_store
    assert SyncHealth.objects.get(store=store).last_corrected == 0
    # OpsPulse's webhook address does not answer in this test: the fake's deliveries fail.
    placed = fake_order(shopify_app, store, "/orders")
    assert not Order.objects.filter(store=store, number=placed["name"]).exists()

    reconcile_shopify_stores(timestamp=0)  # the periodic job defers one job per store
    run_platform_jobs()

    order = Order.objects.get(store=store, number=placed["name"])
    assert order.total > 0
    # The stock the order took, whose webhooks were lost too, is healed with it.
    skus = {line["sku"] for line in placed["line_items"]}
    levels = InventoryLevel.objects.filter(store=store, sku__in=skus)
    shop_stock = {v["sku"]: v["available"] for v in fake_get(shopify_app, f"/shops/{store.domain}")["variants"]}
    assert {level.sku: level.available for level in levels} == {sku: shop_stock[sku] for sku in skus}
    health = SyncHealth.objects.get(store=store)
    assert (health.last_corrected, health.total_corrected) == (1 + len(skus), 1 + len(skus))
    page = owner_client.get(reverse("dashboard", args=[store.public_id])).content.decode()
    assert f"{1 + len(skus)} missed updates corrected" in page


def test_a_recent_order_found_by_reconciliation_alerts_and_an_old_one_updated_does_not(shopify_app, connected_store):
    from opspulse.alerts.models import Alert, AlertEvent, AlertType

    store, _ = connected_store
    rule = Alert.objects.create(store=store, type=AlertType.HIGH_VALUE_ORDER, config={"threshold": "0.01"})
    # An order imported with the shop's history (placed days ago) changes now; then a new
    # order is placed. Both webhooks are lost (OpsPulse's address does not answer here).
    old = Order.objects.filter(store=store).order_by("placed_at").first()
    fake_order(shopify_app, store, f"/orders/{old.external_id.rsplit('/', 1)[-1]}")
    placed = fake_order(shopify_app, store, "/orders")

    reconcile.reconcile(store.pk)

    assert Order.objects.filter(store=store, number=placed["name"]).exists()
    fired = list(AlertEvent.objects.filter(alert=rule).values_list("message", flat=True))
    assert len(fired) == 1 and placed["name"] in fired[0]


def test_the_first_reconciliation_of_a_shop_just_connected_alerts_on_nothing(shopify_app):
    """Before its history is imported, the first pass reads the orders placed while the
    merchant was connecting: history, not news. The next pass's new order is news."""
    from opspulse.alerts.models import Alert, AlertEvent, AlertType

    owner = MembershipFactory(user=UserFactory(email="owner@example.com"), role=Role.OWNER).user
    client = Client()
    client.force_login(owner)
    domain = "tidewater-first-pass.myshopify.com"
    create_shop(shopify_app, domain, orders=3, days=2, seed=5)
    httpx.post(f"{shopify_app.url}/_fake/shops/{domain}/orders", json={}, timeout=10).raise_for_status()
    install(client, domain)
    store = Store.objects.get(domain=domain)
    rule = Alert.objects.create(store=store, type=AlertType.HIGH_VALUE_ORDER, config={"threshold": "0.01"})

    reconcile.reconcile(store.pk)  # before the import job ran
    assert Order.objects.filter(store=store).exists() and not AlertEvent.objects.exists()

    placed = fake_order(shopify_app, store, "/orders")
    reconcile.reconcile(store.pk)
    assert [placed["name"] in message for message in rule.events.values_list("message", flat=True)] == [True]


def test_a_lost_cancellation_is_healed_and_nothing_is_counted_twice(shopify_app, connected_store):
    store, _ = connected_store
    placed = fake_order(shopify_app, store, "/orders")
    reconcile.reconcile(store.pk)
    # Shopify's timestamps have whole seconds: the cancellation comes two seconds later.
    httpx.post(f"{shopify_app.url}/_fake/clock/advance", json={"seconds": 2}, timeout=10)
    fake_order(shopify_app, store, f"/orders/{placed['id']}/cancel")

    health = reconcile.reconcile(store.pk)
    again = reconcile.reconcile(store.pk)

    order = Order.objects.get(store=store, number=placed["name"])
    assert order.status == OrderStatus.CANCELLED and order.counted_revenue == 0
    # The cancellation, and the stock it put back (those webhooks were lost too).
    restocked = len({line["sku"] for line in placed["line_items"]})
    assert health.last_corrected == 1 + restocked and again.last_corrected == 0


def test_a_subscription_shopify_deleted_is_made_again_at_the_hourly_check(shopify_app, connected_store):
    from datetime import timedelta

    from django.utils import timezone

    from opspulse.platforms.shopify.client import ShopifyClient
    from opspulse.platforms.shopify.subscriptions import TOPICS
    from opspulse.stores.models import Integration

    store, _ = connected_store
    client = ShopifyClient(Integration.objects.select_related("store").get(store=store))
    orders_create = next(
        s for s in fake_get(shopify_app, f"/shops/{store.domain}")["subscriptions"] if s["topic"] == "ORDERS_CREATE"
    )
    # After 8 failed deliveries in a row Shopify deletes a subscription.
    client.query("mutation($id: ID!) { webhookSubscriptionDelete(id: $id) { deletedWebhookSubscriptionId } }",
                 {"id": f"gid://shopify/WebhookSubscription/{orders_create['id']}"})
    assert len(fake_get(shopify_app, f"/shops/{store.domain}")["subscriptions"]) == len(TOPICS) - 1
    SyncHealth.objects.filter(store=store).update(subscriptions_checked_at=timezone.now() - timedelta(hours=2))

    reconcile.reconcile(store.pk)

    topics = sorted(s["topic"] for s in fake_get(shopify_app, f"/shops/{store.domain}")["subscriptions"])
    assert topics == sorted(TOPICS)


def test_the_hourly_check_heals_a_lost_stock_change(shopify_app, connected_store):
    from datetime import timedelta

    from django.utils import timezone

    from opspulse.commerce.models import InventoryLevel

    store, _ = connected_store
    level = InventoryLevel.objects.filter(store=store).exclude(sku="").first()
    response = httpx.post(
        f"{shopify_app.url}/_fake/shops/{store.domain}/inventory", json={"sku": level.sku, "available": 2}, timeout=10
    )
    assert response.status_code in (200, 201)
    SyncHealth.objects.filter(store=store).update(subscriptions_checked_at=timezone.now() - timedelta(hours=2))

    health = reconcile.reconcile(store.pk)

    level.refresh_from_db()
    assert level.available == 2
    assert health.last_corrected == 1


def test_an_item_created_since_the_install_gets_its_sku_at_the_next_five_minute_pass(shopify_app, connected_store):
    from opspulse.commerce.models import InventoryLevel

    store, _ = connected_store
    # The merchant adds a product; its stock webhook (which carries no SKU) is lost.
    response = httpx.post(
        f"{shopify_app.url}/_fake/shops/{store.domain}/products",
        json={"title": "Harbor Lantern", "sku": "LANTERN-01", "price": "49.00", "available": 12},
        timeout=10,
    )
    assert response.status_code == 201, response.text

    health = reconcile.reconcile(store.pk)  # within the hour: not the full stock check

    level = InventoryLevel.objects.get(store=store, item_external_id=str(response.json()["inventory_item_id"]))
    assert (level.sku, level.available) == ("LANTERN-01", 12)
    assert health.last_corrected == 1
