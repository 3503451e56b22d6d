from __future__ import annotations

import json
import random
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from io import StringIO
from itertools import count

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.models import Sum
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from opspulse.alerts.models import Alert, AlertEvent, AlertType
from opspulse.commerce.models import NOT_COUNTED, InventoryLevel, Order
from opspulse.commerce.selectors import today_summary
from opspulse.metrics.models import Granularity, Metric, MetricName
from opspulse.metrics.selectors import local_day
from opspulse.platforms.registry import handler_for
from opspulse.sim.demo import demo_catalog, ensure_demo_data
from opspulse.sim.history import backfill_history
from opspulse.sim.simulator import StoreTarget, TrafficGenerator, inventory_item_id
from opspulse.stores.models import Store

# 14:30 in New York, 20:30 in Paris: well into both stores' day.
NOW = datetime(2025, 10, 14, 18, 30, 17, tzinfo=UTC)


def _stores() -> tuple[Store, Store]:
    shopify, woo = ensure_demo_data(stores=2)
    return shopify, woo


def _backfill(store: Store, *, now: datetime = NOW, seed: int = 3) -> int:
    return backfill_history(store, now=now, rng=random.Random(seed))


def _topic(headers: dict[str, str]) -> str:
    return headers.get("X-Shopify-Topic") or headers["X-WC-Webhook-Topic"]


def _simulated(store: Store, topic: str, *, start: datetime, wanted: int = 40) -> list[dict]:
    """Return the first `wanted` payloads of `topic` the simulator sends for `store`."""
    ticks = count()
    generator = TrafficGenerator(
        [StoreTarget.from_store(store)],
        random.Random(11),
        clock=lambda: start + timedelta(seconds=next(ticks) / 2),
    )
    payloads: list[dict] = []
    while len(payloads) < wanted:
        delivery = generator.next_delivery()
        if _topic(delivery.headers) == topic:
            payloads.append(json.loads(delivery.body))
    return payloads


@pytest.mark.django_db
def test_backfill_creates_orders_yesterday_and_today() -> None:
    for store in _stores():
        day = local_day(store, NOW)

        created = _backfill(store)

        orders = Order.objects.filter(store=store)
        assert created == orders.count()
        yesterday = orders.filter(placed_at__gte=day.yesterday_start, placed_at__lt=day.start)
        assert yesterday.count() > 40
        assert orders.filter(placed_at__gte=day.start).count() > 20
        assert not orders.filter(placed_at__lt=day.yesterday_start).exists()


@pytest.mark.django_db
def test_todays_orders_are_all_placed_no_later_than_now() -> None:
    for store in _stores():
        _backfill(store)

        latest = Order.objects.filter(store=store).latest("placed_at")
        assert latest.placed_at <= NOW
        assert not Order.objects.filter(store=store, platform_updated_at__gt=NOW).exists()


@pytest.mark.django_db
def test_day_revenue_bucket_equals_the_counted_order_totals() -> None:
    for store in _stores():
        day = local_day(store, NOW)
        _backfill(store)

        for start, end in ((day.yesterday_start, day.start), (day.start, day.end)):
            orders = Order.objects.filter(store=store, placed_at__gte=start, placed_at__lt=end)
            counted = orders.exclude(status__in=NOT_COUNTED)
            bucket = Metric.objects.get(
                store=store, name=MetricName.REVENUE, granularity=Granularity.DAY, timestamp=start
            )
            expected = counted.aggregate(total=Sum("total"))["total"]
            assert isinstance(bucket.value, Decimal)
            assert bucket.value == expected
            assert bucket.value == orders.aggregate(total=Sum("counted_revenue"))["total"]
        summary = today_summary(store, day=day)
        assert summary.yesterday_orders > 0 and summary.yesterday_revenue > 0


@pytest.mark.django_db
def test_some_orders_are_cancelled_and_not_counted() -> None:
    shopify, woo = _stores()
    for store in (shopify, woo):
        _backfill(store)

    orders = Order.objects.filter(store__in=[shopify, woo])
    cancelled = orders.filter(status__in=NOT_COUNTED)
    assert 0 < cancelled.count() < orders.count() * 0.12
    assert not cancelled.exclude(counted_revenue=0).exists()


@pytest.mark.django_db
def test_the_demos_start_up_history_fires_no_alert() -> None:
    ensure_demo_data(stores=2)
    # Rules that every seeded order and item would meet, were the history news.
    Alert.objects.filter(type=AlertType.HIGH_VALUE_ORDER).update(
        config={"threshold": "0.01", "window_minutes": 10 * 365 * 24 * 60}
    )
    Alert.objects.filter(type=AlertType.LOW_STOCK).update(config={"threshold": 1_000_000})

    # Three days of history: hundreds of orders and every item's stock, each of which the
    # rules above would fire on were it news.
    call_command("seed_demo", "--stores", "2", "--days", "3", stdout=StringIO())

    assert Order.objects.count() > 100 and InventoryLevel.objects.exists()
    assert not AlertEvent.objects.exists()


@pytest.mark.django_db
def test_running_twice_changes_nothing() -> None:
    stores = _stores()
    for store in stores:
        _backfill(store)
    before = (
        sorted(Order.objects.values_list("store_id", "external_id", "platform_updated_at")),
        sorted(Metric.objects.values_list("store_id", "name", "granularity", "timestamp", "value")),
        sorted(InventoryLevel.objects.values_list("store_id", "item_external_id", "available")),
        AlertEvent.objects.count(),
    )

    again = [_backfill(store, now=NOW + timedelta(minutes=20), seed=4) for store in stores]

    assert again == [0, 0]
    after = (
        sorted(Order.objects.values_list("store_id", "external_id", "platform_updated_at")),
        sorted(Metric.objects.values_list("store_id", "name", "granularity", "timestamp", "value")),
        sorted(InventoryLevel.objects.values_list("store_id", "item_external_id", "available")),
        AlertEvent.objects.count(),
    )
    assert after == before


@pytest.mark.django_db
def test_orders_are_busiest_at_lunch_and_in_the_evening() -> None:
    shopify, _ = _stores()
    day = local_day(shopify, NOW)
    _backfill(shopify)

    def placed_between(first_hour: int, last_hour: int) -> int:
        return Order.objects.filter(
            store=shopify,
            placed_at__gte=day.yesterday_start + timedelta(hours=first_hour),
            placed_at__lt=day.yesterday_start + timedelta(hours=last_hour),
        ).count()

    night = placed_between(1, 6)
    assert placed_between(11, 14) > 2 * night
    assert placed_between(18, 21) > 2 * night


@pytest.mark.django_db
def test_backfill_sends_few_live_notifications() -> None:
    shopify, _ = _stores()

    with CaptureQueriesContext(connection) as queries:
        created = _backfill(shopify)

    notifications = [q for q in queries.captured_queries if "pg_notify" in q["sql"]]
    assert created > 100
    assert 1 <= len(notifications) <= created // 10


@pytest.mark.django_db
def test_history_ids_and_numbers_stay_clear_of_the_simulator() -> None:
    for store in _stores():
        _backfill(store)
        history = Order.objects.filter(store=store)
        history_ids = set(history.values_list("external_id", flat=True))
        history_numbers = {int(n.lstrip("#")) for n in history.values_list("number", flat=True)}
        topic = "orders/create" if store.platform == "shopify" else "order.created"

        live = _simulated(store, topic, start=NOW, wanted=60)

        assert live
        assert not {str(payload["id"]) for payload in live} & history_ids
        live_numbers = {int(payload.get("order_number") or payload["number"]) for payload in live}
        assert min(live_numbers) > max(history_numbers)


@pytest.mark.django_db
def test_shopify_inventory_levels_carry_catalogue_titles() -> None:
    shopify, _ = _stores()
    location = str(StoreTarget.from_store(shopify).location_id)

    _backfill(shopify)

    levels = {
        level.item_external_id: level
        for level in InventoryLevel.objects.filter(store=shopify, location_external_id=location)
    }
    catalog = demo_catalog(shopify)
    assert len(levels) == len(catalog) == InventoryLevel.objects.filter(store=shopify).count()
    for item in catalog:
        level = levels[str(inventory_item_id(item.variant_id))]
        assert (level.title, level.sku) == (item.title, item.sku)
        assert level.available >= 0


@pytest.mark.django_db
def test_simulated_inventory_update_without_title_keeps_the_title() -> None:
    shopify, _ = _stores()
    _backfill(shopify)
    levels = InventoryLevel.objects.filter(store=shopify)
    titles = dict(levels.values_list("item_external_id", "title"))

    updates = _simulated(shopify, "inventory_levels/update", start=NOW)
    assert updates and all("title" not in payload for payload in updates)
    handle = handler_for(shopify.platform, "inventory_levels/update")
    for payload in updates:
        handle(shopify, payload)

    last = {str(payload["inventory_item_id"]): payload["available"] for payload in updates}
    assert dict(levels.values_list("item_external_id", "title")) == titles
    for item_id, available in last.items():
        assert levels.get(item_external_id=item_id).available == available


@pytest.mark.django_db
def test_woocommerce_inventory_levels_are_keyed_by_product() -> None:
    _, woo = _stores()

    _backfill(woo)

    levels = InventoryLevel.objects.filter(store=woo)
    expected = {(str(item.product_id), "", item.title, item.sku) for item in demo_catalog(woo)}
    keys = levels.values_list("item_external_id", "location_external_id", "title", "sku")
    assert set(keys) == expected
    updates = _simulated(woo, "product.updated", start=NOW)
    assert updates
    handle = handler_for(woo.platform, "product.updated")
    for payload in updates:
        handle(woo, payload)
    assert levels.count() == len(expected)


@pytest.mark.django_db
def test_backfill_follows_a_daylight_saving_change() -> None:
    shopify, _ = _stores()
    # New York fell back on 2 November 2025: yesterday had 25 hours.
    now = datetime(2025, 11, 3, 15, 0, tzinfo=UTC)
    day = local_day(shopify, now)
    assert day.start.timestamp() - day.yesterday_start.timestamp() == 25 * 3600

    _backfill(shopify, now=now)

    buckets = Metric.objects.filter(
        store=shopify, name=MetricName.REVENUE, granularity=Granularity.DAY
    ).values_list("timestamp", "value")
    counted = Order.objects.filter(store=shopify).exclude(status__in=NOT_COUNTED)
    assert sum(value for _, value in buckets) == counted.aggregate(total=Sum("total"))["total"]
    assert {timestamp for timestamp, _ in buckets} == {day.yesterday_start, day.start}


@pytest.mark.django_db
def test_seed_demo_backfills_once_and_can_skip_history() -> None:
    out = StringIO()

    call_command("seed_demo", "--stores", "2", "--no-history", stdout=out)
    assert not Order.objects.exists()
    call_command("seed_demo", "--stores", "2", "--days", "2", stdout=out)
    orders = Order.objects.count()
    call_command("seed_demo", "--stores", "2", "--days", "2", stdout=out)

    assert orders > 0
    assert Order.objects.count() == orders
    assert out.getvalue().count("backfilled") == 2


@pytest.mark.django_db
def test_eight_days_of_history_give_the_same_weekday_last_week_its_orders() -> None:
    _, store = _stores()
    backfill_history(store, now=NOW, rng=random.Random(5), days=8)

    day = local_day(store, NOW)
    week_ago = day.start - timedelta(days=7)
    orders = Order.objects.filter(store=store)
    assert orders.filter(placed_at__gte=week_ago, placed_at__lt=week_ago + timedelta(days=1)).count() > 40
    assert not orders.filter(placed_at__lt=week_ago).exists()
    summary = today_summary(store, day=day)
    assert summary.last_week_orders > 0 and summary.last_week_revenue > 0


@pytest.mark.django_db
def test_a_shopify_store_gets_about_two_carts_an_order_and_a_woocommerce_store_none() -> None:
    from opspulse.commerce.models import Cart

    shopify, woo = _stores()
    for store in (shopify, woo):
        _backfill(store)

    orders = Order.objects.filter(store=shopify).count()
    carts = Cart.objects.filter(store=shopify)
    assert 1.6 * orders < carts.count() < 2.8 * orders
    day = local_day(shopify, NOW)
    assert carts.filter(platform_created_at__lt=day.yesterday_start).count() == 0
    assert carts.filter(platform_created_at__gt=NOW).count() == 0
    summary = today_summary(shopify, day=day)
    assert Decimal("0.3") < summary.today.orders_per_cart < Decimal("0.7")
    assert not Cart.objects.filter(store=woo).exists()


@pytest.mark.django_db
def test_a_demo_store_compares_with_its_seeded_days_and_a_store_without_history_says_it_has_not_enough(
    client,
) -> None:
    from django.urls import reverse

    from opspulse.accounts.models import User
    from opspulse.sim.demo import DEMO_EMAIL

    new, seeded = _stores()
    # Two weeks: the 7 days to today, and exactly the 7 before them.
    backfill_history(seeded, now=timezone.now(), rng=random.Random(5), days=14)
    client.force_login(User.objects.get(email=DEMO_EMAIL))

    seeded_page = client.get(reverse("dashboard", args=[seeded.public_id])).content.decode()
    new_page = client.get(reverse("dashboard", args=[new.public_id])).content.decode()

    assert "not enough history yet" not in seeded_page.lower()
    assert re.search(r"Previous period \([^)]*\)</dt><dd[^>]*>[^<]*[1-9]", seeded_page)
    assert re.search(r"Previous period \([^)]*\)</dt><dd[^>]*><span[^>]*>Not enough history yet</span>", new_page)
    assert "Yesterday: not enough history yet" in new_page
