"""The delivery row and its drain job commit together or not at all."""

from __future__ import annotations

import asyncio

import psycopg
from psycopg.types.json import Jsonb
import pytest
from procrastinate.contrib.django.models import ProcrastinateJob

from opspulse.ingest import queue
from opspulse.ingest.endpoint import record_delivery
from opspulse.ingest.models import WebhookDelivery
from opspulse.lib import db

pytestmark = pytest.mark.django_db(transaction=True)


def record_params(store_id: int, key: str = "k1") -> dict:
    """What the endpoint records for a new order webhook."""
    return {
        "store_id": store_id, "platform": "shopify", "topic": "orders/create", "key": key, "event_id": "",
        "headers": Jsonb({}), "body": b"{}", "status": "pending", "error": "", "wants_job": True,
        **queue.drain_job_params(queue.lane_of(store_id)),
    }


async def ingest_in_transaction(store_id: int, *, commit: bool) -> None:
    """Record a delivery as the endpoint does, in a transaction that commits or rolls back."""
    async with await psycopg.AsyncConnection.connect(db.conninfo()) as conn:
        async with conn.transaction(force_rollback=not commit):
            assert await record_delivery(conn, record_params(store_id)) is not None


async def ingest_at_once(store_id: int, count: int) -> list[int | None]:
    """`count` webhooks of one lane recorded at the same moment, each on its own connection."""
    conns = [await psycopg.AsyncConnection.connect(db.conninfo(), autocommit=True) for _ in range(count)]
    try:
        return await asyncio.gather(
            *(record_delivery(conn, record_params(store_id, f"k{n}")) for n, conn in enumerate(conns)))
    finally:
        for conn in conns:
            await conn.close()


def test_rolled_back_ingest_leaves_no_delivery_and_no_job(shopify_store):
    asyncio.run(ingest_in_transaction(shopify_store.pk, commit=False))

    assert WebhookDelivery.objects.count() == 0
    assert ProcrastinateJob.objects.count() == 0


def test_committed_ingest_leaves_delivery_and_job(shopify_store):
    asyncio.run(ingest_in_transaction(shopify_store.pk, commit=True))

    assert WebhookDelivery.objects.count() == 1
    job = ProcrastinateJob.objects.get()
    assert (job.task_name, job.args, job.status) == (
        queue.DRAIN_TASK, {"lane": queue.lane_of(shopify_store.pk)}, "todo"
    )


def test_webhooks_of_a_lane_recorded_at_once_are_all_kept_with_one_waiting_job(shopify_store):
    ids = asyncio.run(ingest_at_once(shopify_store.pk, 20))

    assert None not in ids and len(set(ids)) == 20
    assert WebhookDelivery.objects.count() == 20
    assert list(ProcrastinateJob.objects.values_list("queueing_lock", "status")) == [
        (queue.drain_lock(queue.lane_of(shopify_store.pk)), "todo")
    ]


def test_waiting_drain_job_is_not_deferred_twice(shopify_store):
    lane = queue.lane_of(shopify_store.pk)
    assert queue.defer_drain(lane) is True
    assert queue.defer_drain(lane) is False

    assert ProcrastinateJob.objects.count() == 1


def test_a_delayed_retry_does_not_hold_back_the_lanes_new_deliveries(shopify_store):
    lane = queue.lane_of(shopify_store.pk)
    assert queue.defer_drain(lane, delay=30) is True

    # a new delivery still gets an immediate job beside the delayed one
    asyncio.run(ingest_in_transaction(shopify_store.pk, commit=True))

    jobs = ProcrastinateJob.objects.order_by("id")
    assert [(job.queueing_lock, job.scheduled_at is None) for job in jobs] == [
        (queue.retry_lock(lane), False), (queue.drain_lock(lane), True)
    ]
