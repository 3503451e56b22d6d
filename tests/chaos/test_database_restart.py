"""Restart PostgreSQL under webhook traffic: 503 (never 500) while it is down, 200s again
without restarting the web process, every acknowledged delivery processed, and an open
dashboard resynchronised and updated after the restart.

The worker rides through the restart too: it polls for jobs instead of keeping a LISTEN
connection (which procrastinate cannot re-establish), and its pool reconnects.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from itertools import count
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection, connections

from opspulse.ingest.models import DeliveryStatus, WebhookDelivery
from tests.support.chaos import (
    PRODUCTS, T0, Ledger, OrderVersion, assert_nothing_lost, dashboard_socket, order_delivery, probe_order,
    receive_until, wait_until_processed,
)
from tests.support.processes import WebServer, wait_for

pytestmark = [pytest.mark.chaos, pytest.mark.django_db(transaction=True)]

DOWN_SECONDS = 3.0


def pgdata() -> Path:
    return Path(settings.VAR_DIR) / "pgdata"


def pg_ctl(*args: str) -> None:
    import pgserver

    binary = Path(pgserver.__file__).parent / "pginstall" / "bin" / "pg_ctl"
    # PostgreSQL refuses to run as root; pgserver runs it as its own system user.
    user = "pgserver" if os.geteuid() == 0 else None
    subprocess.run([str(binary), "-D", str(pgdata()), *args], check=True, user=user, capture_output=True, timeout=60)


def server_running() -> bool:
    return (pgdata() / "postmaster.pid").exists()


def start_postgres() -> None:
    # The options pgserver starts it with: no TCP, the Unix socket in the same directory.
    socket_dir = connection.settings_dict["HOST"]
    pg_ctl("-w", "-o", '-h ""', "-o", f"-k {socket_dir}", "-l", str(pgdata() / "log"), "start")


@pytest.fixture
def embedded_postgres():
    if os.environ.get("DATABASE_URL") or not server_running():
        pytest.skip("the test database is not the embedded PostgreSQL under ./var/, which this test restarts")
    yield
    if not server_running():
        start_postgres()
    connections.close_all()


class Traffic(threading.Thread):
    """New orders posted by a few threads, about 40 a second each, until stopped."""

    def __init__(self, ledger: Ledger, url: str, stores, *, threads: int = 4, limit: int = 3000) -> None:
        super().__init__(daemon=True)
        self.ledger, self.url, self.stores, self.threads, self.limit = ledger, url, stores, threads, limit
        self.stopping = threading.Event()
        self.ids = count(700_000)
        self.lock = threading.Lock()

    def next_delivery(self):
        with self.lock:
            order_id = next(self.ids)
        store = self.stores[order_id % len(self.stores)]
        return order_delivery(store, OrderVersion(order_id, T0, 0, "paid", (PRODUCTS[order_id % 4],)))

    def loop(self) -> None:
        while not self.stopping.is_set() and len(self.ledger.answers) < self.limit:
            self.ledger.post(self.url, self.next_delivery())
            time.sleep(0.02)

    def run(self) -> None:
        threads = [threading.Thread(target=self.loop) for _ in range(self.threads)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=30)


def processed(stores) -> int:
    return WebhookDelivery.objects.filter(store__in=stores, status=DeliveryStatus.PROCESSED).count()


def test_database_restart_under_traffic(embedded_postgres, stores, personas, process_logs, processes, start_worker):
    # A short pool timeout keeps the test fast; the answer is 503 whatever the timeout.
    web = WebServer(process_logs, "web-pg-restart", INGEST_POOL_TIMEOUT="1")
    processes.append(web)
    worker = start_worker("worker-pg-restart")
    watched = stores[0]
    ledger = Ledger()
    traffic = Traffic(ledger, web.url, stores)

    try:
        with dashboard_socket(web, watched, personas["bob"]) as socket:
            assert 'id="alerts"' in socket.recv(timeout=10)  # the full dashboard, sent on connect
            traffic.start()
            try:
                wait_for(lambda: len(ledger.acked()) >= 50 and processed(stores) >= 20, timeout=20,
                         message="traffic to flow and the worker to process it")
                pg_ctl("-w", "-m", "fast", "stop")
                down_from = time.monotonic()
                time.sleep(DOWN_SECONDS)
                down_until = time.monotonic()
                start_postgres()
                wait_for(
                    lambda: sum(1 for a in ledger.answers if a.status == 200 and a.started > down_until) >= 50,
                    timeout=30, message="the web process to answer 200 again",
                )
            finally:
                traffic.stop()
            connections.close_all()  # this process's connection died with the server

            # The listener reconnects and has every dashboard re-read the database.
            resync = receive_until(socket, 'id="low-stock"', timeout=20)
            assert 'id="low-stock"' in resync, "no full re-render after the live listener reconnected"
            assert ledger.post(web.url, probe_order(watched, 799_999)) == 200
            pushed = receive_until(socket, "#799999", timeout=30)
            assert "#799999" in pushed, "an order placed after the restart did not reach the open dashboard"

        wait_until_processed(stores, timeout=90, sweep_every=2)
    finally:
        traffic.stop()

    assert web.popen.poll() is None, "the web process exited"
    assert worker.popen.poll() is None, f"the worker exited:\n{worker.output()[-3000:]}"
    while_down = [a for a in ledger.answers if down_from <= a.at <= down_until]
    assert while_down and {a.status for a in while_down} == {503}, f"answers while down: {ledger.statuses()}"
    assert {a.status for a in ledger.answers} <= {200, 503}, f"only 200 and 503: {ledger.statuses()}"
    assert_nothing_lost(ledger, stores)
