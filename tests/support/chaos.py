"""What the fault tests (tests/chaos/) of ingest → process → broadcast share: the ledger, the books check.

Each test keeps a `Ledger` of the webhooks it sent and the answers it got. After the
fault and the recovery, `assert_nothing_lost` checks that every delivery answered 200
is stored and processed, that each order holds the newest version that was stored,
and (through `assert_books_balance`) that the metric buckets count each order once.
"""

from __future__ import annotations

import hashlib
import json
import random
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx

from opspulse.sim import payloads
from opspulse.sim.payloads import LineSpec
from tests.support.processes import wait_for
from tests.support.stores import SHOPIFY_SECRET, WOO_SECRET

# Order times spread over a day and a half, so that orders fall in many hour buckets
# and on both sides of local midnight in every store's timezone.
T0 = datetime(2026, 11, 28, 18, 0, tzinfo=UTC)
PRODUCTS = [
    LineSpec(line_id=1, product_id=101, variant_id=1001, sku="TEE-BLK-M", title="Black tee", quantity=2, price=Decimal("25.00")),
    LineSpec(line_id=2, product_id=102, variant_id=1002, sku="MUG-01", title="Mug", quantity=1, price=Decimal("12.50")),
    LineSpec(line_id=3, product_id=103, variant_id=1003, sku="CAP-RED", title="Red cap", quantity=3, price=Decimal("9.99")),
    LineSpec(line_id=4, product_id=104, variant_id=1004, sku="HOOD-GRY-L", title="Grey hoodie", quantity=1, price=Decimal("59.90")),
]
STATES = ("open", "paid", "fulfilled", "cancelled", "refunded")
WOO_STATUSES = {"open": "pending", "paid": "processing", "fulfilled": "completed", "cancelled": "cancelled", "refunded": "refunded"}
# The sweep re-runs a dead worker's jobs once its heartbeat is this old (30 s by
# default), and drain jobs hand over to a successor after DRAIN_JOB_MAX_SECONDS (20 s).
FAST_HEARTBEAT = {"WORKER_HEARTBEAT_SECONDS": "0.5", "WORKER_STALLED_SECONDS": "2", "DRAIN_JOB_MAX_SECONDS": "2"}


@dataclass(frozen=True)
class OrderVersion:
    """One state of an order as the platform would send it."""

    order_id: int
    created_at: datetime
    minutes: int  # after creation; 0 is the orders/create delivery
    state: str
    items: tuple[LineSpec, ...]

    @property
    def updated_at(self) -> datetime:
        return self.created_at + timedelta(minutes=self.minutes)


def order_history(order_id: int, rng: random.Random, *, versions: int = 2) -> list[OrderVersion]:
    """A created order and `versions - 1` later updates, each with its own state and lines."""
    created_at = T0 + timedelta(minutes=rng.randrange(0, 36 * 60))
    history = []
    for number in range(versions):
        state = "paid" if number == 0 else rng.choice(STATES)
        items = tuple(rng.sample(PRODUCTS, rng.randint(1, 3)))
        history.append(OrderVersion(order_id, created_at, number * 7, state, items))
    return history


def order_payload(platform: str, version: OrderVersion) -> dict:
    items = list(version.items)
    if platform == "shopify":
        kwargs: dict = {
            "open": {"financial_status": "pending"},
            "paid": {},
            "fulfilled": {"fulfillment_status": "fulfilled"},
            "cancelled": {"financial_status": "voided", "cancelled_at": version.updated_at},
            "refunded": {"financial_status": "refunded"},
        }[version.state]
        return payloads.shopify_order(
            version.order_id, number=version.order_id, created_at=version.created_at,
            updated_at=version.updated_at, items=items, **kwargs,
        )
    return payloads.woo_order(
        version.order_id, status=WOO_STATUSES[version.state], items=items,
        date_created=version.created_at, date_modified=version.updated_at,
    )


@dataclass(frozen=True)
class Delivery:
    """One webhook delivery: sending it again is a platform retry (same key)."""

    store_id: int
    platform: str
    path: str
    topic: str
    body: bytes
    headers: dict[str, str]
    key: str
    order_id: str

    def expected(self):
        """The OrderData that processing this delivery's payload records."""
        from opspulse.platforms.errors import parse_payload

        if self.platform == "shopify":
            from opspulse.platforms.shopify import handlers, payloads as models
        else:
            from opspulse.platforms.woocommerce import handlers, payloads as models
        return handlers.order_data(parse_payload(models.Order, json.loads(self.body)))


def order_delivery(store, version: OrderVersion) -> Delivery:
    created = version.minutes == 0
    body = payloads.encode(order_payload(store.platform, version))
    if store.platform == "shopify":
        topic = "orders/create" if created else "orders/updated"
        webhook_id = str(uuid.uuid4())
        headers = payloads.shopify_headers(
            shop_domain=store.domain, topic=topic, body=body, secret=SHOPIFY_SECRET, webhook_id=webhook_id
        )
        return Delivery(store.pk, "shopify", "/webhooks/shopify", topic, body, headers, webhook_id, str(version.order_id))
    topic = "order.created" if created else "order.updated"
    headers = payloads.woo_headers(topic=topic, body=body, secret=WOO_SECRET)
    key = f"{headers['X-WC-Webhook-ID']}:{hashlib.sha256(body).hexdigest()}"
    return Delivery(
        store.pk, "woocommerce", f"/webhooks/woocommerce/{store.ingest_token}", topic, body, headers, key,
        str(version.order_id),
    )


def order_deliveries(stores, orders_per_store: int, *, seed: int, versions: int = 2, first_id: int = 100_000) -> list[Delivery]:
    """Creates and updates of `orders_per_store` orders per store, interleaved at random.

    The shuffle sends some updates before their create and older updates after newer
    ones, as platforms do.
    """
    rng = random.Random(seed)
    deliveries = []
    for index, store in enumerate(stores):
        for number in range(orders_per_store):
            order_id = first_id + index * 10_000 + number
            deliveries.extend(order_delivery(store, v) for v in order_history(order_id, rng, versions=versions))
    rng.shuffle(deliveries)
    return deliveries


@dataclass(frozen=True)
class Answer:
    key: tuple[int, str]
    url: str
    status: int | None  # None: no HTTP answer
    error: str  # the client-side error when there was no answer
    outcome: str  # the endpoint's "status" field: accepted, stored, duplicate…
    started: float  # time.monotonic() when the request was sent
    at: float  # … and when its answer (or error) came


class Ledger:
    """Every delivery sent and every answer received, from any number of threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.sent: dict[tuple[int, str], Delivery] = {}
        self.answers: list[Answer] = []
        self.local = threading.local()

    def client(self) -> httpx.Client:
        client = getattr(self.local, "client", None)
        if client is None:
            client = self.local.client = httpx.Client(timeout=15)
        return client

    def post(self, base_url: str, delivery: Delivery) -> int | None:
        key = (delivery.store_id, delivery.key)
        with self.lock:
            self.sent[key] = delivery
        started = time.monotonic()
        try:
            response = self.client().post(base_url + delivery.path, content=delivery.body, headers=delivery.headers)
        except httpx.TransportError as exc:
            answer = Answer(key, base_url, None, type(exc).__name__, "", started, time.monotonic())
        else:
            try:
                outcome = str(response.json().get("status", ""))
            except ValueError:
                outcome = ""
            answer = Answer(key, base_url, response.status_code, "", outcome, started, time.monotonic())
        with self.lock:
            self.answers.append(answer)
        return answer.status

    def post_all(self, base_url: str, deliveries: Iterable[Delivery], *, threads: int = 8) -> None:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(lambda d: self.post(base_url, d), deliveries))

    def acked(self) -> set[tuple[int, str]]:
        with self.lock:
            return {a.key for a in self.answers if a.status == 200}

    def statuses(self) -> Counter:
        with self.lock:
            return Counter(a.status if a.status is not None else a.error for a in self.answers)


def _differences(expected: dict, actual: dict, limit: int = 8) -> str:
    keys = sorted(expected.keys() | actual.keys(), key=str)
    lines = [f"  {key}: expected {expected.get(key)!r}, stored {actual.get(key)!r}" for key in keys if expected.get(key) != actual.get(key)]
    more = f"\n  … and {len(lines) - limit} more" if len(lines) > limit else ""
    return "\n".join(lines[:limit]) + more


def assert_books_balance(store) -> None:
    """Each order counts exactly its current state, and the hour and day buckets hold
    exactly the sums of what the orders (and carts) count, bucketed by `placed_at`."""
    from opspulse.commerce.models import NOT_COUNTED, Cart, Order
    from opspulse.metrics.buckets import bucket_start
    from opspulse.metrics.models import Granularity, Metric, MetricName

    orders = list(Order.objects.filter(store=store))
    for order in orders:
        counts = order.status not in NOT_COUNTED
        should = (order.total, order.units, 1) if counts else (Decimal("0"), 0, 0)
        assert (order.counted_revenue, order.counted_units, order.counted_orders) == should, (
            f"order {order.external_id} of {store.domain} ({order.status}) counts "
            f"{(order.counted_revenue, order.counted_units, order.counted_orders)}, expected {should}"
        )
    cart_times = list(Cart.objects.filter(store=store).values_list("platform_created_at", flat=True))
    for granularity in Granularity:
        expected: dict[tuple[str, datetime], Decimal] = defaultdict(Decimal)
        for order in orders:
            at = bucket_start(order.placed_at, granularity, store.timezone).astimezone(UTC)
            expected[(MetricName.REVENUE, at)] += order.counted_revenue
            expected[(MetricName.UNITS_SOLD, at)] += order.counted_units
            expected[(MetricName.ORDERS, at)] += order.counted_orders
        for created in cart_times:
            expected[(MetricName.CARTS, bucket_start(created, granularity, store.timezone).astimezone(UTC))] += 1
        actual: dict[tuple[str, datetime], Decimal] = defaultdict(Decimal)
        for metric in Metric.objects.filter(store=store, granularity=granularity):
            actual[(metric.name, metric.timestamp.astimezone(UTC))] += metric.value
        expected_nonzero = {k: Decimal(v) for k, v in expected.items() if v}
        actual_nonzero = {k: v for k, v in actual.items() if v}
        assert actual_nonzero == expected_nonzero, (
            f"{granularity} buckets of {store.domain} do not match its orders:\n"
            + _differences(expected_nonzero, actual_nonzero)
        )


def assert_nothing_lost(ledger: Ledger, stores) -> None:
    """Acknowledged ⊆ stored ⊆ sent; all stored processed; orders hold the newest stored
    version; the books balance."""
    from opspulse.commerce.models import Order
    from opspulse.ingest.models import WebhookDelivery

    acked = ledger.acked()
    assert acked, "no delivery was acknowledged: the test exercised nothing"
    for store in stores:
        rows = dict(WebhookDelivery.objects.filter(store=store).values_list("delivery_key", "status"))
        sent = {key: d for (store_id, key), d in ledger.sent.items() if store_id == store.pk}
        acked_here = {key for store_id, key in acked if store_id == store.pk}
        lost = acked_here - rows.keys()
        assert not lost, f"{len(lost)} deliveries acknowledged with 200 are not stored for {store.domain}"
        assert rows.keys() <= sent.keys(), f"{store.domain} has deliveries nobody sent"
        unprocessed = Counter(status for status in rows.values() if status != "processed")
        assert not unprocessed, f"deliveries of {store.domain} not processed: {dict(unprocessed)}"

        newest = {}
        for key in rows:
            data = sent[key].expected()
            if data.external_id not in newest or data.updated_at > newest[data.external_id].updated_at:
                newest[data.external_id] = data
        expected = {ext: (d.status, d.total, d.units, d.updated_at) for ext, d in newest.items()}
        stored = {
            o.external_id: (o.status, o.total, o.units, o.platform_updated_at)
            for o in Order.objects.filter(store=store)
        }
        assert stored == expected, f"orders of {store.domain} differ from the newest stored versions:\n" + _differences(expected, stored)
        assert_books_balance(store)


def pending_work(stores) -> tuple[int, int]:
    """Deliveries still pending and drain jobs waiting or running, for these stores."""
    from procrastinate.contrib.django.models import ProcrastinateJob

    from opspulse.ingest.models import DeliveryStatus, WebhookDelivery
    from opspulse.ingest.queue import DRAIN_TASK

    pending = WebhookDelivery.objects.filter(store__in=stores, status=DeliveryStatus.PENDING).count()
    jobs = ProcrastinateJob.objects.filter(task_name=DRAIN_TASK, status__in=["todo", "doing"]).count()
    return pending, jobs


def job_states() -> list[tuple]:
    from procrastinate.contrib.django.models import ProcrastinateJob

    return list(ProcrastinateJob.objects.order_by("id").values_list("id", "task_name", "status", "attempts", "worker_id"))


def wait_until_processed(stores, *, timeout: float, sweep_every: float | None = None) -> None:
    """Wait until no delivery is pending and no drain job waits or runs.

    With `sweep_every`, run the ingest sweep that often meanwhile, as its cron (every
    15 s) would.
    """
    from procrastinate.exceptions import AlreadyEnqueued

    from opspulse.ingest.tasks import sweep

    last_sweep = 0.0

    def done() -> bool:
        nonlocal last_sweep
        if sweep_every is not None and time.monotonic() - last_sweep >= sweep_every:
            last_sweep = time.monotonic()
            try:
                sweep.defer(timestamp=int(time.time()))
            except AlreadyEnqueued:
                pass
        return pending_work(stores) == (0, 0)

    try:
        wait_for(done, timeout=timeout, interval=0.2, message="every delivery processed")
    except AssertionError:
        raise AssertionError(
            f"not processed after {timeout} s: (pending deliveries, drain jobs) = {pending_work(stores)};"
            f" jobs (id, task, status, attempts, worker) = {job_states()}"
        ) from None


def dashboard_socket(server, store, user):
    """A WebSocket to the store's dashboard on `server`, signed in as `user`."""
    from django.test import Client
    from websockets.sync.client import connect

    client = Client()
    client.force_login(user)
    return connect(
        f"ws://127.0.0.1:{server.port}/ws/stores/{store.public_id}/",
        additional_headers={"Cookie": f"sessionid={client.cookies['sessionid'].value}", "Origin": server.url},
        open_timeout=10,
    )


def receive_until(socket, needle: str, *, timeout: float) -> str:
    """Frames received until one contains `needle` (or the timeout): all of them, joined."""
    from websockets.exceptions import ConnectionClosed

    frames = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            frame = socket.recv(timeout=max(deadline - time.monotonic(), 0.05))
        except TimeoutError:
            break
        except ConnectionClosed:
            break
        frames.append(frame)
        if needle in frame:
            break
    return "".join(frames)


def probe_order(store, order_id: int) -> Delivery:
    """A new order placed now, the newest in the store's live feed."""
    now = datetime.now(UTC).replace(microsecond=0)
    return order_delivery(store, OrderVersion(order_id, now, 0, "paid", (PRODUCTS[0],)))
