"""Restart Redis under the Redis live transport: an order placed after the restart still
reaches a dashboard that was open before it. The Redis restarted is the test's own, on
a free port; the machine's shared one is never touched."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator

import pytest
from websockets.exceptions import InvalidStatus

from tests.support.chaos import Ledger, dashboard_socket, probe_order, receive_until
from tests.support.processes import RedisServer, WebServer, Worker

pytestmark = [pytest.mark.chaos, pytest.mark.django_db(transaction=True)]

# Close codes after which the page stops reconnecting (opspulse/static/src/live.js).
ACCESS_ENDED = (4401, 4403)

@pytest.fixture
def private_redis(tmp_path) -> Iterator[RedisServer]:
    """A Redis of the test's own on a free port, which it may stop and start."""
    if not shutil.which("redis-server"):
        pytest.skip("redis-server is not installed: the Redis restart cannot be tested (`make test` installs it)")
    server = RedisServer(tmp_path)
    yield server
    server.stop()


def start_processes(process_logs, processes, redis: RedisServer) -> WebServer:
    web = WebServer(process_logs, "web-redis-restart", LIVE_TRANSPORT="redis", REDIS_URL=redis.url)
    processes.append(web)
    processes.append(Worker(process_logs, "worker-redis-restart", LIVE_TRANSPORT="redis", REDIS_URL=redis.url))
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
    private_redis, shopify_store, personas, process_logs, processes
):
    web = start_processes(process_logs, processes, private_redis)
    user = personas["bob"]
    ledger = Ledger()

    with dashboard_socket(web, shopify_store, user) as first:
        assert 'id="alerts"' in first.recv(timeout=10)  # the full dashboard, sent on connect
        assert ledger.post(web.url, probe_order(shopify_store, 810_001)) == 200
        assert "#810001" in receive_until(first, "#810001", timeout=15), "the transport works before the restart"

        private_redis.restart()
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
    private_redis, shopify_store, personas, process_logs, processes
):
    web = start_processes(process_logs, processes, private_redis)
    user = personas["bob"]
    with dashboard_socket(web, shopify_store, user) as first:
        first.recv(timeout=10)
        private_redis.restart()
        receive_until(first, "never sent", timeout=5)

    second, refusals = reconnect_like_the_page(web, shopify_store, user)
    with second:
        assert refusals == []
