"""Senders that abuse HTTP itself, against a running web process, while real webhooks flow.

- Slow senders trickle a signed order over FUZZ_TRICKLE_SECONDS (3 s by default, 30 s in
  `make chaos`): meanwhile every real webhook is acknowledged, and the slow ones are
  stored too once their last byte arrives.
- A Content-Length that lies, longer or shorter than the body sent, never stores
  anything nor answers 2xx or 500.
- A flood of forged signatures from another address never gets a 2xx (401, or 429
  once rate-limited) and never keeps a real webhook from being acknowledged.

"Acknowledged" has a generous bound here (ACK_SECONDS): a platform waits 5 s (Shopify)
before it counts a delivery as failed.
"""

from __future__ import annotations

import os
import re
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from opspulse.commerce.models import Order
from opspulse.ingest.models import WebhookDelivery
from tests.support.chaos import PRODUCTS, T0, Delivery, Ledger, OrderVersion, order_delivery
from tests.support.jobs import run_worker_until_idle

pytestmark = pytest.mark.django_db(transaction=True)

TRICKLE_SECONDS = float(os.environ.get("FUZZ_TRICKLE_SECONDS", "3"))
SLOW_SENDERS = 8
ACK_SECONDS = 3.0
STATUS_LINE = re.compile(rb"^HTTP/1\.[01] (\d{3})")


def deliveries(stores, count: int, *, first_id: int) -> list[Delivery]:
    return [
        order_delivery(stores[n % len(stores)], OrderVersion(first_id + n, T0, 0, "paid", (PRODUCTS[n % 4],)))
        for n in range(count)
    ]


def raw_request(web, delivery: Delivery, *, content_length: int) -> socket.socket:
    """Open a connection and send the delivery's request line and headers, no body."""
    conn = socket.create_connection(("127.0.0.1", web.port), timeout=ACK_SECONDS + TRICKLE_SECONDS + 10)
    head = [f"POST {delivery.path} HTTP/1.1", f"Host: 127.0.0.1:{web.port}", "Content-Type: application/json",
            f"Content-Length: {content_length}"]
    head += [f"{name}: {value}" for name, value in delivery.headers.items() if name.lower() != "content-type"]
    conn.sendall(("\r\n".join(head) + "\r\n\r\n").encode("latin-1"))
    return conn


def first_status(conn: socket.socket, *, timeout: float) -> int | None:
    """The status of the first answer on the connection; None if it closes without one or stays silent."""
    conn.settimeout(timeout)
    received = b""
    try:
        while b"\r\n" not in received:
            chunk = conn.recv(4096)
            if not chunk:
                break
            received += chunk
    except (TimeoutError, ConnectionResetError):
        pass
    match = STATUS_LINE.match(received)
    return int(match[1]) if match else None


def trickle(web, delivery: Delivery, seconds: float) -> int | None:
    conn = raw_request(web, delivery, content_length=len(delivery.body))
    try:
        pieces = max(2, int(seconds * 4))
        step = -(-len(delivery.body) // pieces)
        for start in range(0, len(delivery.body), step):
            conn.sendall(delivery.body[start:start + step])
            time.sleep(seconds / pieces)
        return first_status(conn, timeout=ACK_SECONDS + 5)
    finally:
        conn.close()


def stored_keys(stores) -> list[tuple[int, str]]:
    return list(WebhookDelivery.objects.filter(store__in=stores).values_list("store_id", "delivery_key"))


def test_slow_senders_trickling_their_bodies_hold_up_no_real_webhook(web, stores):
    slow = deliveries(stores, SLOW_SENDERS, first_id=910_000)
    real = deliveries(stores, 40, first_id=920_000)
    ledger = Ledger()
    with ThreadPoolExecutor(SLOW_SENDERS) as pool:
        trickling = [pool.submit(trickle, web, delivery, TRICKLE_SECONDS) for delivery in slow]
        time.sleep(0.2)
        pace = TRICKLE_SECONDS / len(real)
        for delivery in real:
            ledger.post(web.url, delivery)
            time.sleep(pace)
        slow_statuses = [future.result() for future in trickling]

    assert ledger.statuses() == {200: len(real)}
    slowest = max(answer.at - answer.started for answer in ledger.answers)
    assert slowest < ACK_SECONDS, f"a real webhook waited {slowest:.1f} s behind the slow senders"
    assert slow_statuses == [200] * SLOW_SENDERS
    expected = {(d.store_id, d.key) for d in slow + real}
    assert sorted(stored_keys(stores)) == sorted(expected)


@pytest.mark.parametrize("platform", ["shopify", "woocommerce"])
@pytest.mark.parametrize("lie", ["longer", "shorter"])
def test_a_lying_content_length_stores_nothing_and_the_next_webhook_is_taken(web, stores, platform, lie):
    store = next(s for s in stores if s.platform == platform)
    hostile, honest = deliveries([store], 2, first_id=930_000)
    body = hostile.body
    if lie == "longer":
        # The body sent is 100 bytes short of what was declared: the server waits for
        # the rest, and the sender then gives up.
        conn = raw_request(web, hostile, content_length=len(body) + 100)
        conn.sendall(body)
        assert first_status(conn, timeout=1.0) is None, "answered before the declared body arrived"
        assert stored_keys(stores) == []
        conn.shutdown(socket.SHUT_WR)
        status = first_status(conn, timeout=5)
    else:
        # The server reads the declared bytes only: a body cut short, whose signature
        # (over the whole body) cannot match (401); the rest reads as a garbled next
        # request (400), which may be answered first.
        conn = raw_request(web, hostile, content_length=len(body) - 25)
        conn.sendall(body)
        status = first_status(conn, timeout=5)
    conn.close()

    assert status is None or 400 <= status < 500, f"answered {status} to a lying Content-Length"
    if lie == "shorter":
        assert status in (400, 401)
    assert stored_keys(stores) == []
    ledger = Ledger()
    assert ledger.post(web.url, honest) == 200
    assert stored_keys(stores) == [(store.pk, honest.key)]


def test_a_flood_of_forged_signatures_keeps_no_real_webhook_waiting(web, stores):
    real = deliveries(stores, 40, first_id=940_000)
    forged = [
        Delivery(d.store_id, d.platform, d.path, d.topic, d.body, forge(d), d.key, d.order_id)
        for d in deliveries(stores, 40, first_id=950_000)
    ]
    stop = threading.Event()
    forged_statuses: list[int] = []
    lock = threading.Lock()

    def flood() -> None:
        # From another address than the platform's, as an attacker's would be.
        transport = httpx.HTTPTransport(local_address="127.0.0.2")
        with httpx.Client(base_url=web.url, transport=transport, timeout=15) as client:
            number = 0
            while not stop.is_set():
                delivery = forged[number % len(forged)]
                number += 1
                status = client.post(delivery.path, content=delivery.body, headers=delivery.headers).status_code
                with lock:
                    forged_statuses.append(status)

    ledger = Ledger()
    with ThreadPoolExecutor(6) as pool:
        flooding = [pool.submit(flood) for _ in range(6)]
        time.sleep(0.5)
        try:
            for delivery in real:
                ledger.post(web.url, delivery)
                time.sleep(0.05)
        finally:
            stop.set()
        for future in flooding:
            future.result()

    assert len(forged_statuses) > len(real), "the flood was no flood"
    assert set(forged_statuses) <= {401, 429}, f"forged signatures answered {set(forged_statuses)}"
    assert ledger.statuses() == {200: len(real)}
    slowest = max(answer.at - answer.started for answer in ledger.answers)
    assert slowest < ACK_SECONDS, f"a real webhook waited {slowest:.1f} s behind the flood"
    assert sorted(stored_keys(stores)) == sorted((d.store_id, d.key) for d in real)
    run_worker_until_idle()
    assert Order.objects.filter(store__in=stores).count() == len(real)


def forge(delivery: Delivery) -> dict[str, str]:
    """The delivery's headers with a signature made with a secret that is not the store's."""
    import base64
    import hashlib
    import hmac

    header = "X-Shopify-Hmac-Sha256" if delivery.platform == "shopify" else "X-WC-Webhook-Signature"
    forged = base64.b64encode(hmac.new(b"guessed-secret", delivery.body, hashlib.sha256).digest()).decode()
    return {**delivery.headers, header: forged}
