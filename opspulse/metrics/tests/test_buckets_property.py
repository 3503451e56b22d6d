"""The metric buckets and the products' days always equal a recomputation from the
stored orders, their line items and the carts.

Whatever the platforms send: duplicates, updates out of order, cancellations and
refunds, test orders (which count nowhere, even once updated), in batches of any size,
for stores in timezones with DST, with orders placed around midnight and around the
night the clocks change (the two 01:00 hours of a fall-back night are two hour buckets,
the missing hour of a spring-forward night none).
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from opspulse.commerce import actions
from opspulse.commerce.models import NOT_COUNTED, Cart, LineItem, Order, OrderStatus
from opspulse.metrics.buckets import bucket_start
from opspulse.metrics.models import Granularity, Metric, MetricName, ProductDay
from tests.factories import StoreFactory

pytestmark = pytest.mark.django_db

# (timezone, instants where its local day or its clock turns)
ZONES = {
    "Europe/Paris": [
        datetime(2025, 3, 30, 1, 0, tzinfo=UTC),  # 02:00 → 03:00
        datetime(2025, 10, 26, 1, 0, tzinfo=UTC),  # 03:00 → 02:00
        datetime(2025, 10, 25, 22, 0, tzinfo=UTC),  # local midnight before the fall-back night
    ],
    "America/New_York": [
        datetime(2025, 3, 9, 7, 0, tzinfo=UTC),  # 02:00 → 03:00
        datetime(2025, 11, 2, 6, 0, tzinfo=UTC),  # 02:00 → 01:00
        datetime(2025, 11, 2, 4, 0, tzinfo=UTC),  # local midnight of the fall-back day
    ],
    "Australia/Sydney": [
        datetime(2025, 4, 5, 16, 0, tzinfo=UTC),  # 03:00 → 02:00
        datetime(2025, 10, 4, 16, 0, tzinfo=UTC),  # 02:00 → 03:00
    ],
}
STATUSES = [OrderStatus.OPEN, OrderStatus.PAID, OrderStatus.FULFILLED, OrderStatus.CANCELLED, OrderStatus.REFUNDED]
STORES = itertools.count()
# (product id, title, price): a custom item has no product id and is known by its title.
PRODUCTS = [("1", "Tee", "9.00"), ("2", "Cap", "12.50"), ("", "Gift wrap", "2.00")]
# Minutes from a turning point: mostly just either side of it, where a bucket ends.
OFFSETS = st.one_of(st.sampled_from([-61, -45, -15, -1, 0, 15, 45, 61]), st.integers(-150, 150))

order_versions = st.lists(
    st.tuples(
        st.integers(1, 5),  # which order
        st.integers(0, 30),  # minutes after it was placed that this version was written
        st.sampled_from(STATUSES),
        st.integers(0, 50_000),  # total in cents
        st.integers(0, 4),  # units
        st.sampled_from(PRODUCTS),  # what they are
        st.sampled_from([False, False, False, True]),  # a test order (Shopify's `test`)
    ),
    max_size=25,
)
cart_versions = st.lists(st.tuples(st.integers(1, 4), st.integers(0, 30), st.integers(0, 6)), max_size=10)


def recomputed(store) -> dict:
    """The buckets computed afresh from what is stored."""
    totals: defaultdict = defaultdict(Decimal)
    for granularity in (Granularity.HOUR, Granularity.DAY):
        for order in Order.objects.filter(store=store):
            if order.status in NOT_COUNTED or order.is_test:
                continue
            start = bucket_start(order.placed_at, granularity, store.timezone).astimezone(UTC)
            totals[(MetricName.REVENUE, granularity, start)] += order.total
            totals[(MetricName.ORDERS, granularity, start)] += 1
            totals[(MetricName.UNITS_SOLD, granularity, start)] += order.units
        for cart in Cart.objects.filter(store=store):
            start = bucket_start(cart.platform_created_at, granularity, store.timezone).astimezone(UTC)
            totals[(MetricName.CARTS, granularity, start)] += 1
    return {key: value for key, value in totals.items() if value}


def stored(store) -> dict:
    return {
        (m.name, m.granularity, m.timestamp): m.value
        for m in Metric.objects.filter(store=store)
        if m.value
    }


def recomputed_product_days(store) -> dict:
    """Units and revenue per product and local day, afresh from the counted orders' items."""
    totals: defaultdict = defaultdict(lambda: [0, Decimal(0)])
    zone = ZoneInfo(store.timezone)
    for item in LineItem.objects.filter(order__store=store, quantity__gt=0).select_related("order"):
        if item.order.status in NOT_COUNTED or item.order.is_test:
            continue
        entry = totals[(item.order.placed_at.astimezone(zone).date(), item.product_external_id or item.title)]
        entry[0] += item.quantity
        entry[1] += item.quantity * item.price
    return {key: tuple(value) for key, value in totals.items()}


def stored_product_days(store) -> dict:
    return {
        (row.day, row.product_key): (row.units, row.revenue)
        for row in ProductDay.objects.filter(store=store)
        if row.units or row.revenue
    }


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(zone=st.sampled_from(sorted(ZONES)), orders=order_versions, carts=cart_versions, data=st.data())
def test_buckets_equal_a_recomputation_whatever_the_order_duplicates_and_batches(zone, orders, carts, data):
    # given a store in a DST timezone, and orders and carts placed around its turning points
    store = StoreFactory(timezone=zone, currency="EUR", domain=f"dst-{next(STORES)}.myshopify.com")
    anchors = ZONES[zone]
    placed = {
        number: data.draw(st.sampled_from(anchors)) + timedelta(minutes=data.draw(OFFSETS))
        for number in range(1, 6)
    }
    records: list = [
        actions.OrderData(
            external_id=str(number), number=f"#{number}", status=status, currency="EUR",
            total=Decimal(cents) / 100, placed_at=placed[number],
            updated_at=placed[number] + timedelta(minutes=minute),
            line_items=[
                actions.LineItemData(external_id="1", product_external_id=product, title=title,
                                     quantity=units, price=Decimal(price)),
                # a refund line, which no product's sales count
                actions.LineItemData(external_id="2", product_external_id="1", title="Tee", quantity=-1,
                                     price=Decimal("9.00")),
            ],
            is_test=is_test,
        )
        for number, minute, status, cents, units, (product, title, price), is_test in orders
    ]
    records += [
        actions.CartData(
            external_id=f"cart-{number}", item_count=items, value=Decimal(items * 9),
            created_at=placed[number], updated_at=placed[number] + timedelta(minutes=minute),
        )
        for number, minute, items in carts
    ]
    # redelivered and reordered, as webhooks arrive
    records += data.draw(st.lists(st.sampled_from(records), max_size=8)) if records else []
    records = data.draw(st.permutations(records))
    cuts = sorted(set(data.draw(st.lists(st.integers(0, len(records)), max_size=4))) | {0, len(records)})

    # when they are applied in batches
    for start, end in itertools.pairwise(cuts):
        actions.apply_records(store=store, records=records[start:end])
    after_once = stored(store), stored_product_days(store)

    # then the buckets match the stored orders and carts, the products' days match the
    # stored line items, and a replay of everything changes nothing
    assert after_once == (recomputed(store), recomputed_product_days(store))
    actions.apply_records(store=store, records=records)
    assert (stored(store), stored_product_days(store)) == after_once
