from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import random
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from io import StringIO

import httpx
import pytest
from django.core.management import call_command

from opspulse.accounts.models import Account, Membership, Role, User
from opspulse.alerts.models import Alert
from opspulse.sim.demo import (
    DEMO_ACCOUNT_NAME,
    DEMO_EMAIL,
    DEMO_PASSWORD,
    catalog_for,
    demo_catalog,
    ensure_demo_data,
)
from opspulse.sim.simulator import (
    INVENTORY_ITEM_OFFSET,
    Delivery,
    StoreTarget,
    TrafficGenerator,
    run,
)
from opspulse.stores.models import Integration, Store

SHOPIFY_SECRET = "shopify-test-secret"
WOO_SECRET = "woo-test-secret"


class FakeClock:
    """Advance by `step` seconds each time the generator reads the time."""

    def __init__(self, step: float = 0.5) -> None:
        self.now = datetime(2025, 10, 14, 14, 0, tzinfo=UTC)
        self.step = timedelta(seconds=step)

    def __call__(self) -> datetime:
        self.now += self.step
        return self.now


def _targets() -> list[StoreTarget]:
    shopify = StoreTarget(
        platform="shopify",
        domain="demo-1.myshopify.com",
        webhook_secret=SHOPIFY_SECRET,
        timezone="America/New_York",
        currency="USD",
        catalog=tuple(
            catalog_for(
                platform="shopify",
                domain="demo-1.myshopify.com",
                currency="USD",
                store_name="Northwind Outfitters",
            )
        ),
    )
    woo = StoreTarget(
        platform="woocommerce",
        domain="woo-2.example.com",
        webhook_secret=WOO_SECRET,
        timezone="Europe/Paris",
        currency="EUR",
        catalog=tuple(
            catalog_for(
                platform="woocommerce",
                domain="woo-2.example.com",
                currency="EUR",
                store_name="Atelier Lumière",
            )
        ),
        ingest_token="tok-woo-2",
    )
    return [shopify, woo]


def _generate(count: int, *, seed: int = 7, **rates: float) -> list[Delivery]:
    generator = TrafficGenerator(_targets(), random.Random(seed), clock=FakeClock(), **rates)
    return [generator.next_delivery() for _ in range(count)]


def _topic(delivery: Delivery) -> str:
    return delivery.headers.get("X-Shopify-Topic") or delivery.headers["X-WC-Webhook-Topic"]


def _is_order(delivery: Delivery) -> bool:
    return _topic(delivery) in {"orders/create", "orders/updated", "order.created", "order.updated"}


def _order_key_and_time(delivery: Delivery) -> tuple[tuple[str, int], datetime]:
    payload = json.loads(delivery.body)
    if "X-Shopify-Topic" in delivery.headers:
        return ("shopify", payload["id"]), datetime.fromisoformat(payload["updated_at"])
    modified = datetime.fromisoformat(payload["date_modified_gmt"]).replace(tzinfo=UTC)
    return ("woocommerce", payload["id"]), modified


def _signature(body: bytes, secret: str) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def test_generator_signs_every_delivery_with_the_store_secret() -> None:
    deliveries = _generate(600)

    for delivery in deliveries:
        headers = delivery.headers
        if "X-Shopify-Topic" in headers:
            assert headers["X-Shopify-Hmac-Sha256"] == _signature(delivery.body, SHOPIFY_SECRET)
        else:
            assert headers["X-WC-Webhook-Signature"] == _signature(delivery.body, WOO_SECRET)


def test_deliveries_are_addressed_by_platform() -> None:
    deliveries = _generate(300)

    shopify = [d for d in deliveries if "X-Shopify-Topic" in d.headers]
    woo = [d for d in deliveries if "X-WC-Webhook-Topic" in d.headers]
    assert shopify and woo
    assert {d.path for d in shopify} == {"/webhooks/shopify"}
    assert {d.headers["X-Shopify-Shop-Domain"] for d in shopify} == {"demo-1.myshopify.com"}
    assert {d.path for d in woo} == {"/webhooks/woocommerce/tok-woo-2"}
    assert {d.headers["X-WC-Webhook-Source"] for d in woo} == {"https://woo-2.example.com/"}


def test_traffic_covers_every_topic_and_woo_sends_no_carts() -> None:
    deliveries = _generate(1500)

    topics = Counter(_topic(d) for d in deliveries)
    assert set(topics) == {
        "orders/create",
        "orders/updated",
        "inventory_levels/update",
        "carts/create",
        "order.created",
        "order.updated",
        "product.updated",
    }
    assert all(d.path == "/webhooks/shopify" for d in deliveries if _topic(d) == "carts/create")


def test_updated_at_increases_per_order_without_out_of_order_deliveries() -> None:
    deliveries = _generate(1500, duplicate_rate=0, out_of_order_rate=0)

    timelines: dict[tuple[str, int], list[datetime]] = defaultdict(list)
    for delivery in filter(_is_order, deliveries):
        key, updated_at = _order_key_and_time(delivery)
        timelines[key].append(updated_at)

    updated_more_than_once = [times for times in timelines.values() if len(times) >= 3]
    assert updated_more_than_once
    for times in timelines.values():
        assert times == sorted(times) and len(set(times)) == len(times)


def test_out_of_order_update_carries_the_older_state_and_time() -> None:
    deliveries = _generate(800, duplicate_rate=0, out_of_order_rate=1.0)

    latest: dict[tuple[str, int], datetime] = {}
    seen: dict[tuple[str, int], set[datetime]] = defaultdict(set)
    stale = []
    for delivery in filter(_is_order, deliveries):
        key, updated_at = _order_key_and_time(delivery)
        assert updated_at not in seen[key]
        seen[key].add(updated_at)
        if key in latest and updated_at < latest[key]:
            stale.append(delivery)
        latest[key] = max(latest.get(key, updated_at), updated_at)
    assert stale
    assert all(_topic(d) in {"orders/updated", "order.updated"} for d in stale)


def test_shopify_duplicates_reuse_webhook_id_and_body() -> None:
    deliveries = _generate(600, duplicate_rate=1.0, out_of_order_rate=0)

    by_webhook_id: dict[str, list[Delivery]] = defaultdict(list)
    for delivery in deliveries:
        if "X-Shopify-Webhook-Id" in delivery.headers:
            by_webhook_id[delivery.headers["X-Shopify-Webhook-Id"]].append(delivery)

    repeated = [group for group in by_webhook_id.values() if len(group) > 1]
    assert repeated
    for group in repeated:
        assert len(group) == 2
        assert group[0].body == group[1].body
        assert group[0].headers == group[1].headers


def test_woo_duplicates_resend_the_body_with_a_new_delivery_id() -> None:
    deliveries = _generate(600, duplicate_rate=1.0, out_of_order_rate=0)

    by_body: dict[bytes, list[Delivery]] = defaultdict(list)
    for delivery in deliveries:
        if "X-WC-Webhook-Topic" in delivery.headers:
            by_body[delivery.body].append(delivery)

    repeated = [group for group in by_body.values() if len(group) > 1]
    assert repeated
    for first, second in repeated:
        delivery_ids = {d.headers["X-WC-Webhook-Delivery-ID"] for d in (first, second)}
        assert len(delivery_ids) == 2
        assert first.headers["X-WC-Webhook-ID"] == second.headers["X-WC-Webhook-ID"]
        assert first.headers["X-WC-Webhook-Signature"] == second.headers["X-WC-Webhook-Signature"]


def test_default_mix_has_few_duplicates() -> None:
    deliveries = _generate(5000)

    shopify_ids = Counter(
        d.headers["X-Shopify-Webhook-Id"] for d in deliveries if "X-Shopify-Webhook-Id" in d.headers
    )
    repeats = sum(count - 1 for count in shopify_ids.values())
    shopify_total = sum(shopify_ids.values())
    assert 0.005 * shopify_total < repeats < 0.05 * shopify_total


def test_cancellations_are_sent_on_both_platforms() -> None:
    deliveries = _generate(800, duplicate_rate=0, out_of_order_rate=0, cancel_rate=1.0)

    cancelled_shopify = [
        json.loads(d.body)
        for d in deliveries
        if _topic(d) == "orders/updated" and json.loads(d.body)["cancelled_at"]
    ]
    cancelled_woo = [
        json.loads(d.body)
        for d in deliveries
        if _topic(d) == "order.updated" and json.loads(d.body)["status"] == "cancelled"
    ]
    assert cancelled_shopify and cancelled_woo
    assert all(order["financial_status"] in {"refunded", "voided"} for order in cancelled_shopify)
    assert all(order["cancel_reason"] == "customer" for order in cancelled_shopify)


def test_inventory_updates_follow_orders_with_offset_item_ids() -> None:
    targets = _targets()
    variants = {item.variant_id for item in targets[0].catalog}
    deliveries = _generate(1500)

    levels = [json.loads(d.body) for d in deliveries if _topic(d) == "inventory_levels/update"]
    products = [json.loads(d.body) for d in deliveries if _topic(d) == "product.updated"]
    assert levels and products
    assert {level["inventory_item_id"] - INVENTORY_ITEM_OFFSET for level in levels} <= variants
    assert all(level["available"] >= 0 for level in levels)
    assert all(product["stock_quantity"] >= 0 for product in products)
    assert any(level["available"] <= 5 for level in levels)


def test_generated_order_totals_equal_sum_of_lines() -> None:
    deliveries = [d for d in _generate(600) if _is_order(d)]

    for delivery in deliveries:
        payload = json.loads(delivery.body)
        if "total_price" in payload:
            lines = sum(Decimal(line["price"]) * line["quantity"] for line in payload["line_items"])
            assert Decimal(payload["total_price"]) == lines
        else:
            lines = sum(Decimal(line["total"]) for line in payload["line_items"])
            assert Decimal(payload["total"]) == lines


def test_same_seed_gives_the_same_traffic() -> None:
    first = _generate(400, seed=42)
    second = _generate(400, seed=42)

    assert [d.body for d in first] == [d.body for d in second]
    assert [d.headers.get("X-Shopify-Webhook-Id") for d in first] == [
        d.headers.get("X-Shopify-Webhook-Id") for d in second
    ]


def _run(handler, **options) -> tuple:
    lines: list[str] = []
    stats = asyncio.run(
        run(
            _targets(),
            url="http://ingest.test",
            transport=httpx.MockTransport(handler),
            report=lines.append,
            **options,
        )
    )
    return stats, lines


def test_run_counts_statuses_and_acknowledgement_latency() -> None:
    calls = Counter()

    def handler(request: httpx.Request) -> httpx.Response:
        calls["n"] += 1
        return httpx.Response(500 if calls["n"] % 10 == 0 else 200)

    stats, lines = _run(handler, rate=200, duration=0.5, seed=1)

    assert stats.sent == sum(stats.by_status.values()) == calls["n"]
    assert stats.sent > 20
    assert stats.accepted == stats.by_status["200"]
    assert stats.by_status["500"] == calls["n"] // 10
    assert stats.max_latency_ms >= stats.percentile(0.95) >= stats.percentile(0.5) >= 0
    assert lines[-1].startswith("done") and f"sent={stats.sent}" in lines[-1]


def test_run_survives_a_server_that_is_down() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    stats, lines = _run(handler, rate=100, duration=0.6, seed=1)

    assert stats.sent >= 1
    assert stats.by_status["conn_error"] == stats.sent
    assert stats.accepted == 0
    # The backoff holds sending well below the requested 60 deliveries.
    assert stats.sent < 30
    assert "conn_error=" in lines[-1]


def test_run_with_no_duration_stops_on_request() -> None:
    async def scenario():
        stop = asyncio.Event()
        asyncio.get_running_loop().call_later(0.3, stop.set)
        return await run(
            _targets(),
            url="http://ingest.test",
            rate=50,
            duration=0,
            transport=httpx.MockTransport(lambda request: httpx.Response(200)),
            report=lambda line: None,
            stop=stop,
        )

    stats = asyncio.run(asyncio.wait_for(scenario(), timeout=5))

    assert 0 < stats.sent == stats.accepted


def test_catalog_is_deterministic_and_plausible() -> None:
    store = {
        "platform": "shopify",
        "domain": "demo-3.myshopify.com",
        "currency": "GBP",
        "store_name": "Harbour & Pine",
    }

    first = catalog_for(**store)
    second = catalog_for(**store)

    assert first == second
    assert 10 <= len(first) <= 20
    assert len({item.stock_key for item in first}) == len(first)
    assert all(item.price > 0 for item in first)
    assert all(item.price.as_tuple().exponent == -2 for item in first)


@pytest.mark.django_db
def test_seed_demo_is_idempotent() -> None:
    out = StringIO()

    call_command("seed_demo", "--stores", "4", "--days", "2", stdout=out)
    secrets_before = {i.store_id: i.webhook_secret for i in Integration.objects.all()}
    call_command("seed_demo", "--stores", "4", "--days", "2", stdout=out)

    user = User.objects.get(email=DEMO_EMAIL)
    assert user.check_password(DEMO_PASSWORD)
    account = Account.objects.get(name=DEMO_ACCOUNT_NAME)
    assert account.plan == "pro"
    assert Membership.objects.get(account=account).role == Role.OWNER
    stores = list(Store.objects.filter(account=account).order_by("domain"))
    assert [(s.platform, s.domain) for s in stores] == [
        ("shopify", "demo-1.myshopify.com"),
        ("shopify", "demo-3.myshopify.com"),
        ("woocommerce", "woo-2.example.com"),
        ("woocommerce", "woo-4.example.com"),
    ]
    assert {i.store_id: i.webhook_secret for i in Integration.objects.all()} == secrets_before
    assert all(secrets_before.values()) and len(secrets_before) == 4
    alerts = Alert.objects.filter(store=stores[0])
    assert sorted((alert.type, alert.config["threshold"]) for alert in alerts) == [
        ("high_value_order", "400.00"),
        ("low_stock", 5),
    ]
    assert Alert.objects.count() == 8
    assert DEMO_EMAIL in out.getvalue() and DEMO_PASSWORD in out.getvalue()


@pytest.mark.django_db
def test_more_stores_extend_the_demo_account() -> None:
    ensure_demo_data(stores=2)

    stores = ensure_demo_data(stores=5)

    assert [s.domain for s in stores] == [
        "demo-1.myshopify.com",
        "woo-2.example.com",
        "demo-3.myshopify.com",
        "woo-4.example.com",
        "demo-5.myshopify.com",
    ]
    assert Account.objects.filter(name=DEMO_ACCOUNT_NAME).count() == 1
    assert {s.timezone for s in stores} >= {"America/New_York", "Europe/Paris"}


@pytest.mark.django_db
def test_store_target_reads_the_integration_secret() -> None:
    shopify, woo = ensure_demo_data(stores=2)

    target = StoreTarget.from_store(woo)

    assert target.webhook_secret == Integration.objects.get(store=woo).webhook_secret
    assert target.path == f"/webhooks/woocommerce/{woo.ingest_token}"
    assert target.catalog == tuple(demo_catalog(woo))
    assert StoreTarget.from_store(shopify).path == "/webhooks/shopify"


def test_paced_traffic_gives_each_store_its_orders_per_hour_with_the_carts_that_go_with_them() -> None:
    generator = TrafficGenerator(_targets(), random.Random(3), clock=FakeClock())
    start = datetime(2025, 10, 14, 14, 0, tzinfo=UTC)
    per_hour = [60.0, 20.0]  # the Shopify store's orders, the WooCommerce store's
    deliveries = []
    for tick in range(1, 4 * 3600 + 1):  # four hours, a second at a time
        now = start + timedelta(seconds=tick)
        deliveries += generator.paced_deliveries(now, [rate / 3600 for rate in per_hour], 1.0)

    created = Counter(
        delivery.path.split("/")[2] for delivery in deliveries if _topic(delivery) in ("orders/create", "order.created")
    )
    carts = sum(1 for delivery in deliveries if _topic(delivery) == "carts/create")
    # Poisson counts: within four standard deviations of 240 and 80.
    assert abs(created["shopify"] - 240) < 4 * 240**0.5, created
    assert abs(created["woocommerce"] - 80) < 4 * 80**0.5, created
    assert 1.6 < carts / created["shopify"] < 2.6
    # Their payments, fulfilments and stock changes follow, as in a run at a fixed rate.
    assert {"orders/updated", "inventory_levels/update", "order.updated"} <= {_topic(d) for d in deliveries}


def test_a_paced_run_sends_at_the_pace_it_is_given() -> None:
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        return httpx.Response(200)

    # Far above a real store's pace, to count within a second: 40 orders a second at the
    # WooCommerce store, none at the Shopify one.
    stats, _ = _run(handler, pace=lambda at: [0.0, 40.0], duration=1.0, seed=2)

    assert stats.sent == len(seen) > 10
    assert all(path.startswith("/webhooks/woocommerce/") for path in seen)


def test_the_demos_history_pace_is_its_stores_seeded_pace_at_each_local_hour() -> None:
    from opspulse.sim.history import HOURLY_SHAPE, peak_order_rate
    from opspulse.sim.management.commands.simulate import history_pace

    shopify, woo = _targets()
    at = datetime(2025, 10, 14, 18, 30, tzinfo=UTC)  # 14:30 in New York, 20:30 in Paris

    shopify_pace, woo_pace = history_pace([shopify, woo])(at)

    assert shopify_pace == pytest.approx(peak_order_rate(shopify.domain) * HOURLY_SHAPE[14] / 3600)
    assert woo_pace == pytest.approx(peak_order_rate(woo.domain) * HOURLY_SHAPE[20] / 3600)
