"""NOTIFY payloads: a batch of live messages of any size fits PostgreSQL's limit.

PostgreSQL refuses a NOTIFY payload of 8000 bytes or more, and the whole transaction
with it (the drain's batch of deliveries). Payloads are cut at MAX_NOTIFY_BYTES, below
that limit, on message boundaries; a batch of many small messages once overran the cut
by the envelope and a separator per message.
"""

from __future__ import annotations

import json
from collections import defaultdict

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from opspulse.lib import broadcast

POSTGRES_NOTIFY_LIMIT = 8000
STORES = ["6f1c2a4e-0000-4000-8000-000000000001", "6f1c2a4e-0000-4000-8000-000000000002"]

text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40)
padding = st.one_of(st.text(max_size=20), st.text(min_size=1000, max_size=9000))
messages = st.fixed_dictionaries(
    {"type": st.sampled_from(["new_order", "order_updated", "metric_update", "inventory_update", "alert_updated"])},
    optional={
        "order": st.integers(min_value=0, max_value=2**53),
        "number": text,
        "note": padding,
        "lines": st.lists(st.fixed_dictionaries({"sku": text, "quantity": st.integers(0, 999)}), max_size=30),
    },
)
batches = st.dictionaries(st.sampled_from(STORES), st.lists(messages, max_size=300), max_size=2)


def fits_whole(store: str, message: dict) -> bool:
    """Whether the message fits a payload of its own."""
    return len(json.dumps({"store": store, "messages": [message]})) <= broadcast.MAX_NOTIFY_BYTES


@settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(batch=batches)
def test_every_payload_fits_and_decodes_into_the_batch_messages(batch):
    payloads = list(broadcast._chunks(batch))

    received: dict[str, list[dict]] = defaultdict(list)
    for payload in payloads:
        assert len(payload.encode()) <= broadcast.MAX_NOTIFY_BYTES < POSTGRES_NOTIFY_LIMIT
        decoded = json.loads(payload)
        assert set(decoded) == {"store", "messages"} and decoded["messages"]
        received[decoded["store"]].extend(decoded["messages"])
    assert received.keys() == {store for store, sent in batch.items() if sent}
    for store, sent in batch.items():
        # Every message arrives in order, whole; one too large for any payload as its type.
        expected = [message if fits_whole(store, message) else {"type": message["type"]} for message in sent]
        assert received[store] == expected


def test_many_small_messages_fill_several_payloads_not_one_over_the_limit():
    batch = {STORES[0]: [{"type": "new_order", "order": n} for n in range(2000)]}

    payloads = list(broadcast._chunks(batch))

    assert len(payloads) > 1
    assert max(len(payload) for payload in payloads) <= broadcast.MAX_NOTIFY_BYTES
    assert [m for p in payloads for m in json.loads(p)["messages"]] == batch[STORES[0]]


@pytest.mark.parametrize("spare", [0, 1])
def test_a_message_just_too_large_for_a_payload_goes_as_its_type(spare):
    envelope = len(json.dumps({"store": STORES[0], "messages": [{"type": "new_order", "note": ""}]}))
    message = {"type": "new_order", "note": "x" * (broadcast.MAX_NOTIFY_BYTES - envelope + 1 - spare)}

    [payload] = broadcast._chunks({STORES[0]: [message]})

    assert json.loads(payload)["messages"] == ([{"type": "new_order"}] if not spare else [message])


@pytest.mark.django_db
def test_postgresql_accepts_a_batch_of_a_thousand_messages(settings):
    settings.LIVE_TRANSPORT = "postgres"
    with broadcast.batch():
        for number in range(1000):
            broadcast.publish(STORES[0], {"type": "new_order", "order": number, "number": f"#{number}"})
