"""Disconnecting a Shopify store connected through the app, against the fake Shopify, and reconnecting it."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from opspulse.accounts.models import AuditEvent, AuditKind, Role
from opspulse.commerce.models import Order
from opspulse.ingest.models import WebhookDelivery
from opspulse.platforms.models import Backfill, BackfillStatus
from opspulse.platforms.shopify.subscriptions import TOPICS
from opspulse.stores.models import Integration, IntegrationStatus, Store
from tests.factories import MembershipFactory, UserFactory
from tests.support.jobs import run_worker_until_idle
from tests.support.processes import WebServer
from tests.support.shopify import create_shop, fake_get, install
from tests.support.stores import SHOPIFY_APP_CLIENT_ID, SHOPIFY_APP_CLIENT_SECRET
from tests.support.webhooks import post_shopify, shopify_order

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="module")
def app_web(django_db_setup, process_logs):
    """OpsPulse's web process, with the same Shopify app as the fake's."""
    server = WebServer(
        process_logs, "web-shopify-disconnect",
        SHOPIFY_CLIENT_ID=SHOPIFY_APP_CLIENT_ID, SHOPIFY_CLIENT_SECRET=SHOPIFY_APP_CLIENT_SECRET,
    )
    yield server
    server.stop()


@pytest.fixture
def admin_client():
    owner = MembershipFactory(user=UserFactory(email="owner@example.com"), role=Role.OWNER)
    admin = MembershipFactory(account=owner.account, user=UserFactory(email="admin@example.com"), role=Role.ADMIN).user
    client = Client()
    client.force_login(admin)
    client.user = admin
    return client


@pytest.fixture
def connected(shopify_app, admin_client, request):
    """A shop installed through OpsPulse's app, with one order already synced."""
    shop = f"disconnect-{request.node.name[5:40].replace('_', '-')}.myshopify.com"
    create_shop(shopify_app, shop, orders=0)
    install(admin_client, shop)
    return Store.objects.get(domain=shop)


def sync_an_order(app_web, store, order_id: int) -> int:
    answer = post_shopify(
        app_web.url, store, "orders/create", shopify_order(order_id), secret=SHOPIFY_APP_CLIENT_SECRET
    )
    run_worker_until_idle()
    return answer.status_code


def test_an_admin_disconnecting_a_store_removes_it_at_shopify_and_refuses_its_webhooks_but_keeps_its_history(
    shopify_app, app_web, admin_client, connected
):
    assert sync_an_order(app_web, connected, 5001) == 200
    assert len(fake_get(shopify_app, f"/shops/{connected.domain}")["subscriptions"]) == len(TOPICS)

    response = admin_client.post(reverse("store-disconnect", args=[connected.public_id]))

    assert response.status_code == 302 and response.url == reverse("dashboard", args=[connected.public_id])
    assert fake_get(shopify_app, f"/shops/{connected.domain}")["subscriptions"] == []
    integration = Integration.objects.get(store=connected)
    assert integration.status == IntegrationStatus.INACTIVE
    assert (integration.access_token_encrypted, integration.refresh_token_encrypted) == ("", "")
    assert (integration.webhook_secret_encrypted, integration.previous_webhook_secret_encrypted) == ("", "")
    # The import of its past orders stops instead of showing as running for good.
    assert Backfill.objects.get(store=connected).status == BackfillStatus.FAILED
    event = AuditEvent.objects.get(kind=AuditKind.STORE_DISCONNECTED)
    assert (event.user, event.account_id, event.details["store_id"]) == (
        admin_client.user, connected.account_id, str(connected.public_id)
    )
    # A webhook Shopify signed for the shop is answered as for an unknown shop, and stored nowhere.
    deliveries = WebhookDelivery.objects.count()
    assert sync_an_order(app_web, connected, 5002) == 404
    assert WebhookDelivery.objects.count() == deliveries
    assert list(Order.objects.filter(store=connected).values_list("number", flat=True)) == ["#1001"]
    # The dashboard shows the history, with the date it stopped and a way back.
    page = admin_client.get(reverse("dashboard", args=[connected.public_id]))
    html = page.content.decode()
    assert page.status_code == 200
    assert "data-store-disconnected" in html and "Disconnected on" in html
    assert "#1001" in html
    assert f'name="shop" value="{connected.domain}"' in html and ">Reconnect</button>" in html


def test_reconnecting_a_disconnected_store_through_shopify_brings_back_the_same_store_with_its_history(
    shopify_app, app_web, admin_client, connected
):
    sync_an_order(app_web, connected, 5001)
    admin_client.post(reverse("store-disconnect", args=[connected.public_id]))

    install(admin_client, connected.domain)

    store = Store.objects.get(domain=connected.domain)
    assert store.pk == connected.pk and store.disconnected_at is None
    integration = Integration.objects.get(store=store)
    assert integration.status == IntegrationStatus.ACTIVE and integration.access_token.startswith("shpat_")
    assert len(fake_get(shopify_app, f"/shops/{store.domain}")["subscriptions"]) == len(TOPICS)
    assert Backfill.objects.get(store=store).status == BackfillStatus.RUNNING
    assert sync_an_order(app_web, store, 5002) == 200
    assert sorted(Order.objects.filter(store=store).values_list("number", flat=True)) == ["#1001", "#1002"]
    page = admin_client.get(reverse("dashboard", args=[store.public_id])).content.decode()
    assert "data-store-disconnected" not in page


def test_a_privacy_request_for_a_disconnected_stores_history_is_still_carried_out(
    shopify_app, app_web, admin_client, connected
):
    sync_an_order(app_web, connected, 5001)
    admin_client.post(reverse("store-disconnect", args=[connected.public_id]))
    payload = {"shop_id": 1, "shop_domain": connected.domain, "customer": {"id": 1, "email": "x@example.com"},
               "data_request": {"id": 77}, "orders_requested": ["5001"]}

    response = post_shopify(app_web.url, connected, "customers/data_request", payload,
                            secret=SHOPIFY_APP_CLIENT_SECRET)
    run_worker_until_idle()

    assert response.status_code == 200
    request = connected.data_requests.get()
    assert [order["number"] for order in request.export["orders"]] == ["#1001"]


def test_a_disconnect_while_shopify_is_unreachable_still_disconnects_here_and_says_what_is_left(
    shopify_app, admin_client, connected, settings
):
    settings.SHOPIFY_SHOP_URL_TEMPLATE = "http://127.0.0.1:9/shops/{shop}"  # nothing listens there

    response = admin_client.post(reverse("store-disconnect", args=[connected.public_id]), follow=True)

    html = response.content.decode()
    assert response.status_code == 200
    assert "is disconnected" in html and "could not be removed" in html and "Shopify could not be reached" in html
    integration = Integration.objects.get(store=connected)
    assert integration.status == IntegrationStatus.INACTIVE
    assert (integration.access_token_encrypted, integration.refresh_token_encrypted) == ("", "")
    assert Store.objects.get(pk=connected.pk).disconnected_at is not None
    # Left at Shopify, which is what the message said.
    assert len(fake_get(shopify_app, f"/shops/{connected.domain}")["subscriptions"]) == len(TOPICS)
    assert AuditEvent.objects.get(kind=AuditKind.STORE_DISCONNECTED).details["reason"]


def test_deleting_a_connected_shopify_store_also_removes_its_subscriptions_at_shopify(
    shopify_app, admin_client, connected
):
    response = admin_client.post(reverse("store-delete", args=[connected.public_id]), {"confirm_name": connected.name})

    assert response.status_code == 302
    assert fake_get(shopify_app, f"/shops/{connected.domain}")["subscriptions"] == []
    assert Store.objects.get(pk=connected.pk).deleted_at is not None
