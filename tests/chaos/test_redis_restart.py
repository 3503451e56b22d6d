"""Restart Redis under the Redis live transport: an order placed after the restart still
reaches a dashboard that was open before it."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time

import pytest
from django.conf import settings
from websockets.exceptions import InvalidStatus

from conftest import WebServer, Worker, wait_for
from tests.chaos.conftest import Ledger, dashboard_socket, probe_order, receive_until

pytestmark = [pytest.mark.chaos, pytest.mark.django_db(transaction=True)]

# Close codes after which the page stops reconnecting (opspulse/static/src/live.js).
ACCESS_ENDED = (4401, 4403)

# How this machine's Redis is started (CI and the development machines).
REDIS_START = [
    "redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "-::1", "--port", "6379", "--save", "",
    "--appendonly", "no", "--dir", "/var/lib/redis", "--logfile", "/var/log/redis/ci.log",
]


def redis_answers() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=0.5) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@pytest.fixture
def restartable_redis():
    if settings.REDIS_URL.rstrip("/") not in ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379"):
        pytest.skip(f"REDIS_URL is {settings.REDIS_URL}; this test restarts the Redis on 127.0.0.1:6379 only")
    if not redis_answers():
        pytest.skip("no Redis answers on 127.0.0.1:6379")
    if not (shutil.which("redis-server") and shutil.which("redis-cli")):
        pytest.skip("redis-server and redis-cli are needed to restart Redis")

    def restart() -> None:
        subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", "6379", "shutdown", "nosave"], capture_output=True, timeout=10)
        try:
            wait_for(lambda: not redis_answers(), timeout=10, message="Redis to stop")
        except AssertionError:
            pytest.skip("Redis did not stop on SHUTDOWN: it cannot be restarted from here")
        subprocess.run(REDIS_START, check=True, capture_output=True, timeout=10)
        wait_for(redis_answers, timeout=10, message="Redis to start again")

    yield restart
    if not redis_answers():
        subprocess.run(REDIS_START, check=False, capture_output=True, timeout=10)


def start_processes(process_logs, processes) -> WebServer:
    web = WebServer(process_logs, "web-redis-restart", LIVE_TRANSPORT="redis")
    processes.append(web)
    processes.append(Worker(process_logs, "worker-redis-restart", LIVE_TRANSPORT="redis"))
    return web


def reconnect_like_the_page(web, store, user, *, attempts: int = 5):
    """Open a new dashboard socket, retrying a refused handshake a second later as the
    page does; return the socket and the refusals."""
    refusals = []
    for _ in range(attempts):
        try:
            return dashboard_socket(web, store, user), refusals
        except InvalidStatus as exc:
            refusals.append(str(exc))
            time.sleep(1)
    raise AssertionError(f"the dashboard could not reconnect: {refusals}")


def test_dashboard_gets_orders_placed_after_a_redis_restart(
    restartable_redis, shopify_store, personas, process_logs, processes
):
    web = start_processes(process_logs, processes)
    user = personas["bob"]
    ledger = Ledger()

    with dashboard_socket(web, shopify_store, user) as first:
        assert 'id="alerts"' in first.recv(timeout=10)  # the full dashboard, sent on connect
        assert ledger.post(web.url, probe_order(shopify_store, 810_001)) == 200
        assert "#810001" in receive_until(first, "#810001", timeout=15), "the transport works before the restart"

        restartable_redis()
        assert ledger.post(web.url, probe_order(shopify_store, 810_002)) == 200
        # Either the open socket gets the order, or the server closes it (its channel
        # layer connection died) and the page reconnects; never open and silent.
        pushed = receive_until(first, "#810002", timeout=20)
    if "#810002" in pushed:
        return
    assert first.close_code is not None, "the socket stayed open but the order never came"
    assert first.close_code not in ACCESS_ENDED, f"closed with {first.close_code}: the page would not reconnect"
    second, _ = reconnect_like_the_page(web, shopify_store, user)
    with second:
        assert "#810002" in receive_until(second, "#810002", timeout=20), "the reconnected page misses the order"
        assert ledger.post(web.url, probe_order(shopify_store, 810_003)) == 200
        assert "#810003" in receive_until(second, "#810003", timeout=20), "no live push after the restart"


def test_reconnecting_after_a_redis_restart_is_not_refused(
    restartable_redis, shopify_store, personas, process_logs, processes
):
    web = start_processes(process_logs, processes)
    user = personas["bob"]
    with dashboard_socket(web, shopify_store, user) as first:
        first.recv(timeout=10)
        restartable_redis()
        receive_until(first, "never sent", timeout=5)

    second, refusals = reconnect_like_the_page(web, shopify_store, user)
    with second:
        assert refusals == []
