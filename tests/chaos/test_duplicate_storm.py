"""The same delivery ten times at once, and updates that arrive older-after-newer:
one delivery row per key, one effect, and every order ends in its newest state."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest

from opspulse.commerce.models import Order
from opspulse.ingest.models import WebhookDelivery
from tests.support.chaos import PRODUCTS, T0, Ledger, OrderVersion, assert_nothing_lost, order_delivery
from tests.support.jobs import run_worker_until_idle

pytestmark = pytest.mark.django_db(transaction=True)

ORDERS = 50
COPIES = 10
TEE, MUG, CAP, HOOD = PRODUCTS


def versions(order_id: int, index: int) -> list[OrderVersion]:
    """Created, then fulfilled, then a final change; every version has its own total."""
    created_at = T0 + timedelta(minutes=53 * index)
    final_state = ("paid", "cancelled", "fulfilled", "refunded")[index % 4]
    return [
        OrderVersion(order_id, created_at, 0, "paid", (TEE, MUG)),
        OrderVersion(order_id, created_at, 7, "fulfilled", (TEE,)),
        OrderVersion(order_id, created_at, 14, final_state, (HOOD, CAP)),
    ]


def storm(ledger: Ledger, url: str, deliveries, copies: int = COPIES) -> None:
    """Send each delivery `copies` times; the copies of one delivery are in flight together."""
    ledger.post_all(url, [d for d in deliveries for _ in range(copies)], threads=max(2 * copies, 8))


def test_duplicates_and_out_of_order_updates_have_one_effect(web, stores):
    histories = {}
    for index in range(ORDERS):
        store = stores[index % len(stores)]
        histories[index] = [order_delivery(store, v) for v in versions(300_000 + index, index)]
    first_half = range(ORDERS // 2)
    second_half = range(ORDERS // 2, ORDERS)
    ledger = Ledger()

    # The first half's newest version comes first, then an older update, then the create.
    # The second half is created, jumps to its newest version, then gets the middle one.
    storm(ledger, web.url, [histories[i][2] for i in first_half] + [histories[i][0] for i in second_half])
    storm(ledger, web.url, [histories[i][1] for i in first_half] + [histories[i][2] for i in second_half])
    run_worker_until_idle()
    storm(ledger, web.url, [histories[i][0] for i in first_half] + [histories[i][1] for i in second_half])
    run_worker_until_idle()
    # Platform retries of deliveries already processed.
    storm(ledger, web.url, [d for history in histories.values() for d in history], copies=1)
    run_worker_until_idle()

    distinct = {(d.store_id, d.key) for history in histories.values() for d in history}
    assert ledger.statuses() == {200: (COPIES + 1) * len(distinct)}
    accepted = Counter(a.key for a in ledger.answers if a.outcome == "accepted")
    assert accepted == Counter({key: 1 for key in distinct}), "each delivery is accepted once, then duplicate"
    assert WebhookDelivery.objects.count() == len(distinct)
    assert Order.objects.count() == ORDERS
    assert_nothing_lost(ledger, stores)
    for index, history in histories.items():
        newest = history[2].expected()
        order = Order.objects.get(store_id=history[2].store_id, external_id=newest.external_id)
        assert (order.status, order.total, order.platform_updated_at) == (newest.status, newest.total, newest.updated_at)
