"""The delivery row and its drain job commit together or not at all."""

from __future__ import annotations

import asyncio

import psycopg
import pytest
from procrastinate.contrib.django.models import ProcrastinateJob

from opspulse.ingest import queue
from opspulse.ingest.models import WebhookDelivery
from opspulse.lib import db

pytestmark = pytest.mark.django_db(transaction=True)


async def ingest_in_transaction(store_id: int, *, commit: bool) -> None:
    lane = queue.lane_of(store_id)
    async with await psycopg.AsyncConnection.connect(db.conninfo()) as conn:
        async with conn.transaction(force_rollback=not commit):
            await queue.hold_ingest_lock(conn, lane)
            await conn.execute(
                "INSERT INTO ingest_webhook_delivery (store_id, platform, topic, delivery_key, event_id,"
                " received_at, headers, body, status, error, attempts)"
                " VALUES (%s, 'shopify', 'orders/create', 'k1', '', now(), '{}', '{}', 'pending', '', 0)",
                (store_id,),
            )
            await queue.ensure_drain_job(conn, lane)


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
