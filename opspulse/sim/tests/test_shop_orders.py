"""The demo's stand-in shop takes new orders as often as its history did."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import timedelta
from statistics import mean

import httpx
import pytest

from opspulse.sim.fake_shopify.app import ServerThread, create_app
from opspulse.sim.fake_shopify.state import AppSettings
from opspulse.sim.shop_orders import ShopOrders, orders_per_hour


@pytest.fixture(scope="module")
def fake() -> Iterator[str]:
    settings = AppSettings(client_id="demo-app", client_secret="shpss_demo", redirect_prefix="http://127.0.0.1:8000/")
    with ServerThread(create_app(settings)) as server:
        yield server.url


def new_shop(fake: str, domain: str, **fields) -> None:
    body = {"domain": domain, "name": "Lighthouse Supply", "seed": 3} | fields
    response = httpx.post(f"{fake}/_fake/shops", json=body)
    assert response.status_code == 201, response.text


def order_count(fake: str, domain: str) -> int:
    return httpx.get(f"{fake}/_fake/shops/{domain}").json()["orders"]


class Waits:
    """Stands in for the stop event: records each wait and stops after `orders` orders."""

    def __init__(self, orders: int) -> None:
        self.orders = orders
        self.waits: list[float | None] = []

    def wait(self, timeout: float | None) -> bool:
        self.waits.append(timeout)
        return len(self.waits) > self.orders


@pytest.mark.parametrize(
    ("orders", "span", "rate"),
    [
        (400, timedelta(days=30), 400 / 720),
        (48, timedelta(hours=12), 4.0),
        (0, timedelta(days=30), 0.0),
        # One order a minute old is not a rate of sixty an hour.
        (1, timedelta(minutes=1), 1.0),
    ],
    ids=["demo_shop_case", "busy_case", "no_orders_case", "brand_new_case"],
)
def test_the_rate_is_the_history_order_count_over_its_span(orders, span, rate):
    assert orders_per_hour(orders, span) == pytest.approx(rate)


def test_a_shop_gets_new_orders_at_the_rate_of_its_history(fake):
    # given a shop with 240 orders over its last 10 days: about one an hour
    new_shop(fake, "ten-days.myshopify.com", orders=240, days=10)

    # when the demo keeps it taking orders
    generator = ShopOrders(fake, "ten-days.myshopify.com", rng=random.Random(5))
    stop = Waits(orders=3)
    generator.run(stop)

    # then its orders come about an hour apart, and each wait ends in an order in the shop
    assert generator.rate == pytest.approx(1.0, rel=0.05)
    assert mean(generator.next_wait() for _ in range(2000)) == pytest.approx(3600, rel=0.1)
    assert len(stop.waits) == 4 and all(wait > 0 for wait in stop.waits)
    assert order_count(fake, "ten-days.myshopify.com") == 243


def test_a_shop_with_a_busier_history_gets_orders_more_often(fake):
    new_shop(fake, "quiet.myshopify.com", orders=100, days=20)
    new_shop(fake, "busy.myshopify.com", orders=2000, days=20)

    quiet = ShopOrders(fake, "quiet.myshopify.com")
    busy = ShopOrders(fake, "busy.myshopify.com")

    assert busy.rate / quiet.rate == pytest.approx(20, rel=0.05)


def test_a_shop_without_past_orders_gets_none(fake):
    new_shop(fake, "empty.myshopify.com", orders=0)

    generator = ShopOrders(fake, "empty.myshopify.com")
    stop = Waits(orders=0)
    generator.run(stop)

    assert generator.rate == 0 and stop.waits == [None]
    assert order_count(fake, "empty.myshopify.com") == 0
