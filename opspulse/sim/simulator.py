"""Synthetic, signed webhook traffic for the demo stores.

`TrafficGenerator` decides what each store sends next and builds the deliveries; it
does no I/O and takes its randomness and clock from the caller. `run` paces those
deliveries over HTTP and keeps acknowledgement statistics.

The traffic follows how the platforms really deliver: an order is created, then
updated (paid, fulfilled or completed, sometimes cancelled), stock updates follow
orders, Shopify stores also report carts, and a few deliveries arrive twice or out
of order.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import math
import random
import re
import secrets
import signal
import unicodedata
import uuid
import zlib
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import NamedTuple
from zoneinfo import ZoneInfo

import httpx

from opspulse.sim.demo import CatalogItem, demo_catalog
from opspulse.sim.payloads import (
    LineSpec,
    encode,
    shopify_cart,
    shopify_headers,
    shopify_inventory_level,
    shopify_order,
    woo_headers,
    woo_order,
    woo_product,
)
from opspulse.stores.models import Platform, Store

SHOPIFY_PATH = "/webhooks/shopify"
WOO_PATH = "/webhooks/woocommerce/{token}"

# A WooCommerce site has one webhook per topic, each with its own id.
WOO_WEBHOOK_IDS = {"order.created": 11, "order.updated": 12, "product.updated": 13}

# Shopify inventory items are separate objects from variants; the demo derives the id.
INVENTORY_ITEM_OFFSET = 10_000_000

LOW_STOCK = 5
CONNECTIONS_PER_CLIENT = 4
# A paced run (`run(pace=…)`) sends what is due this often, and makes up at most this
# much time after a pause.
PACE_TICK = 0.25
PACE_CATCH_UP_SECONDS = 5.0
EPOCH = datetime(2025, 1, 1, tzinfo=UTC)


class Delivery(NamedTuple):
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True)
class StoreTarget:
    """What the simulator needs to know about a store, detached from the ORM."""

    platform: str
    domain: str
    webhook_secret: str
    timezone: str = "UTC"
    currency: str = "USD"
    catalog: tuple[CatalogItem, ...] = ()
    ingest_token: str = ""
    name: str = ""

    @classmethod
    def from_store(cls, store: Store) -> StoreTarget:
        return cls(
            platform=store.platform,
            domain=store.domain,
            webhook_secret=store.integration.webhook_secret,
            timezone=store.timezone,
            currency=store.currency,
            catalog=tuple(demo_catalog(store)),
            ingest_token=store.ingest_token,
            name=store.name,
        )

    @property
    def is_shopify(self) -> bool:
        return self.platform == Platform.SHOPIFY

    @property
    def path(self) -> str:
        return SHOPIFY_PATH if self.is_shopify else WOO_PATH.format(token=self.ingest_token)

    @property
    def site_url(self) -> str:
        return f"https://{self.domain}/"

    @property
    def location_id(self) -> int:
        return 60_000_000_000 + zlib.crc32(self.domain.encode()) % 10**9


def inventory_item_id(variant_id: int) -> int:
    return variant_id + INVENTORY_ITEM_OFFSET


# ---------------------------------------------------------------------------
# Customers

_US = (
    ("Olivia", "Liam", "Emma", "Noah", "Ava", "Ethan", "Sophia", "Mason", "Mia", "Lucas", "Harper"),
    ("Johnson", "Nguyen", "Garcia", "Miller", "Davis", "Patel", "Kim", "Brooks", "Rivera"),
    ("New York", "Brooklyn", "Boston", "Chicago", "Austin", "Denver", "Seattle", "Portland",
     "San Diego", "Atlanta", "Los Angeles", "Houston"),
)
_REGIONS: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    "US": _US,
    "FR": (
        ("Camille", "Louis", "Chloé", "Hugo", "Léa", "Jules", "Manon", "Arthur", "Inès", "Gabriel"),
        ("Martin", "Bernard", "Dubois", "Moreau", "Laurent", "Lefèvre", "Girard", "Roux"),
        ("Paris", "Lyon", "Marseille", "Bordeaux", "Lille", "Nantes", "Toulouse"),
    ),
    "GB": (
        ("Oliver", "Amelia", "George", "Isla", "Harry", "Freya", "Jack", "Poppy", "Arthur"),
        ("Smith", "Jones", "Taylor", "Brown", "Wilson", "Evans", "Walker", "Hughes"),
        ("London", "Manchester", "Bristol", "Leeds", "Edinburgh", "Glasgow"),
    ),
    "CA": (
        ("Chloe", "Benjamin", "Charlotte", "William", "Zoé", "Félix", "Emily", "Nathan"),
        ("Tremblay", "Roy", "Gagnon", "Wong", "MacDonald", "Singh", "Campbell", "Côté"),
        ("Toronto", "Montreal", "Vancouver", "Calgary", "Ottawa"),
    ),
    "AU": (
        ("Charlotte", "Oliver", "Isla", "Jack", "Matilda", "William", "Ruby", "Leo"),
        ("Smith", "Williams", "Nguyen", "Thompson", "Kelly", "White", "Martin", "Ryan"),
        ("Sydney", "Melbourne", "Brisbane", "Perth"),
    ),
    "DE": (
        ("Emma", "Noah", "Mia", "Paul", "Hannah", "Leon", "Sophie", "Felix", "Lena", "Jonas"),
        ("Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Becker", "Wagner", "Hoffmann"),
        ("Berlin", "Hamburg", "München", "Köln"),
    ),
}
_TIMEZONE_REGIONS = {
    "Europe/Paris": "FR",
    "Europe/London": "GB",
    "America/Toronto": "CA",
    "America/Vancouver": "CA",
    "Australia/Sydney": "AU",
    "Australia/Melbourne": "AU",
    "Europe/Berlin": "DE",
}


class Customer(NamedTuple):
    """A shopper; its fields are keyword arguments of the order payloads (`**customer._asdict()`)."""

    first_name: str
    last_name: str
    city: str
    email: str


def _ascii(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()


def random_customer(timezone: str, rng: random.Random) -> Customer:
    """Return a shopper with a name and city typical of the store's region."""
    first_names, last_names, cities = _REGIONS[_TIMEZONE_REGIONS.get(timezone, "US")]
    first, last = rng.choice(first_names), rng.choice(last_names)
    local = re.sub(r"[^a-z0-9.]", "", _ascii(f"{first}.{last}").lower())
    return Customer(first, last, rng.choice(cities), f"{local}{rng.randint(1, 99)}@example.com")


# ---------------------------------------------------------------------------
# Generator state


@dataclass
class _StoreState:
    target: StoreTarget
    tz: ZoneInfo
    stock: dict[int, int]
    next_number: int
    items: dict[int, CatalogItem]
    stock_updated_at: dict[int, datetime] = field(default_factory=dict)
    restock_pending: set[int] = field(default_factory=set)


@dataclass
class _Order:
    store: _StoreState
    order_id: int
    number: int
    created_at: datetime
    updated_at: datetime
    lines: list[LineSpec]
    customer: Customer
    financial_status: str = "paid"
    fulfillment_status: str | None = None
    cancelled_at: datetime | None = None
    woo_status: str = "processing"


def _utc_now() -> datetime:
    return datetime.now(UTC)


# A fresh event is a restock this often, and at a Shopify store a new cart this often;
# the rest are orders.
CART_SHARE = 0.65
RESTOCK_SHARE = 0.04


def order_share(target: StoreTarget) -> float:
    """The share of a store's fresh events that are orders."""
    return 1 - RESTOCK_SHARE - (CART_SHARE if target.is_shopify else 0)


def poisson(mean: float, rng: random.Random) -> int:
    """A count of events that come independently, `mean` of them on average."""
    # Knuth's method: fine for the small means of a store's hour or less.
    threshold, count, product = math.exp(-mean), 0, rng.random()
    while product > threshold:
        count += 1
        product *= rng.random()
    return count


class TrafficGenerator:
    """Produce the next webhook delivery of a set of simulated stores.

    Follow-up events (order updates, stock changes, redeliveries) are scheduled on the
    injected clock and released once due, so a later update always carries a later
    `updated_at` than the one before it for the same order, except for the deliberate
    out-of-order deliveries, which carry an older state with an older timestamp.
    """

    def __init__(
        self,
        stores: Sequence[StoreTarget],
        rng: random.Random,
        *,
        clock: Callable[[], datetime] = _utc_now,
        duplicate_rate: float = 0.02,
        out_of_order_rate: float = 0.02,
        cancel_rate: float = 0.05,
    ) -> None:
        if not stores:
            raise ValueError("the simulator needs at least one store")
        if any(not store.catalog for store in stores):
            raise ValueError("every simulated store needs a catalogue")
        self._rng = rng
        self._clock = clock
        self.duplicate_rate = duplicate_rate
        self.out_of_order_rate = out_of_order_rate
        self.cancel_rate = cancel_rate
        now = clock()
        # Ids continue from where an earlier run stopped as long as it used fewer than
        # 10,000 ids a second, so a restarted simulator never reuses an order id.
        self._serial = itertools.count(int((now - EPOCH).total_seconds() * 10_000))
        first_number = 1001 + int((now - EPOCH).total_seconds()) // 60
        self._stores = [self._store_state(store, first_number) for store in stores]
        self._weights = [1.0 + zlib.crc32(store.domain.encode()) % 100 / 100 for store in stores]
        self._outbox: deque[Delivery] = deque()
        self._pending: list[tuple[datetime, int, Callable[[datetime], None]]] = []
        self._sequence = itertools.count()

    def _store_state(self, target: StoreTarget, first_number: int) -> _StoreState:
        stock = {}
        for item in target.catalog:
            low = self._rng.random() < 0.3
            stock[item.stock_key] = self._rng.randint(6, 15) if low else self._rng.randint(25, 120)
        return _StoreState(
            target=target,
            tz=ZoneInfo(target.timezone),
            stock=stock,
            next_number=first_number,
            items={item.stock_key: item for item in target.catalog},
        )

    def __iter__(self) -> TrafficGenerator:
        return self

    def __next__(self) -> Delivery:
        return self.next_delivery()

    def next_delivery(self) -> Delivery:
        if not self._outbox:
            now = self._clock()
            while self._pending and self._pending[0][0] <= now:
                _, _, action = heapq.heappop(self._pending)
                action(now)
            if not self._outbox:
                self._fresh_event(now)
        return self._outbox.popleft()

    # -- scheduling

    def _schedule(
        self, now: datetime, low: float, high: float, action: Callable[[datetime], None]
    ) -> None:
        due = now + timedelta(seconds=self._rng.uniform(low, high))
        heapq.heappush(self._pending, (due, next(self._sequence), action))

    def _emit(self, delivery: Delivery, now: datetime) -> None:
        self._outbox.append(delivery)
        if self._rng.random() < self.duplicate_rate:
            self._schedule(now, 1, 15, lambda _: self._outbox.append(_redelivery(delivery)))

    def _local(self, store: _StoreState, now: datetime) -> datetime:
        return now.astimezone(store.tz).replace(microsecond=0)

    # -- fresh events

    def paced_deliveries(self, now: datetime, orders_per_second: Sequence[float], seconds: float) -> list[Delivery]:
        """The follow-ups due by `now`, and the fresh events of the last `seconds` at each
        store's pace: `orders_per_second` (one figure per store) orders, with the carts
        and restocks that go with them."""
        while self._pending and self._pending[0][0] <= now:
            _, _, action = heapq.heappop(self._pending)
            action(now)
        for store, orders in zip(self._stores, orders_per_second, strict=True):
            events = orders / order_share(store.target) * seconds
            for _ in range(poisson(events, self._rng)):
                self._fresh_event_of(store, now)
        deliveries = list(self._outbox)
        self._outbox.clear()
        return deliveries

    def _fresh_event(self, now: datetime) -> None:
        self._fresh_event_of(self._rng.choices(self._stores, weights=self._weights)[0], now)

    def _fresh_event_of(self, store: _StoreState, now: datetime) -> None:
        roll = self._rng.random()
        # About two carts for each order at a Shopify store, as most carts are abandoned
        # (WooCommerce reports no carts).
        if store.target.is_shopify and roll < CART_SHARE:
            self._create_cart(store, now)
        elif roll < 1 - RESTOCK_SHARE:
            self._create_order(store, now)
        else:
            item = self._rng.choice(store.target.catalog)
            self._restock(store, item.stock_key, now, self._rng.randint(12, 60))

    def _customer(self, store: _StoreState) -> Customer:
        return random_customer(store.target.timezone, self._rng)

    def _create_cart(self, store: _StoreState, now: datetime) -> None:
        count = self._rng.choices((1, 2, 3), weights=(60, 30, 10))[0]
        items = self._rng.sample(store.target.catalog, min(count, len(store.target.catalog)))
        lines = [
            item.line(line_id=item.variant_id, quantity=self._rng.choices((1, 2), (80, 20))[0])
            for item in items
        ]
        local = self._local(store, now)
        token = f"{self._rng.getrandbits(128):032x}"
        payload = shopify_cart(
            token=token,
            items=lines,
            created_at=local,
            updated_at=local,
            currency=store.target.currency,
        )
        self._emit(self._shopify(store, "carts/create", encode(payload), now), now)

    def _create_order(self, store: _StoreState, now: datetime) -> None:
        in_stock = [item for item in store.target.catalog if store.stock[item.stock_key] > 0]
        if not in_stock:
            item = self._rng.choice(store.target.catalog)
            self._restock(store, item.stock_key, now, self._rng.randint(24, 96))
            return
        count = self._rng.choices((1, 2, 3, 4), weights=(60, 26, 10, 4))[0]
        lines = []
        for item in self._pick_items(in_stock, count):
            wanted = self._rng.choices((1, 2, 3, 4), weights=(80, 15, 4, 1))[0]
            quantity = min(wanted, store.stock[item.stock_key])
            lines.append(item.line(line_id=self._next_line_id(store), quantity=quantity))
        local = self._local(store, now)
        order = _Order(
            store=store,
            order_id=self._next_order_id(store),
            number=store.next_number,
            created_at=local,
            updated_at=local,
            lines=lines,
            customer=self._customer(store),
        )
        store.next_number += 1
        if store.target.is_shopify:
            order.financial_status = "paid" if self._rng.random() < 0.85 else "pending"
            self._emit(self._order_delivery(order, "orders/create", now), now)
        else:
            # Bank transfers wait on-hold; WooCommerce reduces stock for both states.
            order.woo_status = "processing" if self._rng.random() < 0.85 else "on-hold"
            self._emit(self._order_delivery(order, "order.created", now), now)
        for line in lines:
            self._take_stock(store, _stock_key(line), line.quantity, now)
        self._plan_lifecycle(order, now)

    def _pick_items(self, items: list[CatalogItem], count: int) -> list[CatalogItem]:
        """Return up to `count` distinct items, cheap ones more often, as shops sell them."""
        remaining = list(items)
        chosen = []
        while remaining and len(chosen) < count:
            weights = [1 / float(item.price) for item in remaining]
            chosen.append(remaining.pop(self._rng.choices(range(len(remaining)), weights)[0]))
        return chosen

    def _next_order_id(self, store: _StoreState) -> int:
        serial = next(self._serial)
        return 5_000_000_000_000 + serial if store.target.is_shopify else serial

    def _next_line_id(self, store: _StoreState) -> int:
        serial = next(self._serial)
        return 14_000_000_000_000 + serial if store.target.is_shopify else serial

    # -- order lifecycle

    def _plan_lifecycle(self, order: _Order, now: datetime) -> None:
        if self._rng.random() < self.cancel_rate:
            self._schedule(now, 3, 30, lambda at: self._cancel(order, at))
            return
        awaiting_payment = (
            order.financial_status == "pending"
            if order.store.target.is_shopify
            else order.woo_status == "on-hold"
        )
        if awaiting_payment:
            self._schedule(now, 3, 20, lambda at: self._pay(order, at))
        elif self._rng.random() < 0.85:
            self._schedule(now, 5, 40, lambda at: self._fulfil(order, at))

    def _pay(self, order: _Order, now: datetime) -> None:
        def change(order: _Order, at: datetime) -> None:
            order.financial_status = "paid"
            order.woo_status = "processing"

        self._update_order(order, now, change)
        if self._rng.random() < 0.85:
            self._schedule(now, 5, 40, lambda at: self._fulfil(order, at))

    def _fulfil(self, order: _Order, now: datetime) -> None:
        def change(order: _Order, at: datetime) -> None:
            order.fulfillment_status = "fulfilled"
            order.woo_status = "completed"

        self._update_order(order, now, change)

    def _cancel(self, order: _Order, now: datetime) -> None:
        def change(order: _Order, at: datetime) -> None:
            order.cancelled_at = at
            order.financial_status = "refunded" if order.financial_status == "paid" else "voided"
            order.woo_status = "cancelled"

        self._update_order(order, now, change)
        # Both platforms put the stock of a cancelled order back by default.
        for line in order.lines:
            self._give_back_stock(order.store, _stock_key(line), line.quantity, now)

    def _update_order(
        self, order: _Order, now: datetime, change: Callable[[_Order, datetime], None]
    ) -> None:
        previous = order.updated_at
        # Platform timestamps have one-second resolution; two seconds between updates
        # leave room for an out-of-order update strictly between them.
        updated_at = max(self._local(order.store, now), previous + timedelta(seconds=2))
        stale = None
        if self._rng.random() < self.out_of_order_rate:
            gap = int((updated_at - previous).total_seconds())
            stale = replace(order, updated_at=previous + timedelta(seconds=gap // 2))
        change(order, updated_at)
        order.updated_at = updated_at
        topic = "orders/updated" if order.store.target.is_shopify else "order.updated"
        self._emit(self._order_delivery(order, topic, now), now)
        if stale is not None:
            older = self._order_delivery(stale, topic, stale.updated_at)
            self._schedule(now, 0.5, 5, lambda at: self._emit(older, at))

    def _order_delivery(self, order: _Order, topic: str, triggered_at: datetime) -> Delivery:
        store, customer = order.store, order.customer
        if store.target.is_shopify:
            payload = shopify_order(
                order.order_id,
                number=order.number,
                created_at=order.created_at,
                updated_at=order.updated_at,
                items=order.lines,
                currency=store.target.currency,
                financial_status=order.financial_status,
                fulfillment_status=order.fulfillment_status,
                cancelled_at=order.cancelled_at,
                **customer._asdict(),
            )
            return self._shopify(store, topic, encode(payload), triggered_at)
        payload = woo_order(
            order.order_id,
            number=order.number,
            status=order.woo_status,
            items=order.lines,
            date_created=order.created_at,
            date_modified=order.updated_at,
            currency=store.target.currency,
            **customer._asdict(),
            site_url=store.target.site_url,
        )
        return self._woo(store, topic, encode(payload))

    # -- stock

    def _take_stock(self, store: _StoreState, key: int, quantity: int, now: datetime) -> None:
        store.stock[key] = max(store.stock[key] - quantity, 0)
        self._schedule(now, 0.2, 2, lambda at: self._stock_update(store, key, at))
        if (
            store.stock[key] <= LOW_STOCK
            and key not in store.restock_pending
            and self._rng.random() < 0.35
        ):
            store.restock_pending.add(key)
            amount = self._rng.randint(24, 96)
            self._schedule(now, 20, 90, lambda at: self._restock(store, key, at, amount))

    def _give_back_stock(self, store: _StoreState, key: int, quantity: int, now: datetime) -> None:
        store.stock[key] += quantity
        self._schedule(now, 0.2, 2, lambda at: self._stock_update(store, key, at))

    def _restock(self, store: _StoreState, key: int, now: datetime, amount: int) -> None:
        store.restock_pending.discard(key)
        store.stock[key] += amount
        self._stock_update(store, key, now)

    def _stock_update(self, store: _StoreState, key: int, now: datetime) -> None:
        last = store.stock_updated_at.get(key)
        updated_at = self._local(store, now)
        if last is not None and updated_at <= last:
            updated_at = last + timedelta(seconds=1)
        store.stock_updated_at[key] = updated_at
        item = store.items[key]
        if store.target.is_shopify:
            payload = shopify_inventory_level(
                inventory_item_id=inventory_item_id(item.variant_id),
                location_id=store.target.location_id,
                available=store.stock[key],
                updated_at=updated_at,
            )
            delivery = self._shopify(store, "inventory_levels/update", encode(payload), now)
        else:
            payload = woo_product(
                item.product_id,
                name=item.title,
                sku=item.sku,
                stock_quantity=store.stock[key],
                date_modified=updated_at,
                price=item.price,
                site_url=store.target.site_url,
            )
            delivery = self._woo(store, "product.updated", encode(payload))
        self._emit(delivery, now)

    # -- envelopes

    def _uuid(self) -> str:
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    def _shopify(
        self, store: _StoreState, topic: str, body: bytes, triggered_at: datetime
    ) -> Delivery:
        headers = shopify_headers(
            shop_domain=store.target.domain,
            topic=topic,
            body=body,
            secret=store.target.webhook_secret,
            webhook_id=self._uuid(),
            event_id=self._uuid(),
            triggered_at=triggered_at,
        )
        return Delivery(store.target.path, headers, body)

    def _woo(self, store: _StoreState, topic: str, body: bytes) -> Delivery:
        headers = woo_headers(
            topic=topic,
            body=body,
            secret=store.target.webhook_secret,
            webhook_id=WOO_WEBHOOK_IDS[topic],
            source=store.target.site_url,
        )
        return Delivery(store.target.path, headers, body)


def _stock_key(line: LineSpec) -> int:
    return line.variant_id or line.product_id


def _redelivery(delivery: Delivery) -> Delivery:
    """Return the same delivery sent again, as the platform would retry it.

    Shopify resends the identical request, webhook id included. WooCommerce rebuilds
    the headers, so only its delivery id changes.
    """
    headers = dict(delivery.headers)
    if "X-WC-Webhook-Delivery-ID" in headers:
        headers["X-WC-Webhook-Delivery-ID"] = secrets.token_hex(16)
    return Delivery(delivery.path, headers, delivery.body)


# ---------------------------------------------------------------------------
# HTTP sending


@dataclass
class Stats:
    started: float
    sent: int = 0
    accepted: int = 0
    by_status: Counter[str] = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)
    responses: int = 0
    max_latency_ms: float = 0.0
    sample_size: int = 100_000
    _sampler: random.Random = field(default_factory=random.Random, repr=False)

    def record_response(self, status_code: int, latency_ms: float) -> None:
        self.by_status[str(status_code)] += 1
        if 200 <= status_code < 300:
            self.accepted += 1
        self.responses += 1
        self.max_latency_ms = max(self.max_latency_ms, latency_ms)
        # Reservoir sampling keeps percentiles honest without unbounded memory.
        if len(self.latencies_ms) < self.sample_size:
            self.latencies_ms.append(latency_ms)
        else:
            index = self._sampler.randrange(self.responses)
            if index < self.sample_size:
                self.latencies_ms[index] = latency_ms

    def record_error(self, kind: str) -> None:
        self.by_status[kind] += 1

    def percentile(self, fraction: float) -> float:
        if not self.latencies_ms:
            return 0.0
        ordered = sorted(self.latencies_ms)
        return ordered[max(math.ceil(fraction * len(ordered)) - 1, 0)]

    def summary(self, now: float, *, final: bool = False) -> str:
        elapsed = max(now - self.started, 1e-9)
        statuses = " ".join(f"{key}={count}" for key, count in sorted(self.by_status.items()))
        return (
            f"{'done' if final else 'sim '} {elapsed:7.1f}s  sent={self.sent} "
            f"accepted={self.accepted} [{statuses or '-'}] {self.sent / elapsed:.1f}/s  "
            f"ack p50={self.percentile(0.5):.1f}ms p95={self.percentile(0.95):.1f}ms "
            f"max={self.max_latency_ms:.1f}ms"
        )


class _Backoff:
    def __init__(self) -> None:
        self.failures = 0
        self.until = 0.0

    def fail(self, now: float) -> None:
        self.failures += 1
        self.until = max(self.until, now + min(0.25 * 2 ** (self.failures - 1), 2.0))

    def succeed(self) -> None:
        self.failures = 0


async def run(
    targets: Sequence[StoreTarget],
    *,
    url: str,
    rate: float = 0,
    pace: Callable[[datetime], Sequence[float]] | None = None,
    duration: float = 0,
    seed: int | None = None,
    concurrency: int = 16,
    report: Callable[[str], object] = print,
    report_every: float = 5.0,
    transport: httpx.AsyncBaseTransport | None = None,
    stop: asyncio.Event | None = None,
    handle_signals: bool = False,
) -> Stats:
    """Send generated deliveries at `rate` per second until `duration` or `stop`; or,
    with `pace` (orders per second of each target at a moment), new orders at that pace
    with the carts, updates and stock changes that go with them.

    A `duration` of 0 runs until stopped. Connection failures are counted, pause
    sending briefly and never end the run.
    """
    if rate <= 0 and pace is None:
        raise ValueError("rate must be positive")
    loop = asyncio.get_running_loop()
    stop = stop or asyncio.Event()
    generator = TrafficGenerator(targets, random.Random(seed))
    stats = Stats(started=loop.time())
    backoff = _Backoff()
    slots = asyncio.Semaphore(concurrency)
    in_flight: set[asyncio.Task[None]] = set()
    handled_signals = []
    if handle_signals:
        for signum in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(signum, stop.set)
                handled_signals.append(signum)
            except (NotImplementedError, RuntimeError):
                pass

    async def send(client: httpx.AsyncClient, delivery: Delivery) -> None:
        started = loop.time()
        try:
            response = await client.post(
                delivery.path, content=delivery.body, headers=delivery.headers
            )
        except (httpx.ConnectTimeout, httpx.NetworkError, httpx.RemoteProtocolError):
            stats.record_error("conn_error")
            backoff.fail(loop.time())
        except httpx.TimeoutException:
            stats.record_error("timeout")
        except httpx.HTTPError:
            stats.record_error("error")
        else:
            stats.record_response(response.status_code, (loop.time() - started) * 1000)
            backoff.succeed()
        finally:
            slots.release()

    async def launch(client: httpx.AsyncClient, delivery: Delivery) -> None:
        await slots.acquire()
        stats.sent += 1
        task = asyncio.create_task(send(client, delivery))
        in_flight.add(task)
        task.add_done_callback(in_flight.discard)

    async def report_periodically() -> None:
        while True:
            await asyncio.sleep(report_every)
            report(stats.summary(loop.time()))

    deadline = stats.started + duration if duration > 0 else math.inf
    async with contextlib.AsyncExitStack() as exit_stack:
        # httpx's pool scans its connections on every request, so several small pools
        # go much faster than one large pool.
        clients = []
        for first in range(0, concurrency, CONNECTIONS_PER_CLIENT):
            size = min(CONNECTIONS_PER_CLIENT, concurrency - first)
            client = httpx.AsyncClient(
                base_url=url,
                limits=httpx.Limits(max_connections=size, max_keepalive_connections=size),
                timeout=httpx.Timeout(10.0, connect=3.0),
                transport=transport,
            )
            clients.append(await exit_stack.enter_async_context(client))
        next_client = itertools.cycle(clients)
        reporter = asyncio.create_task(report_periodically())
        try:
            if pace is not None:
                await _send_paced(generator, pace, stop=stop, deadline=deadline, backoff=backoff, loop=loop,
                                  send=lambda delivery: launch(next(next_client), delivery))
            else:
                interval, next_at = 1.0 / rate, loop.time()
                while not stop.is_set():
                    now = loop.time()
                    if now >= deadline:
                        break
                    wake_at = max(next_at, backoff.until)
                    if wake_at > now:
                        await _sleep_unless(stop, min(wake_at, deadline) - now)
                        if backoff.until > next_at:
                            next_at = loop.time()
                        continue
                    await launch(next(next_client), next(generator))
                    next_at += interval
                    # Behind schedule (slow server, full slots): don't burst to catch up.
                    if loop.time() - next_at > 1.0:
                        next_at = loop.time()
            if in_flight:
                await asyncio.wait(in_flight, timeout=15)
        finally:
            reporter.cancel()
            for task in in_flight:
                task.cancel()
            for signum in handled_signals:
                loop.remove_signal_handler(signum)
    report(stats.summary(loop.time(), final=True))
    return stats


async def _send_paced(
    generator: TrafficGenerator,
    pace: Callable[[datetime], Sequence[float]],
    *,
    stop: asyncio.Event,
    deadline: float,
    backoff: _Backoff,
    loop: asyncio.AbstractEventLoop,
    send: Callable[[Delivery], Awaitable[None]],
) -> None:
    """Every PACE_TICK, send what the generator has for the time gone by at `pace`."""
    last = _utc_now()
    while not stop.is_set() and loop.time() < deadline:
        await _sleep_unless(stop, max(PACE_TICK, backoff.until - loop.time()))
        now = _utc_now()
        # After a long pause (the server was down), only the last moments' events.
        seconds = min((now - last).total_seconds(), PACE_CATCH_UP_SECONDS)
        last = now
        for delivery in generator.paced_deliveries(now, pace(now), seconds):
            await send(delivery)


async def _sleep_unless(stop: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), timeout=max(seconds, 0))
    except TimeoutError:
        pass
