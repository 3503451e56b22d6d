"""Hostile bodies and headers against a running web process, on both webhook routes.

Never a 500; a forged or unsigned delivery is never stored; a validly signed delivery
of a topic OpsPulse does not handle is stored as ignored with a reason; one of a known
topic is queued, and the worker marks it failed with a reason when it is not a UTF-8
JSON payload, or JSON but not the resource it claims: none ever becomes an order, a
stock level or a cart.

The examples are derandomized (the same ones on every run): FUZZ_EXAMPLES per platform,
150 by default and 10,000 in `make chaos`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import uuid
from dataclasses import dataclass

import httpx
import pytest
from django.conf import settings as django_settings
from hypothesis import HealthCheck, example, given, settings, strategies as st

from opspulse.commerce.models import Cart, InventoryLevel, Order
from opspulse.ingest.models import DeliveryStatus, WebhookDelivery
from opspulse.sim import payloads
from tests.support.chaos import PRODUCTS, T0
from tests.support.jobs import run_worker_until_idle
from tests.support.stores import SHOPIFY_SECRET, WOO_SECRET
from tests.support.webhooks import post_shopify, shopify_order

pytestmark = pytest.mark.django_db(transaction=True)

MAX_BODY = django_settings.WEBHOOK_MAX_BODY_BYTES
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "150"))
TOPICS = {"shopify": "orders/create", "woocommerce": "order.created"}
SIGNATURE_HEADERS = {"shopify": "X-Shopify-Hmac-Sha256", "woocommerce": "X-WC-Webhook-Signature"}
TOPIC_HEADERS = {"shopify": "X-Shopify-Topic", "woocommerce": "X-WC-Webhook-Topic"}

# Valid payloads with non-ASCII text, so that every wrong encoding changes their bytes.
ORDER_TEXT = {
    "shopify": json.dumps(payloads.shopify_order(
        9001, number=9001, created_at=T0, updated_at=T0, items=PRODUCTS[:2], first_name="Zoë", city="Köln",
    ), ensure_ascii=False),
    "woocommerce": json.dumps(payloads.woo_order(
        9001, items=PRODUCTS[:2], date_created=T0, date_modified=T0, first_name="Zoë", city="Köln",
    ), ensure_ascii=False),
}
INVALID_UTF8 = [b"\xff", b"\x80", b"\xc3(", b"\xe2\x82", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80", b"\xc0\xaf"]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)
non_ascii = st.binary(min_size=1, max_size=8).map(lambda b: bytes(0x80 | (c & 0x7F) for c in b))


def bodies(platform: str) -> st.SearchStrategy[bytes]:
    text = ORDER_TEXT[platform]
    utf8 = text.encode()
    return st.one_of(
        st.binary(max_size=512),
        st.integers(0, len(utf8) - 1).map(lambda n: utf8[:n]),  # truncated
        st.sampled_from(["latin-1", "utf-16", "utf-16-le", "utf-16-be", "utf-32"]).map(text.encode),
        st.tuples(st.integers(0, len(utf8)), st.sampled_from(INVALID_UTF8)).map(
            lambda t: utf8[: t[0]] + t[1] + utf8[t[0]:]
        ),
        st.tuples(st.integers(5_000, 300_000), st.sampled_from([b"[", b'{"a":', b'{"line_items":['])).map(
            lambda t: t[1] * t[0]  # nested far deeper than any parser's recursion limit
        ),
        st.integers(5_000, 100_000).map(lambda n: b"[" * n + b"]" * n),
        json_values.map(lambda v: json.dumps(v, ensure_ascii=False).encode()),
        st.sampled_from([b"", b" ", b"webhook_id=17", b"<order/>", b"NaN", b"\xef\xbb\xbf{}", b'{"id": 1}']),
        st.integers(1, 4096).map(lambda n: b" " * (MAX_BODY + n)),  # oversized
    )


@dataclass(frozen=True, repr=False)
class Case:
    platform: str
    body: bytes
    signature: str
    domain: str
    topic: str
    token: str
    webhook_id: str
    content_type: str

    def __repr__(self) -> str:
        body = repr(self.body[:120]) + (f"… ({len(self.body)} bytes)" if len(self.body) > 120 else "")
        return (
            f"Case({self.platform}, body={body}, signature={self.signature}, domain={self.domain}, "
            f"topic={self.topic}, token={self.token}, webhook_id={self.webhook_id}, content_type={self.content_type})"
        )


def cases(platform: str) -> st.SearchStrategy[Case]:
    return st.builds(
        Case,
        platform=st.just(platform),
        body=bodies(platform),
        # Half the requests are signed right (or name the right store, or topic), so that
        # what a signed request stores is explored as much as what a bad one is refused.
        signature=st.just("valid") | st.sampled_from(
            ["missing", "empty", "hex", "random_base64", "wrong_secret", "truncated", "non_ascii", "one_char_changed"]
        ),
        domain=st.just("right") | st.sampled_from(["missing", "unknown", "non_ascii"]),
        topic=st.just("right") | st.sampled_from(["unknown", "missing", "non_ascii"]),
        token=st.sampled_from(["right", "right", "right", "unknown"]),
        webhook_id=st.sampled_from(["unique", "missing", "non_ascii"]),
        content_type=st.sampled_from(["application/json", "text/plain; charset=latin-1", "missing"]),
    )


def signature_value(case: Case, secret: str, draw_bytes: bytes) -> bytes | None:
    digest = hmac.new(secret.encode(), case.body, hashlib.sha256).digest()
    valid = base64.b64encode(digest)
    return {
        "valid": valid,
        "missing": None,
        "empty": b"",
        "hex": hmac.new(secret.encode(), case.body, hashlib.sha256).hexdigest().encode(),
        "random_base64": base64.b64encode(hashlib.sha256(draw_bytes + case.body).digest()),
        "wrong_secret": base64.b64encode(hmac.new(b"not-the-secret", case.body, hashlib.sha256).digest()),
        "truncated": valid[:-5],
        "non_ascii": valid[:-2] + draw_bytes,
        "one_char_changed": (b"A" if valid[:1] != b"A" else b"B") + valid[1:],
    }[case.signature]


def request_for(case: Case, store, extra: bytes) -> tuple[str, dict[str, bytes]]:
    secret = SHOPIFY_SECRET if case.platform == "shopify" else WOO_SECRET
    headers: dict[str, bytes | None] = {
        SIGNATURE_HEADERS[case.platform]: signature_value(case, secret, extra),
        TOPIC_HEADERS[case.platform]: {
            "right": TOPICS[case.platform].encode(), "unknown": b"orders/teleported", "missing": None,
            "non_ascii": TOPICS[case.platform].encode() + extra,
        }[case.topic],
        "Content-Type": None if case.content_type == "missing" else case.content_type.encode(),
    }
    if case.platform == "shopify":
        path = "/webhooks/shopify"
        headers["X-Shopify-Shop-Domain"] = {
            "right": store.domain.encode(), "missing": None, "unknown": b"someone-else.myshopify.com",
            "non_ascii": store.domain.encode() + extra,
        }[case.domain]
        headers["X-Shopify-Webhook-Id"] = {
            "unique": str(uuid.uuid4()).encode(), "missing": None, "non_ascii": str(uuid.uuid4()).encode() + extra,
        }[case.webhook_id]
    else:
        token = store.ingest_token if case.token == "right" else "unknown-store-token"
        path = f"/webhooks/woocommerce/{token}"
        headers["X-WC-Webhook-ID"] = b"1"
    return path, {k: v for k, v in headers.items() if v is not None}


def expected_status(case: Case, headers: dict[str, bytes]) -> int:
    if len(case.body) > MAX_BODY:
        return 413
    signature = headers.get(SIGNATURE_HEADERS[case.platform])
    secret = SHOPIFY_SECRET if case.platform == "shopify" else WOO_SECRET
    valid = signature == base64.b64encode(hmac.new(secret.encode(), case.body, hashlib.sha256).digest())
    if case.platform == "shopify":
        if not signature:
            return 401
        if case.domain != "right":
            return 401  # an unknown shop is answered as a bad signature is
        return 200 if valid else 401
    if case.token != "right":
        return 401  # an unknown token too, ping or not
    if signature is None and case.body.startswith(b"webhook_id="):
        return 200  # the activation ping
    return 200 if valid else 401


def delivery_key(case: Case, headers: dict[str, bytes]) -> str:
    digest = hashlib.sha256(case.body).hexdigest()
    if case.platform == "shopify":
        webhook_id = headers.get("X-Shopify-Webhook-Id", b"").decode("latin-1")
        return webhook_id or f"sha256:{digest}"
    return f"1:{digest}"


def is_json(case: Case) -> bool:
    """Whether the worker can parse the body: UTF-8 JSON (a leading byte order mark is
    tolerated)."""
    try:
        json.loads(case.body.decode("utf-8-sig"))
    except (ValueError, RecursionError):
        return False
    return True


@pytest.mark.parametrize("platform", ["shopify", "woocommerce"])
def test_hostile_requests_never_fail_the_server_nor_become_records(platform, web, shopify_store, woo_store):
    store = shopify_store if platform == "shopify" else woo_store
    client = httpx.Client(base_url=web.url, timeout=15)

    def signed(body: bytes) -> Case:
        return Case(platform, body, "valid", "right", "right", "right", "unique", "application/json")

    # The keys of queued deliveries that the worker cannot parse.
    unparseable: set[str] = set()

    @settings(
        max_examples=EXAMPLES, derandomize=True, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    @given(case=cases(platform), extra=non_ascii)
    # Found by this test: a 500 (RecursionError), an order processed from UTF-16, and:
    @example(case=signed(b"[" * 10_000), extra=b"\x80")
    @example(case=signed(ORDER_TEXT[platform].encode("utf-16")), extra=b"\x80")
    @example(case=signed(ORDER_TEXT[platform].encode().replace(b"\xc3\xab", b"\xed\xa0\x80")), extra=b"\x80")
    # A domain followed by a byte that str.strip() takes for whitespace was accepted.
    @example(case=Case(platform, b"", "valid", "non_ascii", "right", "right", "unique", "application/json"),
             extra=b"\x85")
    def one_request(case: Case, extra: bytes) -> None:
        path, headers = request_for(case, store, extra)
        key = delivery_key(case, headers)
        # Examples repeat bodies (and Hypothesis replays them): start each one afresh.
        WebhookDelivery.objects.filter(delivery_key=key).delete()
        unparseable.discard(key)
        before = WebhookDelivery.objects.count()
        response = client.post(path, content=case.body, headers=headers)

        assert response.status_code != 500, f"500 for {case!r}:\n{web.output()[-3000:]}"
        assert response.status_code == expected_status(case, headers), case
        outcome = response.json().get("status")
        if response.status_code != 200 or outcome == "pong":
            assert WebhookDelivery.objects.count() == before, "a refused delivery was stored"
            return
        assert outcome != "duplicate", "each example starts without its delivery stored"
        delivery = WebhookDelivery.objects.get(pk=response.json()["id"])
        assert delivery.delivery_key == key
        if case.topic == "right":
            assert (outcome, delivery.status) == ("accepted", DeliveryStatus.PENDING)
            if not is_json(case):
                unparseable.add(key)
        else:
            assert (outcome, delivery.status) == ("stored", DeliveryStatus.IGNORED), case
            assert delivery.error, "an ignored delivery says why"

    try:
        one_request()
    finally:
        client.close()

    run_worker_until_idle()
    statuses = set(WebhookDelivery.objects.values_list("status", flat=True))
    assert statuses <= {DeliveryStatus.IGNORED, DeliveryStatus.FAILED}
    assert not WebhookDelivery.objects.filter(error="").exists(), "every stored-but-unprocessed delivery says why"
    assert unparseable, "the examples include signed bodies that are not JSON"
    for status, error in WebhookDelivery.objects.filter(delivery_key__in=unparseable).values_list("status", "error"):
        assert status == DeliveryStatus.FAILED and error.startswith("unparseable payload: "), (status, error)
    assert (Order.objects.count(), InventoryLevel.objects.count(), Cart.objects.count()) == (0, 0, 0)


@pytest.mark.parametrize(
    "field, value",
    [
        ("currency", "EURO"),  # four characters for a three-character column
        ("customer", {"first_name": "Zo\x00e"}),  # PostgreSQL text cannot hold NUL
        ("current_total_price", "1e15"),  # beyond numeric(14, 2)
        ("line_items", [{"id": 1, "title": "Tee", "quantity": 10**12, "price": "1.00"}]),  # beyond integer
    ],
    ids=["currency-too-long", "nul-in-text", "total-out-of-range", "quantity-out-of-range"],
)
def test_signed_order_the_database_cannot_hold_fails_at_once_without_holding_up_the_store(
    web, shopify_store, field, value
):
    hostile = shopify_order(5001)
    hostile[field] = value
    assert post_shopify(web.url, shopify_store, "orders/create", hostile).status_code == 200
    assert post_shopify(web.url, shopify_store, "orders/create", shopify_order(5002)).status_code == 200

    run_worker_until_idle()

    bad, good = WebhookDelivery.objects.order_by("id")
    assert (bad.status, bad.attempts) == (DeliveryStatus.FAILED, 1)
    assert bad.error
    assert good.status == DeliveryStatus.PROCESSED
    assert list(Order.objects.values_list("external_id", flat=True)) == ["5002"]
