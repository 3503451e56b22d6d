"""SIGKILL one of two web processes under load: every 200 from either is stored and
processed; requests to the dead one fail at the client, never with a lost 200."""

from __future__ import annotations

import signal
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import WebServer, Worker, wait_for
from tests.chaos.conftest import Ledger, assert_nothing_lost, order_deliveries, wait_until_processed

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
    assert {a.status for a in after_kill} == {None}, "the dead process cannot answer"
    assert {a.error for a in after_kill} <= {"ConnectError", "RemoteProtocolError", "ReadError", "WriteError"}
    assert any(a.status == 200 for a in from_doomed), "the killed process took no load before it died"
    assert {a.status for a in ledger.answers} <= {200, None}
    assert set(ledger.sent) == ledger.acked(), "every delivery was acknowledged in the end"

    wait_until_processed(stores, timeout=30)
    assert_nothing_lost(ledger, stores)
