"""Webhooks of a shop that installed OpsPulse's app: signed with the app's secret; uninstall."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from opspulse.accounts.models import AuditEvent, AuditKind
from opspulse.commerce.models import Order
from opspulse.platforms.shopify.client import IntegrationUnavailable, ShopifyClient
from opspulse.stores.models import Integration, IntegrationStatus, Platform, Store
from tests.factories import StoreFactory
from tests.support.jobs import run_worker_until_idle
from tests.support.processes import WebServer
from tests.support.webhooks import post_shopify, shopify_order

pytestmark = pytest.mark.django_db(transaction=True)

APP_SECRET = "shpss_opspulse_app_client_secret"


@pytest.fixture(scope="module")
def app_web(django_db_setup, process_logs):
    server = WebServer(process_logs, "web-shopify-app", SHOPIFY_CLIENT_ID="opspulse-app", SHOPIFY_CLIENT_SECRET=APP_SECRET)
    yield server
    server.stop()


@pytest.fixture
def installed_store(db):
    store = StoreFactory(platform=Platform.SHOPIFY, domain="harbor-goods.myshopify.com", timezone="Europe/Paris")
    integration = Integration(store=store, type=Platform.SHOPIFY, app_installed=True, granted_scopes="read_orders")
    integration.access_token = "shpat_live_token"
    integration.refresh_token = "shprt_refresh_token"
    integration.access_token_expires_at = timezone.now() + timedelta(hours=1)
    integration.save()
    return store


def test_an_installed_shops_webhooks_are_verified_with_the_apps_client_secret(app_web, installed_store):
    accepted = post_shopify(app_web.url, installed_store, "orders/create", shopify_order(5001), secret=APP_SECRET)
    forged = post_shopify(app_web.url, installed_store, "orders/create", shopify_order(5002), secret="not-the-secret")

    assert accepted.status_code == 200
    assert forged.status_code == 401
    run_worker_until_idle()
    assert list(Order.objects.values_list("number", flat=True)) == ["#1001"]


def test_app_uninstalled_stops_every_use_of_the_token(app_web, installed_store):
    shop = {"id": 690933842, "name": "Harbor Goods", "myshopify_domain": installed_store.domain, "currency": "EUR"}

    response = post_shopify(app_web.url, installed_store, "app/uninstalled", shop, secret=APP_SECRET)
    run_worker_until_idle()

    assert response.status_code == 200
    integration = Integration.objects.get(store=installed_store)
    assert integration.status == IntegrationStatus.INACTIVE
    assert integration.access_token == "" and integration.refresh_token == ""
    assert "uninstalled" in integration.last_error
    with pytest.raises(IntegrationUnavailable):
        ShopifyClient(integration).query("query { shop { name } }")
    # The owners see that the store stopped, and why.
    event = AuditEvent.objects.get(kind=AuditKind.STORE_DISCONNECTED)
    assert (event.account_id, event.user, event.details["domain"]) == (
        installed_store.account_id, None, installed_store.domain
    )


@pytest.mark.parametrize(
    "named",
    ["other_shop_case", "no_shop_case"],
)
def test_an_app_uninstalled_signed_for_one_shop_and_replayed_under_anothers_header_does_nothing(
    app_web, installed_store, named
):
    """Shopify signs every shop's app webhooks with the app's one secret and leaves the
    shop header unsigned: an app/uninstalled captured for shop A, sent with shop B's
    header, passes the signature check and must still leave B connected."""
    from opspulse.ingest.models import DeliveryStatus, WebhookDelivery

    shop_a = {"id": 548380009, "name": "Shop A", "myshopify_domain": "shop-a.myshopify.com",
              "domain": "shop-a.example"}
    if named == "no_shop_case":
        del shop_a["myshopify_domain"], shop_a["domain"]

    response = post_shopify(app_web.url, installed_store, "app/uninstalled", shop_a, secret=APP_SECRET)
    run_worker_until_idle()

    assert response.status_code == 200
    integration = Integration.objects.get(store=installed_store)
    assert (integration.status, integration.access_token, integration.last_error) == (
        IntegrationStatus.ACTIVE, "shpat_live_token", ""
    )
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.error) == (
        DeliveryStatus.IGNORED, "the payload names another shop than the one that sent it"
    )


@pytest.mark.parametrize("topic", ["shop/redact", "customers/redact", "customers/data_request"])
def test_a_privacy_request_for_a_shop_opspulse_holds_nothing_of_is_answered_200(app_web, db, topic):
    from opspulse.ingest.models import WebhookDelivery

    gone = Store(platform=Platform.SHOPIFY, domain="erased-already.myshopify.com")  # not saved: unknown
    payload = {"shop_id": 1, "shop_domain": gone.domain, "customer": {"id": 1, "email": "x@example.com"}}

    signed = post_shopify(app_web.url, gone, topic, payload, secret=APP_SECRET)
    forged = post_shopify(app_web.url, gone, topic, payload, secret="not-the-secret")
    order = post_shopify(app_web.url, gone, "orders/create", shopify_order(5001), secret=APP_SECRET)

    assert signed.status_code == 200
    assert forged.status_code == 401
    assert order.status_code == 404
    assert not WebhookDelivery.objects.exists()
