"""SIGKILL the worker in the middle of a backlog: the next worker's drainer takes its
lanes over (or, for drain jobs, the sweep recovers the job), nothing acknowledged is
lost and nothing is counted twice."""

from __future__ import annotations

import signal
import threading
import time

import pytest
from procrastinate.contrib.django.models import ProcrastinateJob, ProcrastinateWorker

from opspulse.ingest.models import DeliveryStatus, WebhookDelivery
from opspulse.ingest.queue import DRAIN_TASK
from tests.support.chaos import Ledger, assert_nothing_lost, order_deliveries, wait_until_processed
from tests.support.processes import wait_for

pytestmark = pytest.mark.django_db(transaction=True)

ORDERS_PER_STORE = 250  # two deliveries each: 2,000 across the four stores
SENT_BEFORE_THE_WORKER = 1200


def processed(stores) -> int:
    return WebhookDelivery.objects.filter(store__in=stores, status=DeliveryStatus.PROCESSED).count()


def running_drain_jobs() -> list[int]:
    return list(ProcrastinateJob.objects.filter(task_name=DRAIN_TASK, status="doing").values_list("id", flat=True))


# The worker's own drainer is the default path; drain jobs carry the webhooks only
# where no drainer runs, and their recovery after a kill is also covered by
# test_slow_and_killed_jobs, so this longer run of it is left to `make chaos`.
@pytest.mark.parametrize(
    "drainer", [pytest.param(True, id="drainer"), pytest.param(False, id="drain-jobs", marks=pytest.mark.chaos)]
)
def test_worker_killed_mid_backlog_loses_and_doubles_nothing(web, stores, start_worker, drainer):
    deliveries = order_deliveries(stores, ORDERS_PER_STORE, seed=1)
    assert len(deliveries) == 2000
    ledger = Ledger()
    ledger.post_all(web.url, deliveries[:SENT_BEFORE_THE_WORKER])
    mode = {"WORKER_DRAINER": str(drainer).lower()}

    doomed = start_worker("worker-doomed", **mode)
    sender = threading.Thread(target=ledger.post_all, args=(web.url, deliveries[SENT_BEFORE_THE_WORKER:]), kwargs={"threads": 4})
    sender.start()
    try:
        # Kill while the backlog is far from done (and, for drain jobs, one is running).
        stalled = wait_for(
            lambda: processed(stores) >= 200 and (drainer or running_drain_jobs()), timeout=30, interval=0.01,
            message="the worker to be mid-backlog",
        )
        doomed.stop(signal.SIGKILL)
        done_at_kill = processed(stores)
        assert done_at_kill < len(deliveries), "the backlog was finished before the kill"
        assert doomed.popen.returncode == -signal.SIGKILL

        dead_worker_ids = set(ProcrastinateWorker.objects.values_list("id", flat=True))
        if not drainer:
            # Nothing runs the killed worker's jobs until the sweep frees them.
            time.sleep(0.5)
            assert set(stalled) <= set(running_drain_jobs())
            # The replacement prunes workers whose heartbeat is older than 2 s when it starts.
            time.sleep(2.5)
        start_worker("worker-replacement", **mode)
        if not drainer:
            wait_for(lambda: not (dead_worker_ids & set(ProcrastinateWorker.objects.values_list("id", flat=True))),
                     timeout=15, message="the replacement worker to prune the dead one")
    finally:
        sender.join(timeout=60)
    assert not sender.is_alive()

    if drainer:
        # PostgreSQL freed the dead drainer's lanes with its connection: the replacement
        # takes them as it starts, with no sweep.
        wait_until_processed(stores, timeout=45)
    else:
        # The sweep (a cron job every 15 s, run here every 2 s) puts the stalled job back.
        wait_until_processed(stores, timeout=45, sweep_every=2)
        assert not ProcrastinateJob.objects.filter(id__in=stalled, status="doing").exists()
    assert ledger.statuses() == {200: len(deliveries)}
    assert_nothing_lost(ledger, stores)
