"""A slow job is not a dead one: a drain job of a live worker runs for as long as it
needs, while the job of a worker killed with SIGKILL runs again within the window its
heartbeat gives (WORKER_STALLED_SECONDS, here 2 s, and the next sweep).

The slow job is real work made slow: every order insert sleeps, so a drain job of 16
orders runs for about 4 s, twice the stall limit, with sweeps every 0.5 s. Its workers
run no drainer (WORKER_DRAINER=false), so that drain jobs carry the webhooks; the last
test kills a worker whose drainer is mid-batch.
"""

from __future__ import annotations

import signal
import threading
import time

import pytest
from django.db import connection
from procrastinate.contrib.django.models import ProcrastinateJob
from procrastinate.exceptions import AlreadyEnqueued

from opspulse.commerce.models import Order
from opspulse.ingest.models import WebhookDelivery
from opspulse.ingest.queue import DRAIN_TASK
from tests.support.chaos import (
    PRODUCTS, T0, Ledger, OrderVersion, assert_nothing_lost, order_delivery, wait_until_processed,
)
from tests.support.processes import wait_for

pytestmark = pytest.mark.django_db(transaction=True)

ORDERS = 16
NO_DRAINER = {"WORKER_DRAINER": "false"}
SECONDS_PER_ORDER = 0.25
# Each order insert sleeps; `chaos_order_inserts` counts the inserts that began.
SLOW_ORDERS = f"""
    CREATE SEQUENCE chaos_order_inserts;
    CREATE FUNCTION chaos_slow_order() RETURNS trigger AS $$
    BEGIN
        PERFORM nextval('chaos_order_inserts');
        PERFORM pg_sleep({SECONDS_PER_ORDER});
        RETURN NEW;
    END $$ LANGUAGE plpgsql;
    CREATE TRIGGER chaos_slow_order BEFORE INSERT ON commerce_order
        FOR EACH ROW EXECUTE FUNCTION chaos_slow_order();
"""
CLEANUP = """
    DROP TRIGGER IF EXISTS chaos_slow_order ON commerce_order;
    DROP FUNCTION IF EXISTS chaos_slow_order();
    DROP SEQUENCE IF EXISTS chaos_order_inserts;
"""


@pytest.fixture
def slow_orders():
    with connection.cursor() as cursor:
        cursor.execute(SLOW_ORDERS)

    def inserts_begun() -> int:
        with connection.cursor() as cursor:
            cursor.execute("SELECT coalesce(last_value, 0) FROM pg_sequences WHERE sequencename = 'chaos_order_inserts'")
            return cursor.fetchone()[0]

    yield inserts_begun
    with connection.cursor() as cursor:
        cursor.execute(CLEANUP)


class Sweeper(threading.Thread):
    """Defer the sweep every 0.5 s (its cron does every 15 s) and watch the drain jobs."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.stopping = threading.Event()
        self.statuses: dict[int, list[str]] = {}
        self.attempts: dict[int, int] = {}

    def run(self) -> None:
        from django.db import connections

        from opspulse.ingest.tasks import sweep

        try:
            next_sweep = 0.0
            while not self.stopping.wait(0.05):
                if time.monotonic() >= next_sweep:
                    next_sweep = time.monotonic() + 0.5
                    try:
                        sweep.defer(timestamp=int(time.time()))
                    except AlreadyEnqueued:
                        pass
                for job_id, status, attempts in ProcrastinateJob.objects.filter(task_name=DRAIN_TASK).values_list(
                    "id", "status", "attempts"
                ):
                    seen = self.statuses.setdefault(job_id, [])
                    if not seen or seen[-1] != status:
                        seen.append(status)
                    self.attempts[job_id] = attempts
        finally:
            connections.close_all()

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=10)


def post_orders(web_url: str, store) -> Ledger:
    ledger = Ledger()
    for number in range(ORDERS):
        delivery = order_delivery(store, OrderVersion(700_000 + number, T0, 0, "paid", (PRODUCTS[number % 4],)))
        assert ledger.post(web_url, delivery) == 200
    return ledger


def test_a_drain_job_twice_as_long_as_the_stall_limit_finishes_once(web, stores, start_worker, slow_orders):
    """Ending a job of a live worker after a fixed time would run the store's orders twice."""
    store = stores[0]
    ledger = post_orders(web.url, store)
    sweeper = Sweeper()
    sweeper.start()
    try:
        start_worker("worker-slow-job", **NO_DRAINER)
        wait_until_processed([store], timeout=30)
    finally:
        sweeper.stop()

    # The slow job ran to its end: never failed nor run again by a sweep (a successor it
    # handed over to finds nothing left); each order was inserted once.
    first_job = min(sweeper.statuses)
    assert sweeper.statuses[first_job] == ["todo", "doing"]
    assert all("failed" not in statuses for statuses in sweeper.statuses.values()), sweeper.statuses
    assert set(sweeper.attempts.values()) == {0}
    assert slow_orders() == ORDERS
    assert Order.objects.filter(store=store).count() == ORDERS
    assert set(WebhookDelivery.objects.filter(store=store).values_list("attempts", flat=True)) == {1}
    assert_nothing_lost(ledger, [store])


def test_a_killed_workers_drain_job_runs_again_once_its_heartbeat_stops(web, stores, start_worker, slow_orders):
    """SIGKILL a worker mid-job: its job runs again within the stall limit and a sweep, and
    nothing is stored twice."""
    store = stores[0]
    ledger = post_orders(web.url, store)
    sweeper = Sweeper()
    sweeper.start()
    try:
        doomed = start_worker("worker-killed-mid-job", **NO_DRAINER)
        wait_for(lambda: slow_orders() >= 3, timeout=30, message="the drain job to be mid-batch")
        [killed_job] = ProcrastinateJob.objects.filter(task_name=DRAIN_TASK, status="doing").values_list("id", flat=True)
        doomed.stop(signal.SIGKILL)
        killed_at = time.monotonic()
        start_worker("worker-after-the-kill", **NO_DRAINER)
        wait_for(lambda: sweeper.attempts.get(killed_job) == 1, timeout=20, message="the killed job to be retried")
        retried_after = time.monotonic() - killed_at
        wait_until_processed([store], timeout=30)
    finally:
        sweeper.stop()

    assert doomed.popen.returncode == -signal.SIGKILL
    # 2 s without a heartbeat, then the next sweep (0.5 s here) on the new worker, once it
    # has started; procrastinate's default stall limit alone would be 30 s.
    assert retried_after < 12, f"the job ran again {retried_after:.1f} s after the kill"
    # Run again, not failed: its second run may start before the watcher sees it wait.
    assert sweeper.statuses[killed_job][:2] == ["todo", "doing"]
    assert sweeper.attempts[killed_job] == 1
    assert "failed" not in sweeper.statuses[killed_job]
    assert Order.objects.filter(store=store).count() == ORDERS
    assert_nothing_lost(ledger, [store])


def test_a_killed_workers_drainer_lanes_pass_to_the_next_worker(web, stores, start_worker, slow_orders):
    """SIGKILL a worker whose drainer is mid-batch: PostgreSQL ends the batch's transaction
    and frees the lanes with the dead connection, the next worker's drainer takes them as
    it starts, and each order is stored once."""
    store = stores[0]
    ledger = post_orders(web.url, store)
    doomed = start_worker("worker-drainer-killed")
    wait_for(lambda: slow_orders() >= 3, timeout=30, message="the drainer to be mid-batch")
    doomed.stop(signal.SIGKILL)
    killed_at = time.monotonic()
    start_worker("worker-drainer-after-the-kill")
    wait_until_processed([store], timeout=30)
    taken_over_after = time.monotonic() - killed_at

    assert doomed.popen.returncode == -signal.SIGKILL
    # The dead session's batch runs to the end of its statement (16 slow inserts, 4 s)
    # before PostgreSQL finds its client gone; then the lanes are free at once.
    assert taken_over_after < 15, f"the lanes were drained again {taken_over_after:.1f} s after the kill"
    assert slow_orders() > ORDERS  # the killed batch's inserts were rolled back and made again
    assert Order.objects.filter(store=store).count() == ORDERS
    assert set(WebhookDelivery.objects.filter(store=store).values_list("attempts", flat=True)) == {1}
    assert_nothing_lost(ledger, [store])


def test_a_worker_told_to_stop_while_idle_exits_at_once_and_frees_its_lanes(web, stores, start_worker):
    """SIGTERM (a deploy) stops a worker whose drainer waits for webhooks within a
    fraction of a second, not after its idle poll; webhooks acknowledged afterwards go
    to drain jobs, which the next worker runs."""
    store = stores[0]
    worker = start_worker("worker-stopped-while-idle")
    ledger = Ledger()
    first = order_delivery(store, OrderVersion(710_000, T0, 0, "paid", (PRODUCTS[0],)))
    assert ledger.post(web.url, first) == 200
    wait_until_processed([store], timeout=30)
    time.sleep(0.5)  # the drainer is back to waiting on its socket

    asked_at = time.monotonic()
    worker.stop(signal.SIGTERM)
    stopped_after = time.monotonic() - asked_at
    assert worker.popen.returncode == 0
    assert stopped_after < 2.5, f"the worker took {stopped_after:.1f} s to stop"

    second = order_delivery(store, OrderVersion(710_001, T0, 0, "paid", (PRODUCTS[1],)))
    assert ledger.post(web.url, second) == 200
    assert ProcrastinateJob.objects.filter(task_name=DRAIN_TASK, status="todo").exists()
    start_worker("worker-after-the-stop", **NO_DRAINER)
    wait_until_processed([store], timeout=30)
    assert Order.objects.filter(store=store).count() == 2
    assert_nothing_lost(ledger, [store])
