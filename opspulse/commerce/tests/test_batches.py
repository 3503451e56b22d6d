"""A batch of changes has exactly the effect of the same changes applied one by one.

The drain job applies a store's pending deliveries together; whatever the split into
batches, the orders, the stock, the fired alerts and the metric buckets must come out
as if every webhook had been handled alone, and the buckets must equal a recomputation
from the stored orders.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from datetime import timedelta
from decimal import Decimal

import psycopg
import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings, strategies as st

from opspulse.alerts.models import Alert, AlertEvent, AlertType
from opspulse.commerce import actions
from opspulse.commerce.models import NOT_COUNTED, InventoryLevel, Order, OrderStatus
from opspulse.lib import broadcast, db
from opspulse.metrics.buckets import bucket_start
from opspulse.metrics.models import Metric
from tests.support.live import notifications
from tests.support.stores import make_store
from tests.support.webhooks import T0

pytestmark = pytest.mark.django_db

STATUSES = [OrderStatus.OPEN, OrderStatus.PAID, OrderStatus.FULFILLED, OrderStatus.CANCELLED, OrderStatus.REFUNDED]

order_events = st.lists(
    st.builds(
        lambda order, minute, status, cents, quantity, placed_hours: actions.OrderData(
            external_id=str(order),
            number=f"#{order}",
            status=status,
            currency="EUR",
            total=Decimal(cents) / 100,
            # An order's placing time never changes; its updates do.
            placed_at=T0 + timedelta(hours=7 * order),
            updated_at=T0 + timedelta(hours=7 * order, minutes=minute),
            line_items=[actions.LineItemData(external_id="1", title="Tee", quantity=quantity, price=Decimal("10.00"))],
        ),
        order=st.integers(1, 4),
        minute=st.integers(0, 6),
        status=st.sampled_from(STATUSES),
        cents=st.integers(0, 90_000),
        quantity=st.integers(0, 5),
        placed_hours=st.just(0),
    ),
    max_size=30,
)

stock_events = st.lists(
    st.builds(
        lambda item, minute, available: actions.StockData(
            item_external_id=str(item), location_external_id="1", available=available,
            updated_at=T0 + timedelta(minutes=minute),
        ),
        item=st.integers(1, 3),
        minute=st.integers(0, 8),
        available=st.integers(0, 12),
    ),
    max_size=30,
)


RUNS = itertools.count()


def split(records: list, cuts: list[int]) -> list[list]:
    """Cut `records` into consecutive batches at the given positions."""
    edges = sorted({0, len(records), *(cut % (len(records) + 1) for cut in cuts)})
    return [records[a:b] for a, b in zip(edges, edges[1:], strict=False)]


def store_with_alerts(personas, name: str):
    store = make_store(personas["alice"].memberships.first().account, platform="shopify",
                       domain=f"{name}.myshopify.com", secret="s")
    # Orders of any age count as recent here: batching, not the rule's window, is under test.
    Alert.objects.create(store=store, type=AlertType.HIGH_VALUE_ORDER,
                         config={"threshold": "500.00", "window_minutes": 10 * 365 * 24 * 60})
    Alert.objects.create(store=store, type=AlertType.LOW_STOCK, config={"threshold": 5})
    return store


def snapshot(store) -> dict:
    orders = {
        o.external_id: (o.status, o.total, o.units, o.platform_updated_at, o.counted_revenue)
        for o in Order.objects.filter(store=store)
    }
    levels = {
        level.item_external_id: (level.available, level.platform_updated_at)
        for level in InventoryLevel.objects.filter(store=store)
    }
    buckets = {
        (m.name, m.granularity, m.timestamp): m.value
        for m in Metric.objects.filter(store=store)
        if m.value
    }
    events = sorted(
        (e.alert.type, e.subject) for e in AlertEvent.objects.filter(store=store).select_related("alert")
    )
    return {"orders": orders, "levels": levels, "buckets": buckets, "events": events}


def recomputed_buckets(store) -> dict:
    """Metric buckets computed afresh from the stored orders."""
    totals: dict = defaultdict(Decimal)
    for order in Order.objects.filter(store=store):
        if order.status in NOT_COUNTED:
            continue
        for granularity in ("hour", "day"):
            start = bucket_start(order.placed_at, granularity, store.timezone)
            totals[("revenue", granularity, start)] += order.total
            totals[("orders", granularity, start)] += 1
            totals[("units_sold", granularity, start)] += order.units
    return {key: value for key, value in totals.items() if value}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(orders=order_events, stock=stock_events, cuts=st.lists(st.integers(0, 60), max_size=6), data=st.data())
def test_any_split_into_batches_has_the_effect_of_one_change_at_a_time(personas, orders, stock, cuts, data):
    # given the same stream of order and stock changes, interleaved as they arrive
    stream = list(orders) + list(stock)
    order = data.draw(st.permutations(range(len(stream))))
    stream = [stream[i] for i in order]
    run = next(RUNS)
    one_by_one, batched = store_with_alerts(personas, f"single-{run}"), store_with_alerts(personas, f"batch-{run}")
    neighbour = store_with_alerts(personas, f"neighbour-{run}")

    # when one store takes them one at a time, and two others in batches shared with
    # each other, their changes interleaved as a drain job's batch mixes stores
    for record in stream:
        actions.apply_records(store=one_by_one, records=[record])
    for batch in split(stream, cuts):
        actions.apply_changes([change for record in batch for change in ((batched, record), (neighbour, record))])

    # then all three stores end the same, and the buckets match the stored orders
    assert snapshot(batched) == snapshot(one_by_one) == snapshot(neighbour)
    assert snapshot(batched)["buckets"] == recomputed_buckets(batched)


@pytest.mark.django_db(transaction=True)
def test_versions_of_one_order_in_a_batch_are_announced_in_order(shopify_store):
    placed = actions.OrderData(external_id="9", number="#9", status=OrderStatus.PAID, currency="EUR",
                               total=Decimal("80.00"), placed_at=T0, updated_at=T0)
    cancelled = actions.OrderData(external_id="9", number="#9", status=OrderStatus.CANCELLED, currency="EUR",
                                  total=Decimal("80.00"), placed_at=T0, updated_at=T0 + timedelta(minutes=2))
    with psycopg.connect(db.conninfo(), autocommit=True) as listener:
        listener.execute(f"LISTEN {broadcast.NOTIFY_CHANNEL}")
        # when the order is placed, cancelled and its first version replayed, in one batch
        with transaction.atomic(), broadcast.batch():
            results = actions.apply_records(store=shopify_store, records=[placed, cancelled, placed])
        sent = [message for n in notifications(listener, 1) for message in n["messages"]]

    # then the dashboards hear of both versions in order, the replay changes nothing,
    # and with no net change to the day there is no metric update to announce
    assert [r is not None for r in results] == [True, True, False]
    assert [(m["type"], m.get("status")) for m in sent] == [("new_order", "paid"), ("order_updated", "cancelled")]
    assert Order.objects.get(store=shopify_store).status == OrderStatus.CANCELLED
