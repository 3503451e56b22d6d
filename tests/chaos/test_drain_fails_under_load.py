"""A drain job fails on a passing error while its store's next drain job already waits.

That is what a database hiccup does to a busy store: webhooks that arrive while the
drain job runs queue the store's next job, then the running one fails. The fault is
one no delivery can be blamed for (the disk is full: an OperationalError), so the job
itself fails, not just a delivery's attempt. Once the error has passed, everything
acknowledged must be processed.
"""

from __future__ import annotations

import time

import pytest
from django.db import connection
from procrastinate.contrib.django.models import ProcrastinateJob

from opspulse.ingest.models import DeliveryStatus, WebhookDelivery
from opspulse.ingest.queue import DRAIN_TASK
from tests.support.chaos import (
    PRODUCTS, T0, Ledger, OrderVersion, assert_nothing_lost, order_delivery, wait_until_processed,
)
from tests.support.processes import Worker, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

# Order inserts fail, a second after they start, until the fault is switched off, with
# PostgreSQL's disk_full: an error of the database, which fails the whole job.
FAULT = """
    CREATE TABLE chaos_fault (active boolean NOT NULL);
    INSERT INTO chaos_fault VALUES (true);
    CREATE FUNCTION chaos_refuse_order() RETURNS trigger AS $$
    BEGIN
        IF (SELECT active FROM chaos_fault) THEN
            PERFORM pg_sleep(1);
            RAISE EXCEPTION 'disk on fire' USING ERRCODE = 'disk_full';
        END IF;
        RETURN NEW;
    END $$ LANGUAGE plpgsql;
    CREATE TRIGGER chaos_refuse_order BEFORE INSERT ON commerce_order
        FOR EACH ROW EXECUTE FUNCTION chaos_refuse_order();
"""
CLEANUP = """
    DROP TRIGGER IF EXISTS chaos_refuse_order ON commerce_order;
    DROP FUNCTION IF EXISTS chaos_refuse_order();
    DROP TABLE IF EXISTS chaos_fault;
"""


@pytest.fixture
def passing_fault():
    with connection.cursor() as cursor:
        cursor.execute(FAULT)

    def end() -> None:
        with connection.cursor() as cursor:
            cursor.execute("UPDATE chaos_fault SET active = false")

    yield end
    with connection.cursor() as cursor:
        cursor.execute(CLEANUP)


def drain_jobs(status: str) -> list[int]:
    return list(ProcrastinateJob.objects.filter(task_name=DRAIN_TASK, status=status).values_list("id", flat=True))


def test_store_is_not_blocked_by_a_job_that_failed_while_the_next_one_waited(
    web, stores, process_logs, processes, passing_fault
):
    store = stores[0]
    deliveries = [order_delivery(store, OrderVersion(600_000 + n, T0, 0, "paid", (PRODUCTS[n],))) for n in range(3)]
    ledger = Ledger()
    # Drain jobs carry the webhooks only where no drainer owns the lanes.
    processes.append(Worker(process_logs, "worker-failing-job", WORKER_DRAINER="false"))

    assert ledger.post(web.url, deliveries[0]) == 200
    running = wait_for(lambda: drain_jobs("doing"), timeout=15, message="the drain job to start")
    for delivery in deliveries[1:]:
        assert ledger.post(web.url, delivery) == 200
    assert drain_jobs("todo"), "the store's next drain job waits"
    # The running job itself fails (the fault sleeps 1 s, then raises) and hands over to
    # a delayed successor.
    wait_for(
        lambda: ProcrastinateJob.objects.filter(id__in=running, status="failed").exists(), timeout=15,
        message="the running drain job to fail",
    )
    assert ProcrastinateJob.objects.filter(task_name=DRAIN_TASK, args__attempt__gte=1).exists()
    assert not WebhookDelivery.objects.filter(store=store, status=DeliveryStatus.PROCESSED).exists()
    time.sleep(0.5)
    passing_fault()

    try:
        # The sweep, run every 2 s here, frees jobs of dead workers: this worker is alive.
        wait_until_processed([store], timeout=20, sweep_every=2)
    finally:
        stuck = ProcrastinateJob.objects.filter(id__in=running, status="doing").exists()
    assert not stuck
    # Nobody's fault: no delivery was marked failed for it.
    assert set(WebhookDelivery.objects.filter(store=store).values_list("status", "error")) == {("processed", "")}
    assert_nothing_lost(ledger, [store])
