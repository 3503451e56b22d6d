"""Shopify's mandatory compliance webhooks: customers/redact, shop/redact, customers/data_request.

Each is posted, signed, to a real web process and applied by the drain, as Shopify's
would be.
"""

from __future__ import annotations

import json
import logging

import pytest
from django.test import Client
from django.urls import reverse

from opspulse.alerts.models import Alert, AlertType
from opspulse.commerce.models import Order
from opspulse.ingest.models import DeliveryStatus, WebhookDelivery
from opspulse.metrics.models import Metric
from opspulse.privacy.models import CustomerDataRequest
from opspulse.sim.payloads import _shopify_customer_id
from opspulse.stores.models import Integration, IntegrationStatus, Platform, Store
from tests.support.jobs import run_worker_until_idle
from tests.support.processes import WebServer
from tests.support.stores import make_store
from tests.support.webhooks import post_shopify, shopify_order

pytestmark = pytest.mark.django_db(transaction=True)

APP_SECRET = "shpss_opspulse_app_client_secret"
ADA = {"email": "ada@example.com", "first_name": "Ada", "city": "Lyon"}
GRACE = {"email": "grace@example.com", "first_name": "Grace", "city": "Paris"}


@pytest.fixture(scope="module")
def app_web(django_db_setup, process_logs):
    server = WebServer(
        process_logs, "web-compliance", SHOPIFY_CLIENT_ID="opspulse-app", SHOPIFY_CLIENT_SECRET=APP_SECRET
    )
    yield server
    server.stop()


def installed(store: Store, status: IntegrationStatus) -> Store:
    Integration.objects.filter(store=store).update(app_installed=True, status=status)
    return store


@pytest.fixture
def store(personas):
    """Alice's shop, with OpsPulse's app installed."""
    store = make_store(personas["account"], platform=Platform.SHOPIFY, domain="alice-apparel.myshopify.com", secret="")
    return installed(store, IntegrationStatus.ACTIVE)


@pytest.fixture
def other_store(personas):
    store = make_store(
        personas["other_account"], platform=Platform.SHOPIFY, domain="charlie-chairs.myshopify.com", secret=""
    )
    return installed(store, IntegrationStatus.ACTIVE)


def post(app_web, store, topic, payload, **kwargs):
    response = post_shopify(app_web.url, store, topic, payload, secret=APP_SECRET, **kwargs)
    assert response.status_code == 200, response.text
    return response


def customer(person: dict) -> dict:
    return {"id": _shopify_customer_id(person["email"]), "email": person["email"], "phone": None}


def redact_payload(store, person, orders):
    return {"shop_id": 954889, "shop_domain": store.domain, "customer": customer(person), "orders_to_redact": orders}


def data_request_payload(store, person, orders, request_id=9999):
    return {
        "shop_id": 954889, "shop_domain": store.domain, "orders_requested": orders,
        "customer": customer(person), "data_request": {"id": request_id},
    }


def place_orders(app_web, store):
    """Ada's orders 5001 (created, then updated) and 5003; Grace's 5002."""
    post(app_web, store, "orders/create", shopify_order(5001, **ADA))
    post(app_web, store, "orders/updated", shopify_order(5001, minutes=5, fulfillment_status="fulfilled", **ADA))
    post(app_web, store, "orders/create", shopify_order(5002, **GRACE))
    post(app_web, store, "orders/create", shopify_order(5003, **ADA))
    run_worker_until_idle()


def bodies(store) -> dict[int, bytes]:
    return {pk: bytes(body) for pk, body in WebhookDelivery.objects.filter(store=store).values_list("pk", "body")}


def order_bodies(store, order_id: int) -> list[bytes]:
    return [
        bytes(d.body) for d in WebhookDelivery.objects.filter(store=store, topic__startswith="orders/").order_by("pk")
        if json.loads(bytes(d.body))["id"] == order_id
    ]


def figures(store) -> tuple:
    """What a redaction must not change."""
    return (
        sorted(Order.objects.filter(store=store).values_list("external_id", "number", "status", "total", "units")),
        sorted(Metric.objects.filter(store=store).values_list("name", "granularity", "timestamp", "value")),
    )


def customer_fields(store) -> dict[str, tuple[str, str]]:
    return {
        order.external_id: (order.customer_first_name, order.customer_city)
        for order in Order.objects.filter(store=store)
    }


def test_customers_redact_erases_that_customers_data_and_nothing_else(app_web, store):
    # given
    place_orders(app_web, store)
    before, grace_bodies = figures(store), order_bodies(store, 5002)

    # when: Shopify names one of Ada's two orders; the other is found through her id
    post(app_web, store, "customers/redact", redact_payload(store, ADA, [5001]))
    run_worker_until_idle()

    # then
    assert customer_fields(store) == {"5001": ("", ""), "5002": ("Grace", "Paris"), "5003": ("", "")}
    assert figures(store) == before
    assert order_bodies(store, 5002) == grace_bodies
    for order_id in (5001, 5003):
        for body in order_bodies(store, order_id):
            payload = json.loads(body)
            assert payload["redacted"] is True
            assert b"ada" not in body.lower() and b"lyon" not in body.lower()
            assert not {"customer", "email", "billing_address", "shipping_address", "client_details"} & payload.keys()
            assert payload["line_items"][0]["sku"] == "TEE-BLK-M"
    assert WebhookDelivery.objects.get(topic="customers/redact").status == DeliveryStatus.PROCESSED


def test_a_redacted_order_payload_still_parses_as_the_same_order(app_web, store):
    from opspulse.platforms.shopify.handlers import parse_order

    place_orders(app_web, store)
    post(app_web, store, "customers/redact", redact_payload(store, ADA, [5001]))
    run_worker_until_idle()

    [created, updated] = order_bodies(store, 5001)
    parsed = parse_order(json.loads(updated))

    assert (parsed.number, parsed.total, parsed.units, parsed.customer_first_name, parsed.customer_city) == (
        "#1001", Order.objects.get(external_id="5001").total, 3, "", ""
    )


def test_an_order_update_drained_with_the_redaction_does_not_bring_the_name_back(app_web, store):
    place_orders(app_web, store)

    # Both wait in the queue and are drained in one batch.
    post(app_web, store, "orders/updated", shopify_order(5001, minutes=10, fulfillment_status="fulfilled", **ADA))
    post(app_web, store, "customers/redact", redact_payload(store, ADA, [5001]))
    run_worker_until_idle()

    assert customer_fields(store)["5001"] == ("", "")
    assert all(b"Ada" not in body for body in order_bodies(store, 5001))


def test_a_duplicate_customers_redact_changes_nothing_more(app_web, store):
    place_orders(app_web, store)
    payload = redact_payload(store, ADA, [5001])
    post(app_web, store, "customers/redact", payload, webhook_id="b54557e4-redact")
    run_worker_until_idle()
    after_first = (bodies(store), customer_fields(store), figures(store))

    post(app_web, store, "customers/redact", payload, webhook_id="b54557e4-redact")
    post(app_web, store, "customers/redact", payload, webhook_id="b54557e4-redact-again")
    run_worker_until_idle()

    assert WebhookDelivery.objects.filter(topic="customers/redact").count() == 2
    first, second = (bodies(store), customer_fields(store), figures(store)), after_first
    assert {pk: body for pk, body in first[0].items() if pk in second[0]} == second[0]
    assert first[1:] == second[1:]


def test_shop_redact_erases_the_store_and_its_data_but_no_other_store(app_web, store, other_store, personas, caplog):
    # given: Alice's shop uninstalled the app 48 hours ago
    place_orders(app_web, store)
    post(app_web, other_store, "orders/create", shopify_order(7001, **GRACE))
    run_worker_until_idle()
    Alert.objects.create(store=store, type=AlertType.LOW_STOCK, config={"threshold": 5})
    installed(store, IntegrationStatus.INACTIVE)
    other_before = (figures(other_store), bodies(other_store))
    store_id = store.pk

    # when
    with caplog.at_level(logging.INFO, logger="opspulse.privacy"):
        post(app_web, store, "shop/redact", {"shop_id": 954889, "shop_domain": store.domain})
        run_worker_until_idle()

    # then
    assert not Store.objects.filter(pk=store_id).exists()
    assert not Order.objects.filter(store_id=store_id).exists()
    assert not Metric.objects.filter(store_id=store_id).exists()
    assert not WebhookDelivery.objects.filter(store_id=store_id).exists()
    assert not Integration.objects.filter(store_id=store_id).exists()
    assert not Alert.objects.filter(store_id=store_id).exists()
    assert (figures(other_store), bodies(other_store)) == other_before
    assert personas["account"].stores.count() == 0
    [erased] = [r.getMessage() for r in caplog.records if r.getMessage().startswith("shop/redact: store")]
    assert f"store {store_id} " in erased and "Ada" not in erased and store.domain not in erased


def test_a_late_order_webhook_drained_with_shop_redact_does_not_stop_the_lane(app_web, store, other_store):
    # given: the shop was uninstalled; a late retry of an order webhook and shop/redact
    # wait together, with another shop's order, for the same drain batch
    installed(store, IntegrationStatus.INACTIVE)
    post(app_web, store, "orders/updated", shopify_order(5001, **GRACE))
    post(app_web, store, "shop/redact", {"shop_id": 954889, "shop_domain": store.domain})
    post(app_web, other_store, "orders/create", shopify_order(7001, **GRACE))

    # when
    run_worker_until_idle()

    # then
    assert not Store.objects.filter(pk=store.pk).exists()
    assert Order.objects.filter(store=other_store).count() == 1
    assert not WebhookDelivery.objects.filter(status=DeliveryStatus.PENDING).exists()


def test_shop_redact_leaves_a_shop_that_installed_the_app_again_alone(app_web, store, caplog):
    place_orders(app_web, store)
    before = (figures(store), customer_fields(store))

    with caplog.at_level(logging.WARNING, logger="opspulse.privacy"):
        post(app_web, store, "shop/redact", {"shop_id": 954889, "shop_domain": store.domain})
        run_worker_until_idle()

    assert Store.objects.filter(pk=store.pk).exists()
    assert (figures(store), customer_fields(store)) == before
    delivery = WebhookDelivery.objects.get(topic="shop/redact")
    assert delivery.status == DeliveryStatus.IGNORED
    assert delivery.error == "the app was installed again since it was uninstalled"
    assert any("not acted on" in record.getMessage() for record in caplog.records)


def test_a_redaction_naming_another_shop_is_not_applied(app_web, store, other_store):
    place_orders(app_web, store)

    post(app_web, store, "shop/redact", {"shop_id": 1, "shop_domain": other_store.domain})
    post(app_web, store, "customers/redact", redact_payload(other_store, ADA, [5001]))
    post(app_web, store, "customers/data_request", data_request_payload(other_store, ADA, [5001]))
    run_worker_until_idle()

    assert Store.objects.filter(pk=store.pk).exists()
    assert customer_fields(store)["5001"] == ("Ada", "Lyon")
    assert not CustomerDataRequest.objects.exists()
    assert set(
        WebhookDelivery.objects.filter(topic__in=["shop/redact", "customers/redact", "customers/data_request"])
        .values_list("status", flat=True)
    ) == {DeliveryStatus.IGNORED}


def test_data_request_exports_the_customers_orders(app_web, store):
    place_orders(app_web, store)

    post(app_web, store, "customers/data_request", data_request_payload(store, ADA, [5001]))
    run_worker_until_idle()

    data_request = CustomerDataRequest.objects.get(store=store)
    export = data_request.export
    assert (data_request.external_id, data_request.customer_email) == ("9999", "ada@example.com")
    assert [order["number"] for order in export["orders"]] == ["#1001", "#1003"]
    first = export["orders"][0]
    assert (first["customer_first_name"], first["customer_city"], first["status"], first["currency"]) == (
        "Ada", "Lyon", "fulfilled", "USD"
    )
    assert first["total"] == str(Order.objects.get(external_id="5001").total)
    assert [(item["sku"], item["quantity"]) for item in first["line_items"]] == [("TEE-BLK-M", 2), ("MUG-01", 1)]
    # The webhooks OpsPulse keeps about her orders, in full: they hold more of her data.
    assert [(hook["topic"], hook["payload"]["id"]) for hook in export["webhooks"]] == [
        ("orders/create", 5001), ("orders/updated", 5001), ("orders/create", 5003)
    ]
    assert all(hook["payload"]["email"] == "ada@example.com" for hook in export["webhooks"])
    assert "Grace" not in json.dumps(export)


def test_a_duplicate_data_request_records_it_once(app_web, store):
    place_orders(app_web, store)
    payload = data_request_payload(store, ADA, [5001])

    post(app_web, store, "customers/data_request", payload, webhook_id="dr-1")
    run_worker_until_idle()
    first = CustomerDataRequest.objects.get()
    post(app_web, store, "customers/data_request", payload, webhook_id="dr-2")
    run_worker_until_idle()

    assert list(CustomerDataRequest.objects.values_list("pk", "export")) == [(first.pk, first.export)]


def test_customers_redact_removes_the_customers_data_requests(app_web, store):
    place_orders(app_web, store)
    post(app_web, store, "customers/data_request", data_request_payload(store, ADA, [5001], request_id=1))
    post(app_web, store, "customers/data_request", data_request_payload(store, GRACE, [5002], request_id=2))
    run_worker_until_idle()

    post(app_web, store, "customers/redact", redact_payload(store, ADA, [5001]))
    run_worker_until_idle()

    assert list(CustomerDataRequest.objects.values_list("external_id", flat=True)) == ["2"]


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_the_owner_downloads_a_data_request_and_others_cannot(app_web, store, personas):
    place_orders(app_web, store)
    post(app_web, store, "customers/data_request", data_request_payload(store, ADA, [5001]))
    run_worker_until_idle()
    data_request = CustomerDataRequest.objects.get()
    page = reverse("store-data-requests", args=[store.public_id])
    download = f"{reverse('store-data-request-download', args=[store.public_id])}?id={data_request.public_id}"

    listing = signed_in(personas["alice"]).get(page)
    owner = signed_in(personas["alice"]).get(download)
    member = signed_in(personas["bob"]).get(download)
    outsider = signed_in(personas["charlie"]).get(download)

    assert listing.status_code == 200
    assert download.replace("&", "&amp;") in listing.content.decode()
    assert owner.status_code == 200
    assert owner["Content-Disposition"] == 'attachment; filename="data-request-9999.json"'
    assert json.loads(owner.content) == data_request.export
    assert (member.status_code, outsider.status_code) == (403, 404)


def test_a_data_request_of_another_store_is_not_found_through_this_one(app_web, store, other_store, personas):
    post(app_web, other_store, "customers/data_request", data_request_payload(other_store, GRACE, []))
    run_worker_until_idle()
    foreign = CustomerDataRequest.objects.get(store=other_store)

    response = signed_in(personas["alice"]).get(
        f"{reverse('store-data-request-download', args=[store.public_id])}?id={foreign.public_id}"
    )

    assert response.status_code == 404


def test_only_admins_see_the_data_requests_link_on_the_dashboard(store, personas):
    link = reverse("store-data-requests", args=[store.public_id])

    owner = signed_in(personas["alice"]).get(reverse("dashboard", args=[store.public_id]))
    member = signed_in(personas["bob"]).get(reverse("dashboard", args=[store.public_id]))

    assert link in owner.content.decode()
    assert link not in member.content.decode()


@pytest.mark.parametrize("topic", ["customers/redact", "shop/redact", "customers/data_request"])
def test_a_compliance_webhook_with_a_bad_signature_is_refused(app_web, store, topic):
    payload = {
        "customers/redact": redact_payload(store, ADA, [5001]),
        "shop/redact": {"shop_id": 954889, "shop_domain": store.domain},
        "customers/data_request": data_request_payload(store, ADA, [5001]),
    }[topic]

    response = post_shopify(app_web.url, store, topic, payload, secret="not-the-app-secret")

    assert response.status_code == 401
    assert not WebhookDelivery.objects.exists()
