"""Past orders for a demo store, so the dashboard opens on a real day.

By default yesterday's and today's; the demo asks for two weeks more, so that the
daily chart's week and the comparison with the same weekday last week have earlier
days to compare with. The store's history then starts at the first of those days.
Orders come at each store's own pace through the day (`expected_order_rate`), which
the demo's simulator keeps up afterwards.

The orders go through the platforms' own topic handlers, exactly like live webhooks,
so they are normalised and counted in the metric buckets the same way; applied as an
import, they fire no alert. Shopify stores also get their carts: the one each order
was checked out from, and the abandoned ones (1.2 per order on average). The store's
inventory levels are created as a catalogue sync would, with product titles, so the
simulator's later inventory_levels/update webhooks (which name no product) update
named items.
"""

from __future__ import annotations

import random
import zlib
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.db import transaction

from opspulse.commerce import actions
from opspulse.commerce.models import Order
from opspulse.lib.broadcast import batch
from opspulse.metrics.buckets import bucket_start, day_bounds
from opspulse.metrics.models import Granularity
from opspulse.platforms.registry import parser_for
from opspulse.sim import payloads
from opspulse.sim.demo import CatalogItem, demo_catalog
from opspulse.sim.simulator import EPOCH, StoreTarget, inventory_item_id, poisson, random_customer
from opspulse.stores import actions as stores
from opspulse.stores.models import Platform, Store

# Share of a store's peak hourly order rate at each local hour: a quiet night, a
# morning climb, a lunch peak, an afternoon lull and the evening peak.
HOURLY_SHAPE = (
    0.22, 0.13, 0.08, 0.06, 0.06, 0.1, 0.2, 0.36,
    0.52, 0.64, 0.76, 0.9, 1.0, 0.92, 0.74, 0.66,
    0.68, 0.76, 0.88, 0.97, 1.0, 0.84, 0.6, 0.38,
)
# Orders per hour at a store's busiest hours, by store: its history is made at this pace,
# and the demo's simulator keeps it (`expected_order_rate`), so today compares with
# yesterday as a real store's day would.
MIN_PEAK_RATE = 40.0
MAX_PEAK_RATE = 90.0
CANCEL_RATE = 0.05
# Carts left without an order, per order (most carts are abandoned).
ABANDONED_CARTS_PER_ORDER = 1.2

# The simulator's ids are these bases plus tenths of milliseconds since EPOCH, and its
# order numbers start at 1001 plus the minutes since EPOCH. History ids sit below the
# simulator's Shopify bases and far above any WooCommerce id it will reach, and history
# numbers end below the number a simulator started at yesterday's midnight would begin at.
SHOPIFY_ORDER_BASE = 4_000_000_000_000
SHOPIFY_LINE_BASE = 13_000_000_000_000
WOO_ORDER_BASE = 100_000_000_000_000


def peak_order_rate(domain: str) -> float:
    """Orders per hour at the store's busiest hours."""
    fraction = zlib.crc32(f"opspulse-history:{domain}".encode()) % 1000 / 999
    return MIN_PEAK_RATE + (MAX_PEAK_RATE - MIN_PEAK_RATE) * fraction


def expected_order_rate(domain: str, timezone: str, at: datetime) -> float:
    """Orders per hour the store takes around `at`: its local hour's share of its peak."""
    return peak_order_rate(domain) * HOURLY_SHAPE[at.astimezone(ZoneInfo(timezone)).hour]


def backfill_history(store: Store, *, now: datetime, rng: random.Random, days: int = 2) -> int:
    """Create the store's orders from local midnight `days - 1` days ago up to `now`.

    Return how many orders were created: none if the store already has an order placed
    before today, so running it again changes nothing.
    """
    tz = ZoneInfo(store.timezone)
    today = bucket_start(now, Granularity.DAY, store.timezone)
    yesterday = today
    for _ in range(days - 1):  # local days: 23 or 25 hours long across a DST change
        yesterday = bucket_start(yesterday - timedelta(hours=1), Granularity.DAY, store.timezone)
    catalog = demo_catalog(store)
    with transaction.atomic(), batch():
        # Two seeders started together must not both fill the same store.
        Store.objects.select_for_update().filter(pk=store.pk).first()
        if Order.objects.filter(store=store, placed_at__lt=today).exists():
            return 0
        target = StoreTarget(
            platform=store.platform,
            domain=store.domain,
            webhook_secret="",
            timezone=store.timezone,
            currency=store.currency,
        )
        _sync_catalog(target, catalog, store=store, at=yesterday, rng=rng)
        times = _order_times(store, start=yesterday, today=today, now=now, rng=rng)
        first_number = max(1001 + _minutes_since_epoch(yesterday) - len(times), 1001)
        topic = "orders/create" if store.platform == Platform.SHOPIFY else "order.created"
        parse = parser_for(store.platform, topic)
        records = [
            parse(
                _order_payload(
                    target,
                    catalog,
                    placed_at=placed_at.astimezone(tz),
                    number=first_number + index,
                    now=now.astimezone(tz).replace(microsecond=0),
                    rng=rng,
                )
            )
            for index, placed_at in enumerate(times)
        ]
        if target.is_shopify:
            parse_cart = parser_for(store.platform, "carts/create")
            records += [
                parse_cart(cart)
                for cart in _cart_payloads(target, catalog, times, start=yesterday, now=now, rng=rng)
            ]
        actions.apply_records(store=store, records=records, imported=True)
        # As after a platform's import: the dashboard compares with the days created here.
        stores.extend_history(store=store, since=yesterday)
    return len(times)


def _cart_payloads(
    target: StoreTarget,
    catalog: list[CatalogItem],
    order_times: list[datetime],
    *,
    start: datetime,
    now: datetime,
    rng: random.Random,
) -> list[dict[str, Any]]:
    """Each order's cart, opened minutes before it, and the abandoned carts around it."""
    tz = ZoneInfo(target.timezone)
    opened = []
    for placed_at in order_times:
        opened.append(placed_at - timedelta(minutes=rng.uniform(2, 25)))
        for _ in range(poisson(ABANDONED_CARTS_PER_ORDER, rng)):
            opened.append(placed_at + timedelta(minutes=rng.uniform(-60, 60)))
    carts = []
    for at in sorted(opened):
        if not start <= at <= now:
            continue
        local = at.astimezone(tz).replace(microsecond=0)
        items = _pick_items(catalog, rng)
        carts.append(
            payloads.shopify_cart(
                token=f"{rng.getrandbits(128):032x}",
                items=[item.line(line_id=item.variant_id, quantity=1) for item in items],
                created_at=local,
                updated_at=local,
                currency=target.currency,
            )
        )
    return carts


def _sync_catalog(
    target: StoreTarget,
    catalog: list[CatalogItem],
    *,
    store: Store,
    at: datetime,
    rng: random.Random,
) -> None:
    """Record every catalogue item's stock under the key its stock webhooks will use."""
    location = str(target.location_id) if target.is_shopify else ""
    levels = []
    for item in catalog:
        if target.is_shopify:
            item_id = str(inventory_item_id(item.variant_id))
        else:
            item_id = str(item.product_id)
        roll = rng.random()
        if roll < 0.1:
            available = rng.randint(1, 5)
        elif roll < 0.35:
            available = rng.randint(6, 15)
        else:
            available = rng.randint(25, 120)
        levels.append(
            actions.StockData(
                item_external_id=item_id,
                location_external_id=location,
                available=available,
                updated_at=at,
                sku=item.sku,
                title=item.title,
            )
        )
    actions.apply_records(store=store, records=levels, imported=True)


def _order_times(
    store: Store, *, start: datetime, today: datetime, now: datetime, rng: random.Random
) -> list[datetime]:
    """Return distinct whole-second order times in [start, now], following HOURLY_SHAPE."""
    tz = ZoneInfo(store.timezone)
    peak = peak_order_rate(store.domain)
    day_starts = [start]
    while day_starts[-1] < today:
        day_starts.append(day_bounds(day_starts[-1])[1])
    day_levels = {day: rng.uniform(0.85, 1.15) for day in day_starts}
    seconds: set[int] = set()
    # Stepping in UTC hours keeps every local hour exactly once across a DST change.
    slot = start.astimezone(UTC)
    while slot < now:
        end = min(slot + timedelta(hours=1), now)
        local = slot.astimezone(tz)
        level = day_levels[bucket_start(slot, Granularity.DAY, store.timezone)]
        rate = peak * HOURLY_SHAPE[local.hour] * level * rng.uniform(0.75, 1.25)
        width = (end - slot).total_seconds()
        for _ in range(poisson(rate * width / 3600, rng)):
            seconds.add(int(slot.timestamp() + rng.uniform(0, width)))
        slot = end
    return [datetime.fromtimestamp(second, tz) for second in sorted(seconds)]


def _minutes_since_epoch(at: datetime) -> int:
    return int((at - EPOCH).total_seconds()) // 60


def _pick_items(catalog: list[CatalogItem], rng: random.Random) -> list[CatalogItem]:
    """Return 1–4 distinct items, cheap ones more often, as the simulator sells them."""
    count = rng.choices((1, 2, 3, 4), weights=(60, 26, 10, 4))[0]
    remaining = list(catalog)
    chosen = []
    while remaining and len(chosen) < count:
        weights = [1 / float(item.price) for item in remaining]
        chosen.append(remaining.pop(rng.choices(range(len(remaining)), weights)[0]))
    return chosen


def _order_payload(
    target: StoreTarget,
    catalog: list[CatalogItem],
    *,
    placed_at: datetime,
    number: int,
    now: datetime,
    rng: random.Random,
) -> dict[str, Any]:
    """Return the order as the platform would report it now: cancelled, fulfilled or paid."""
    serial = int((placed_at - EPOCH).total_seconds())
    shopify = target.is_shopify
    order_id = (SHOPIFY_ORDER_BASE if shopify else WOO_ORDER_BASE) + serial
    lines = [
        item.line(
            line_id=(SHOPIFY_LINE_BASE + serial * 10 if shopify else order_id * 10) + index,
            quantity=rng.choices((1, 2, 3, 4), weights=(80, 15, 4, 1))[0],
        )
        for index, item in enumerate(_pick_items(catalog, rng))
    ]
    customer = random_customer(target.timezone, rng)
    cancelled_at = None
    fulfilled = False
    updated_at = placed_at
    if rng.random() < CANCEL_RATE:
        cancel_at = (placed_at + timedelta(minutes=rng.uniform(3, 90))).replace(microsecond=0)
        cancelled_at = updated_at = min(cancel_at, now)
    else:
        fulfil_at = (placed_at + timedelta(hours=rng.uniform(1, 8))).replace(microsecond=0)
        if fulfil_at <= now and rng.random() < 0.95:
            fulfilled, updated_at = True, fulfil_at
    customer_fields = customer._asdict()
    if shopify:
        return payloads.shopify_order(
            order_id,
            number=number,
            created_at=placed_at,
            updated_at=updated_at,
            items=lines,
            currency=target.currency,
            financial_status="refunded" if cancelled_at else "paid",
            fulfillment_status="fulfilled" if fulfilled else None,
            cancelled_at=cancelled_at,
            **customer_fields,
        )
    status = "cancelled" if cancelled_at else "completed" if fulfilled else "processing"
    return payloads.woo_order(
        order_id,
        number=number,
        status=status,
        items=lines,
        date_created=placed_at,
        date_modified=updated_at,
        currency=target.currency,
        site_url=target.site_url,
        **customer_fields,
    )
