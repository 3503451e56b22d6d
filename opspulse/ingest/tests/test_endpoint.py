"""The webhook endpoint: what the platforms see, and what OpsPulse stores."""

from __future__ import annotations

import base64
import hashlib
import hmac
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from conftest import SHOPIFY_SECRET, WOO_SECRET, WebServer
from opspulse.ingest.models import DeliveryStatus, WebhookDelivery
from opspulse.ingest.queue import drain_lock, lane_of
from opspulse.ingest.tests.helpers import post_shopify, post_woo, shopify_order
from opspulse.sim import payloads

pytestmark = pytest.mark.django_db(transaction=True)


def drain_jobs(store) -> int:
    from procrastinate.contrib.django.models import ProcrastinateJob

    return ProcrastinateJob.objects.filter(queueing_lock=drain_lock(lane_of(store.pk)), status="todo").count()


def test_signed_order_is_stored_and_queued(web, shopify_store):
    response = post_shopify(web.url, shopify_store, "orders/create", shopify_order())

    assert response.status_code == 200
    delivery = WebhookDelivery.objects.get()
    assert (delivery.store, delivery.topic, delivery.status) == (shopify_store, "orders/create", "pending")
    assert bytes(delivery.body) == payloads.encode(shopify_order())
    assert drain_jobs(shopify_store) == 1


def test_many_deliveries_share_one_waiting_drain_job(web, shopify_store):
    for order_id in range(6001, 6006):
        assert post_shopify(web.url, shopify_store, "orders/create", shopify_order(order_id)).status_code == 200

    assert WebhookDelivery.objects.count() == 5
    assert drain_jobs(shopify_store) == 1


@pytest.mark.parametrize(
    "case",
    ["forged_signature", "wrong_secret", "missing_signature", "body_changed_by_one_byte", "hex_instead_of_base64"],
)
def test_bad_signature_is_refused_and_nothing_stored(web, shopify_store, case):
    body = payloads.encode(shopify_order())
    digest = hmac.new(SHOPIFY_SECRET.encode(), body, hashlib.sha256)
    headers = {
        "forged_signature": {"X-Shopify-Hmac-Sha256": base64.b64encode(b"x" * 32).decode()},
        "wrong_secret": {},
        "missing_signature": {"X-Shopify-Hmac-Sha256": None},
        "body_changed_by_one_byte": {"X-Shopify-Hmac-Sha256": base64.b64encode(digest.digest()).decode()},
        "hex_instead_of_base64": {"X-Shopify-Hmac-Sha256": digest.hexdigest()},
    }[case]
    sent = body.replace(b'"Ada"', b'"Adb"') if case == "body_changed_by_one_byte" else body
    secret = "not-the-secret" if case == "wrong_secret" else SHOPIFY_SECRET

    response = post_shopify(web.url, shopify_store, "orders/create", body=sent, secret=secret, headers=headers)

    assert response.status_code == 401
    assert WebhookDelivery.objects.count() == 0
    assert drain_jobs(shopify_store) == 0


def test_store_without_secret_is_refused(web, shopify_store):
    integration = shopify_store.integration
    integration.webhook_secret = ""
    integration.save()

    response = post_shopify(web.url, shopify_store, "orders/create", shopify_order())

    assert response.status_code == 401
    assert WebhookDelivery.objects.count() == 0


def test_previous_secret_is_accepted_during_rotation(web, shopify_store):
    integration = shopify_store.integration
    integration.previous_webhook_secret = SHOPIFY_SECRET
    integration.webhook_secret = "the-new-secret"
    integration.save()

    old = post_shopify(web.url, shopify_store, "orders/create", shopify_order(7001))
    new = post_shopify(web.url, shopify_store, "orders/create", shopify_order(7002), secret="the-new-secret")

    assert (old.status_code, new.status_code) == (200, 200)
    assert WebhookDelivery.objects.count() == 2


def answer(response: httpx.Response) -> tuple[int, bytes, list[tuple[str, str]]]:
    """What a sender sees of an answer, but for its Date header."""
    return response.status_code, response.content, [(k, v) for k, v in response.headers.items() if k != "date"]


def test_an_unknown_shop_gets_the_same_401_as_a_bad_signature_so_shops_cannot_be_enumerated(web, shopify_store):
    forged = post_shopify(web.url, shopify_store, "orders/create", shopify_order(), secret="a-guess")
    shopify_store.domain = "someone-else.myshopify.com"
    unknown = post_shopify(web.url, shopify_store, "orders/create", shopify_order(), secret="a-guess")
    unknown_with_the_known_shops_secret = post_shopify(web.url, shopify_store, "orders/create", shopify_order())
    no_shop = post_shopify(web.url, shopify_store, "orders/create", shopify_order(),
                           headers={"X-Shopify-Shop-Domain": None})

    assert answer(forged) == (401, b'{"error": "invalid signature"}', [
        ("server", "uvicorn"), ("content-type", "application/json"), ("content-length", "30"),
    ])
    assert answer(unknown) == answer(unknown_with_the_known_shops_secret) == answer(no_shop) == answer(forged)
    assert WebhookDelivery.objects.count() == 0


def test_an_unknown_woocommerce_token_gets_the_same_401_as_a_bad_signature(web, woo_store):
    forged = post_woo(web.url, woo_store, "order.created", {"id": 1}, secret="a-guess")
    woo_store.ingest_token = "not-a-store-token"
    unknown = post_woo(web.url, woo_store, "order.created", {"id": 1})
    unknown_ping = httpx.post(
        f"{web.url}/webhooks/woocommerce/{woo_store.ingest_token}",
        content=b"webhook_id=17",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )

    assert answer(forged)[:2] == (401, b'{"error": "invalid signature"}')
    assert answer(unknown) == answer(unknown_ping) == answer(forged)
    assert WebhookDelivery.objects.count() == 0


def test_oversized_body_is_413(web, shopify_store):
    body = b'{"padding": "' + b"x" * (1024 * 1024) + b'"}'

    response = post_shopify(web.url, shopify_store, "orders/create", body=body)

    assert response.status_code == 413
    assert WebhookDelivery.objects.count() == 0


def test_oversized_chunked_body_without_length_is_413(web, shopify_store):
    def chunks():
        for _ in range(40):
            yield b"x" * 65536

    headers = payloads.shopify_headers(
        shop_domain=shopify_store.domain, topic="orders/create", body=b"", secret=SHOPIFY_SECRET
    )
    response = httpx.post(f"{web.url}/webhooks/shopify", content=chunks(), headers=headers, timeout=10)

    assert response.status_code == 413
    assert WebhookDelivery.objects.count() == 0


@pytest.mark.parametrize(
    ("topic", "body", "reason"),
    [
        ("orders/create", b'{"id": 5001, "line_items": [', "unparseable payload"),
        ("orders/create", b"", "unparseable payload"),
        ("products/delete", b'{"id": 1}', "unknown topic 'products/delete'"),
    ],
    ids=["truncated_json_case", "empty_body_case", "unknown_topic_case"],
)
def test_signed_but_unusable_delivery_is_kept_and_marked(web, shopify_store, topic, body, reason):
    response = post_shopify(web.url, shopify_store, topic, body=body)

    assert response.status_code == 200
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == DeliveryStatus.IGNORED
    assert delivery.error.startswith(reason)
    assert drain_jobs(shopify_store) == 0


def test_duplicate_delivery_is_acknowledged_once_stored(web, shopify_store):
    first = post_shopify(web.url, shopify_store, "orders/create", shopify_order(), webhook_id="wh-1")
    second = post_shopify(web.url, shopify_store, "orders/create", shopify_order(), webhook_id="wh-1")

    assert (first.status_code, second.status_code) == (200, 200)
    assert second.json()["status"] == "duplicate"
    assert WebhookDelivery.objects.count() == 1


def test_concurrent_duplicates_store_one_delivery(web, shopify_store):
    with ThreadPoolExecutor(max_workers=10) as pool:
        responses = list(
            pool.map(
                lambda _: post_shopify(web.url, shopify_store, "orders/create", shopify_order(), webhook_id="wh-race"),
                range(10),
            )
        )

    assert [r.status_code for r in responses] == [200] * 10
    assert WebhookDelivery.objects.count() == 1
    assert drain_jobs(shopify_store) == 1


def test_woocommerce_ping_is_answered_and_not_stored(web, woo_store):
    response = httpx.post(
        f"{web.url}/webhooks/woocommerce/{woo_store.ingest_token}",
        content=b"webhook_id=17",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )

    assert response.status_code == 200
    assert WebhookDelivery.objects.count() == 0


def test_woocommerce_resend_with_new_delivery_id_is_a_duplicate(web, woo_store):
    from opspulse.ingest.tests.helpers import T0, TEE

    order = payloads.woo_order(880, items=[TEE], date_created=T0, date_modified=T0)

    first = post_woo(web.url, woo_store, "order.created", order)
    resend = post_woo(web.url, woo_store, "order.created", order)  # new X-WC-Webhook-Delivery-ID

    assert (first.status_code, resend.status_code) == (200, 200)
    assert WebhookDelivery.objects.get().topic == "order.created"


def test_woocommerce_forged_signature_is_401(web, woo_store):
    response = post_woo(web.url, woo_store, "order.created", {"id": 1}, secret="guess")

    assert response.status_code == 401
    assert WebhookDelivery.objects.count() == 0


def test_woocommerce_signed_order_is_stored(web, woo_store):
    from opspulse.ingest.tests.helpers import T0, TEE

    response = post_woo(
        web.url, woo_store, "order.created", payloads.woo_order(881, items=[TEE], date_created=T0, date_modified=T0)
    )

    assert response.status_code == 200
    assert WebhookDelivery.objects.get().store == woo_store
    assert WOO_SECRET not in WebhookDelivery.objects.get().headers.values()


def test_database_unavailable_is_503(process_logs, shopify_store):
    server = WebServer(
        process_logs, "web-no-db", DATABASE_URL="postgresql://postgres@127.0.0.1:1/nowhere", INGEST_POOL_TIMEOUT="1"
    )
    try:
        response = post_shopify(server.url, shopify_store, "orders/create", shopify_order())
    finally:
        server.stop()

    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"


@pytest.fixture
def caching_web(process_logs):
    server = WebServer(process_logs, "web-store-cache", INGEST_STORE_CACHE_SECONDS="60")
    yield server
    server.stop()


def test_cached_store_picks_up_a_new_secret_at_once(caching_web, shopify_store):
    assert post_shopify(caching_web.url, shopify_store, "orders/create", shopify_order(7001)).status_code == 200
    integration = shopify_store.integration
    integration.webhook_secret = "the-new-secret"
    integration.save()

    response = post_shopify(caching_web.url, shopify_store, "orders/create", shopify_order(7002), secret="the-new-secret")

    assert response.status_code == 200
    assert WebhookDelivery.objects.count() == 2


def test_store_connected_again_while_cached_gets_its_webhooks(caching_web, personas, shopify_store):
    from conftest import make_store

    assert post_shopify(caching_web.url, shopify_store, "orders/create", shopify_order(7001)).status_code == 200
    shopify_store.delete()
    again = make_store(personas["account"], platform="shopify", domain=shopify_store.domain, secret=SHOPIFY_SECRET)

    response = post_shopify(caching_web.url, again, "orders/create", shopify_order(7002))

    assert response.status_code == 200
    assert WebhookDelivery.objects.get().store == again
