"""New orders for the demo's stand-in Shopify shop, at the pace of its own history.

The demo creates the shop in the fake Shopify (opspulse.sim.fake_shopify) with its past
orders; once a merchant connects it, OpsPulse imports them and then hears of each new
order by webhook. New orders come as often as the shop's past ones did, so the
dashboard of the connected shop keeps the shape of its history instead of being
swamped by made-up orders.
"""

from __future__ import annotations

import random
import threading
from datetime import UTC, datetime, timedelta

import httpx

# A shop whose first order is minutes old has no rate to speak of yet: it is taken
# over at least this long.
MIN_HISTORY_SPAN = timedelta(hours=1)


def orders_per_hour(orders: int, span: timedelta) -> float:
    """Return the rate of `orders` placed over `span`, in orders per hour."""
    return orders * 3600 / max(span, MIN_HISTORY_SPAN).total_seconds()


class ShopOrders:
    """Place orders in a fake Shopify shop at the rate of the shop's history.

    The rate is the shop's order count over the time from its first order to now, read
    from the fake's control API when created. Orders come at random (exponentially
    distributed) intervals, as independent shoppers' orders do.
    """

    def __init__(self, fake_shopify_url: str, domain: str, *, rng: random.Random | None = None) -> None:
        self.domain = domain
        self.rng = rng or random.Random()
        self.client = httpx.Client(base_url=fake_shopify_url, timeout=10)
        shop = self.client.get(f"/_fake/shops/{domain}").raise_for_status().json()
        first = shop["first_order_at"]
        span = datetime.now(UTC) - datetime.fromisoformat(first) if first else timedelta(0)
        self.rate = orders_per_hour(shop["orders"], span) if first else 0.0

    def next_wait(self) -> float | None:
        """Seconds until the next order, or None (never) for a shop without past orders."""
        return self.rng.expovariate(self.rate / 3600) if self.rate else None

    def place_order(self) -> None:
        self.client.post(f"/_fake/shops/{self.domain}/orders", json={}).raise_for_status()

    def run(self, stop: threading.Event) -> None:
        """Place orders until `stop` is set; a failed order is skipped, not retried."""
        while not stop.wait(self.next_wait()):
            try:
                self.place_order()
            except httpx.HTTPError:
                pass


def keep_shop_busy(fake_shopify_url: str, domain: str, stop: threading.Event | None = None) -> None:
    """Keep the fake shop taking orders at its history's rate (sent by webhook once connected)."""
    ShopOrders(fake_shopify_url, domain).run(stop or threading.Event())
