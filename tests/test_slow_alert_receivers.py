"""One merchant's alert receivers cannot slow down anyone's webhooks.

Attack: a merchant points alert webhooks at a tarpit (one byte every 0.5 s) and at a
receiver answering 200 MiB, then fires ten alerts. Before, the posts took every worker
slot for as long as the tarpit dripped and buffered the whole 200 MiB reply, so webhook
processing stopped for every store.
"""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.test import Client
from procrastinate.contrib.django.models import ProcrastinateJob
from websockets.sync.client import connect

from opspulse.alerts import actions as alert_actions
from opspulse.alerts.models import Alert, AlertType, ChannelDelivery, DeliveryAttempt, ChannelDeliveryStatus
from opspulse.commerce import actions
from tests.support.alerts import RawReceiver
from tests.support.processes import Process, process_env
from tests.support.stores import SHOPIFY_SECRET, make_store
from tests.support.webhooks import post_shopify, shopify_order

pytestmark = pytest.mark.django_db(transaction=True)

DEADLINE_SECONDS = 1.5
HUGE_REPLY_BYTES = 200 * 1024 * 1024


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_slow_and_huge_alert_receivers_of_one_account_do_not_delay_another_accounts_dashboard(
    web, personas, process_logs
):
    alerting = [
        make_store(personas["account"], platform="shopify", domain=f"alice-{n}.myshopify.com", secret=SHOPIFY_SECRET)
        for n in (1, 2)
    ]
    other = make_store(personas["other_account"], platform="shopify", domain="charlie-chairs.myshopify.com",
                       secret=SHOPIFY_SECRET)
    tarpit, huge = RawReceiver(drip_seconds=0.5), RawReceiver(body_bytes=HUGE_REPLY_BYTES)
    for store, receiver in zip(alerting, (tarpit, huge), strict=True):
        Alert.objects.create(store=store, type=AlertType.HIGH_VALUE_ORDER, config={"threshold": "100.00"})
        alert_actions.create_channel(account=store.account, store=store, kind="webhook", name="Ops", url=receiver.url)
    worker = Process(
        [sys.executable, "manage.py", "worker", "--concurrency", "ingest=2,alerts=4,shopify=1,maintenance=1"],
        process_env(
            PGAPPNAME="opspulse-test-slow-receivers", OUTBOUND_ALLOW_PRIVATE_ADDRESSES="1",
            ALERT_WEBHOOK_TIMEOUT_SECONDS=str(DEADLINE_SECONDS), ALERT_DELIVERIES_PER_ACCOUNT="2",
        ),
        process_logs / "worker-slow-receivers.log",
    )
    client = Client()
    client.force_login(personas["charlie"])
    latencies: list[float] = []
    rss: list[float] = []
    try:
        with connect(
            f"ws://127.0.0.1:{web.port}/ws/stores/{other.public_id}/",
            additional_headers={"Cookie": f"sessionid={client.cookies['sessionid'].value}", "Origin": web.url},
            open_timeout=10,
        ) as dashboard:
            dashboard.recv(timeout=10)  # the full dashboard, sent on connect
            # The worker is up once it processes a first order of the other account.
            assert post_shopify(web.url, other, "orders/create", shopify_order(6000)).status_code == 200
            read_until(dashboard, "#2000", within=30)
            rss.append(rss_mib(worker.popen.pid))

            now = datetime.now(UTC)
            for n in range(10):  # ten alerts, five to each receiver
                actions.record_order(store=alerting[n % 2], data=actions.OrderData(
                    external_id=str(n), number=f"#A{n}", status="paid", currency="EUR", total=Decimal("950.00"),
                    placed_at=now, updated_at=now,
                ))
            wait_until(lambda: tarpit.accepted > 0, within=10, what="the tarpit is reached")

            for order_id in range(6001, 6009):
                started = time.monotonic()
                assert post_shopify(web.url, other, "orders/create", shopify_order(order_id, at=now)).status_code == 200
                read_until(dashboard, f"#{order_id - 4000}", within=10)
                latencies.append(time.monotonic() - started)
                rss.append(rss_mib(worker.popen.pid))
                time.sleep(0.3)

            def every_delivery_tried() -> bool:
                rss.append(rss_mib(worker.popen.pid))
                return not ChannelDelivery.objects.filter(attempts=0).exists()

            wait_until(every_delivery_tried, within=20, what="every delivery is tried")
    finally:
        worker.stop()
        tarpit.close()
        huge.close()

    assert worker.popen.returncode == 0, worker.output()  # SIGTERM stops every queue's worker cleanly
    assert max(latencies) < 2, latencies
    assert max(rss) - rss[0] < 100, rss  # the 200 MiB replies were not read
    # At most ALERT_DELIVERIES_PER_ACCOUNT posts of the account were under way at once.
    assert most_at_once(DeliveryAttempt.objects.all()) == 2
    deliveries = ChannelDelivery.objects.select_related("channel")
    assert deliveries.count() == 10
    for delivery in deliveries:
        slow = delivery.channel.url == tarpit.url
        expected = f"timed out after {DEADLINE_SECONDS:g} s" if slow else "reply too large"
        assert delivery.status == ChannelDeliveryStatus.PENDING
        assert {(attempt.status_code, attempt.error) for attempt in delivery.attempt_log.all()} == {(None, expected)}
        # Each is retried later, as any failed post is.
        assert ProcrastinateJob.objects.filter(
            task_name="opspulse.alerts.deliver_to_channel", args={"delivery_id": delivery.pk}, status="todo"
        ).exists()


def most_at_once(attempts) -> int:
    """The most attempts that were under way at the same moment."""
    edges = []
    for attempt in attempts:
        edges += [(attempt.started_at, 1), (attempt.started_at + timedelta(milliseconds=attempt.duration_ms), -1)]
    running = most = 0
    for _, change in sorted(edges, key=lambda edge: (edge[0], edge[1])):
        running += change
        most = max(most, running)
    return most


def read_until(dashboard, text: str, *, within: float) -> str:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            frame = dashboard.recv(timeout=max(deadline - time.monotonic(), 0.05))
        except TimeoutError:
            break
        if text in frame:
            return frame
    raise AssertionError(f"{text} did not reach the dashboard within {within} s")


def wait_until(predicate, *, within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting until {what}")
