"""The webhook endpoint: what the platforms see, and what OpsPulse stores."""

from __future__ import annotations

import base64
import hashlib
import hmac
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from opspulse.ingest.actions import drain_store
from opspulse.ingest.models import DeliveryStatus, WebhookDelivery
from opspulse.ingest.queue import drain_lock, lane_of
from opspulse.sim import payloads
from tests.support.processes import WebServer
from tests.support.stores import SHOPIFY_SECRET, WOO_SECRET, make_store
from tests.support.webhooks import T0, TEE, post_shopify, post_woo, shopify_order

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


def test_signed_delivery_of_an_unknown_topic_is_kept_and_marked(web, shopify_store):
    response = post_shopify(web.url, shopify_store, "products/delete", body=b'{"id": 1}')

    assert response.status_code == 200
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == DeliveryStatus.IGNORED
    assert delivery.error == "unknown topic 'products/delete'"
    assert drain_jobs(shopify_store) == 0


@pytest.mark.parametrize(
    "body",
    [b'{"id": 5001, "line_items": [', b"", "{\"id\": 1}".encode("utf-16"), b"[" * 100_000],
    ids=["truncated_json_case", "empty_body_case", "utf16_case", "deep_nesting_case"],
)
def test_signed_but_unparseable_delivery_is_kept_and_marked_failed_with_its_reason(web, shopify_store, body):
    response = post_shopify(web.url, shopify_store, "orders/create", body=body)

    assert response.status_code == 200
    assert WebhookDelivery.objects.get().status == DeliveryStatus.PENDING
    drain_store(store_id=shopify_store.pk)
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == DeliveryStatus.FAILED
    assert delivery.error.startswith("unparseable payload: ")
    assert bytes(delivery.body) == body


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
    assert post_shopify(caching_web.url, shopify_store, "orders/create", shopify_order(7001)).status_code == 200
    shopify_store.delete()
    again = make_store(personas["account"], platform="shopify", domain=shopify_store.domain, secret=SHOPIFY_SECRET)

    response = post_shopify(caching_web.url, again, "orders/create", shopify_order(7002))

    assert response.status_code == 200
    assert WebhookDelivery.objects.get().store == again


@pytest.fixture
async def ingest_app(settings):
    """The endpoint in this process, on the test database, with the Shopify app unset."""
    from opspulse.ingest.endpoint import IngestApp

    settings.SHOPIFY_CLIENT_SECRET = settings.SHOPIFY_PREVIOUS_CLIENT_SECRET = ""
    app = IngestApp(app=None)
    yield app
    if app.pool is not None:
        await app.pool.close()


@pytest.mark.anyio
async def test_refusing_an_unknown_shop_costs_what_refusing_a_bad_signature_costs(
    ingest_app, shopify_store, monkeypatch
):
    """A timing attacker learns nothing: each refusal makes one store lookup, one decryption
    and one HMAC check over as many secrets, and counts one failure, cached store or not."""
    import psycopg

    from opspulse.ingest import endpoint
    from opspulse.lib import crypto
    from opspulse.platforms.shopify.provider import STORE_BY_DOMAIN

    work: list[str] = []
    execute, decrypt, verify = psycopg.AsyncConnection.execute, crypto.decrypt, endpoint.verify_base64_hmac_sha256
    statements = {STORE_BY_DOMAIN: "lookup", endpoint.COUNT_FAILED_SIGNATURE: "count failure"}

    async def traced_execute(connection, query, *args, **kwargs):
        if query != endpoint.FORGET_OLD_FAILURES:  # housekeeping, once a minute
            work.append(statements.get(query, "other statement"))
        return await execute(connection, query, *args, **kwargs)

    def traced_decrypt(*args, **kwargs):
        work.append("decrypt")
        return decrypt(*args, **kwargs)

    def traced_verify(body, signature, secrets):
        work.append(f"hmac over {len(secrets)} secret(s)")
        return verify(body, signature, secrets)

    monkeypatch.setattr(psycopg.AsyncConnection, "execute", traced_execute)
    monkeypatch.setattr(crypto, "decrypt", traced_decrypt)
    monkeypatch.setattr(endpoint, "verify_base64_hmac_sha256", traced_verify)
    domain = shopify_store.domain

    async def refusal_work(shop: str, *, cached: bool) -> tuple[int, list[str]]:
        ingest_app.store_cache_seconds = 30 if cached else 0
        ingest_app.store_cache.clear()
        body = payloads.encode(shopify_order())
        headers = payloads.shopify_headers(shop_domain=shop, topic="orders/create", body=body, secret="a-guess")
        transport = httpx.ASGITransport(app=ingest_app)
        async with httpx.AsyncClient(transport=transport, base_url="http://ingest") as client:
            if cached:
                await client.post("/webhooks/shopify", content=body, headers=headers)
            work.clear()
            response = await client.post("/webhooks/shopify", content=body, headers=headers)
        return response.status_code, sorted(work)

    same_work = (401, ["count failure", "decrypt", "hmac over 1 secret(s)", "lookup"])
    assert await refusal_work(domain, cached=False) == same_work
    assert await refusal_work(domain, cached=True) == same_work
    assert await refusal_work("someone-else.myshopify.com", cached=False) == same_work
    assert await refusal_work("someone-else.myshopify.com", cached=True) == same_work


@pytest.fixture
def limited_webs(django_db_setup, process_logs):
    """Two web processes sharing the database, allowing 5 failed signatures a minute per
    client address, taken from a header as behind a proxy."""
    env = {"WEBHOOK_FAILED_SIGNATURES_PER_MINUTE": "5", "TRUSTED_CLIENT_IP_HEADER": "X-Client-IP"}
    servers = [WebServer(process_logs, "web-limited-1", **env), WebServer(process_logs, "web-limited-2", **env)]
    yield servers
    for server in servers:
        server.stop()


def clear_of_a_minute_boundary() -> None:
    """Failures are counted per clock minute: start where the test cannot straddle two."""
    import time

    if time.time() % 60 > 45:
        time.sleep(60.5 - time.time() % 60)


def test_a_flood_of_forged_signatures_is_limited_across_web_processes_while_real_webhooks_get_in(
    limited_webs, shopify_store
):
    """An attacker floods both web processes with forged webhooks (for a known shop and an
    unknown one) from the address Shopify also sends from; past the limit they get 429,
    and every correctly signed webhook from that address is still acknowledged."""
    flooder = {"X-Client-IP": "203.0.113.7"}
    unknown_shop = type(shopify_store)(domain="someone-else.myshopify.com")
    clear_of_a_minute_boundary()

    forged, real = [], []
    for n in range(12):
        server = limited_webs[n % 2]
        target = shopify_store if n % 3 else unknown_shop
        forged.append(post_shopify(server.url, target, "orders/create", shopify_order(), secret="a-guess",
                                   headers=flooder))
        real.append(post_shopify(server.url, shopify_store, "orders/create", shopify_order(6000 + n),
                                 headers=flooder))
    elsewhere = post_shopify(limited_webs[0].url, shopify_store, "orders/create", shopify_order(), secret="a-guess",
                             headers={"X-Client-IP": "198.51.100.20"})

    assert [response.status_code for response in forged] == [401] * 5 + [429] * 7
    assert answer(forged[5]) == (429, b'{"error": "too many failed signatures"}', [
        ("server", "uvicorn"), ("content-type", "application/json"), ("content-length", "39"), ("retry-after", "60"),
    ])
    assert [response.status_code for response in real] == [200] * 12
    assert elsewhere.status_code == 401
    assert WebhookDelivery.objects.count() == 12
