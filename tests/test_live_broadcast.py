"""Live messages: only committed data is announced, and it reaches every web process."""

from __future__ import annotations

import time

import psycopg
import pytest
from django.conf import settings
from django.db import transaction
from django.test import Client
from websockets.sync.client import connect

from opspulse.lib import broadcast, db
from tests.support.live import notifications
from tests.support.processes import WebServer, Worker, redis_answers
from tests.support.webhooks import post_shopify, shopify_order

pytestmark = pytest.mark.django_db(transaction=True)


def test_message_is_sent_only_when_the_transaction_commits(shopify_store):
    with psycopg.connect(db.conninfo(), autocommit=True) as listener:
        listener.execute(f"LISTEN {broadcast.NOTIFY_CHANNEL}")

        with pytest.raises(RuntimeError), transaction.atomic():
            broadcast.publish(shopify_store.public_id, {"type": "new_order", "order": "rolled-back"})
            raise RuntimeError("the write failed")
        assert notifications(listener, 0.5) == []

        with transaction.atomic():
            broadcast.publish(shopify_store.public_id, {"type": "new_order", "order": "committed"})
        assert notifications(listener, 2) == [
            {"store": str(shopify_store.public_id), "messages": [{"type": "new_order", "order": "committed"}]}
        ]


def test_a_batch_sends_one_notification_per_store(shopify_store, woo_store):
    with psycopg.connect(db.conninfo(), autocommit=True) as listener:
        listener.execute(f"LISTEN {broadcast.NOTIFY_CHANNEL}")

        with transaction.atomic(), broadcast.batch():
            for number in range(50):
                broadcast.publish(shopify_store.public_id, {"type": "new_order", "order": str(number)})
            broadcast.publish(woo_store.public_id, {"type": "cart_activity", "cart": "c1"})

        received = notifications(listener, 1)
    assert sorted((n["store"], len(n["messages"])) for n in received) == sorted(
        [(str(shopify_store.public_id), 50), (str(woo_store.public_id), 1)]
    )


def test_a_message_too_large_for_notify_is_sent_as_its_type_and_the_write_still_commits(shopify_store):
    buckets = [["revenue", "hour", f"2026-01-01T{hour:02d}:00:00+00:00", "1.00"] for hour in range(24)] * 20
    with psycopg.connect(db.conninfo(), autocommit=True) as listener:
        listener.execute(f"LISTEN {broadcast.NOTIFY_CHANNEL}")

        with transaction.atomic():
            broadcast.publish(shopify_store.public_id, {"type": "metric_update", "buckets": buckets})

        received = notifications(listener, 1)
    # Dashboards that get only the type re-read the panels it concerns.
    assert received == [{"store": str(shopify_store.public_id), "messages": [{"type": "metric_update"}]}]


@pytest.mark.parametrize("transport", ["postgres", "redis"])
def test_change_made_by_the_worker_reaches_a_socket_on_another_web_process(
    transport, process_logs, personas, shopify_store
):
    if transport == "redis" and not redis_answers(settings.REDIS_URL):
        pytest.skip(f"no Redis answers at REDIS_URL ({settings.REDIS_URL}): the Redis transport is not tested")
    env = {"LIVE_TRANSPORT": transport}
    ingest_web = WebServer(process_logs, f"ingest-{transport}", **env)
    dashboard_web = WebServer(process_logs, f"dashboard-{transport}", **env)
    worker = Worker(process_logs, f"worker-{transport}", **env)
    client = Client()
    client.force_login(personas["bob"])
    try:
        with connect(
            f"ws://127.0.0.1:{dashboard_web.port}/ws/stores/{shopify_store.public_id}/",
            additional_headers={"Cookie": f"sessionid={client.cookies['sessionid'].value}", "Origin": dashboard_web.url},
            open_timeout=10,
        ) as socket_:
            socket_.recv(timeout=10)  # the full dashboard, sent on connect

            assert post_shopify(ingest_web.url, shopify_store, "orders/create", shopify_order(5001)).status_code == 200

            deadline = time.monotonic() + 15
            pushed = ""
            while "#1001" not in pushed and time.monotonic() < deadline:
                pushed = socket_.recv(timeout=max(deadline - time.monotonic(), 0.1))
    finally:
        for process in (worker, ingest_web, dashboard_web):
            process.stop()
    assert "#1001" in pushed
    assert "Lovelace" not in pushed
