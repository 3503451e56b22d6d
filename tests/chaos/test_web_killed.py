"""SIGKILL one of two web processes under load: every 200 from either is stored and
processed exactly once and counted once in the metric buckets; requests to the dead one
fail at the client, never with a lost 200, and reach the survivor when sent again."""

from __future__ import annotations

import signal
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from opspulse.ingest.models import DeliveryStatus, WebhookDelivery
from tests.support.chaos import Ledger, assert_nothing_lost, order_deliveries, wait_until_processed
from tests.support.processes import WebServer, Worker, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

ORDERS_PER_STORE = 100  # two deliveries each: 800 requests
KILL_AFTER_ANSWERS = 250


def test_web_process_killed_under_load(stores, process_logs, processes):
    doomed = WebServer(process_logs, "web-doomed")
    processes.append(doomed)
    survivor = WebServer(process_logs, "web-survivor")
    processes.append(survivor)
    processes.append(Worker(process_logs, "worker-web-killed"))

    deliveries = order_deliveries(stores, ORDERS_PER_STORE, seed=3)
    ledger = Ledger()

    def send(index_and_delivery) -> None:
        index, delivery = index_and_delivery
        # Round robin, as a load balancer would; the platform retries a failed delivery
        # later, and the balancer then sends it to the process that is still up.
        target = (doomed, survivor)[index % 2]
        if ledger.post(target.url, delivery) is None:
            assert ledger.post(survivor.url, delivery) == 200

    with ThreadPoolExecutor(8) as pool:
        sending = pool.map(send, enumerate(deliveries))
        wait_for(lambda: len(ledger.answers) >= KILL_AFTER_ANSWERS, timeout=30, message="load on both processes")
        doomed.stop(signal.SIGKILL)
        kill_time = time.monotonic()
        list(sending)

    assert doomed.popen.returncode == -signal.SIGKILL
    from_doomed = [a for a in ledger.answers if a.url == doomed.url]
    after_kill = [a for a in from_doomed if a.started > kill_time]
    assert after_kill, "no request reached the killed process after its death"
    assert {a.error for a in after_kill} <= {"ConnectError", "RemoteProtocolError", "ReadError", "WriteError"}
    acked_by_doomed = {a.key for a in from_doomed if a.status == 200}
    assert acked_by_doomed, "the killed process took no load before it died"
    assert {a.status for a in ledger.answers} <= {200, None}
    # Each request the dead process left unanswered was taken by the survivor when sent
    # again (stored then, or found already stored if the kill came after its commit).
    acked_by_survivor = {a.key for a in ledger.answers if a.url == survivor.url and a.status == 200}
    unanswered = {a.key for a in from_doomed if a.status is None}
    assert unanswered <= acked_by_survivor
    assert set(ledger.sent) == ledger.acked(), "every delivery was acknowledged in the end"

    wait_until_processed(stores, timeout=30)
    # Every 200 of the killed process is stored, and each delivery once, processed once.
    rows = WebhookDelivery.objects.filter(store__in=stores)
    stored = {(store_id, key) for store_id, key in rows.values_list("store_id", "delivery_key")}
    assert acked_by_doomed <= stored
    assert rows.count() == len(stored) == len(deliveries)
    assert set(rows.values_list("status", "attempts")) == {(DeliveryStatus.PROCESSED, 1)}
    assert_nothing_lost(ledger, stores)  # orders hold their newest versions; the buckets count each once
