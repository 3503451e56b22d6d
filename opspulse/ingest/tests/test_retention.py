"""Nothing grows forever: the daily maintenance job scrubs old webhook bodies and removes
old privacy exports, finished jobs, expired sessions and expired rate-limit rows.

Each rule is shown with the clock moved: real rows whose times are set in the past."""

from __future__ import annotations

import dataclasses
import json
from datetime import timedelta
from pathlib import Path

import pytest
from allauth.usersessions.models import UserSession
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
from django.core.cache import cache
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from config import worker
from opspulse.ingest import actions, retention
from opspulse.ingest.models import DeliveryStatus, SignatureFailure, WebhookDelivery
from opspulse.platforms import registry
from opspulse.privacy import actions as privacy
from opspulse.privacy.models import CustomerDataRequest

pytestmark = pytest.mark.django_db

PLATFORMS = Path(__file__).resolve().parents[2] / "platforms"
SHOPIFY_ORDER = (PLATFORMS / "shopify" / "fixtures" / "orders_create.json").read_bytes()
WOO_ORDER = (PLATFORMS / "woocommerce" / "fixtures" / "order_created.json").read_bytes()
# Everything in those two orders that is about the customer.
PERSONAL = [
    "olivia", "nguyen", "Atlantic", "Brooklyn", "11201", "203.0.113", "Mozilla", "en-US,en",
    "camille", "moreau", "Rue de la R", "Lyon", "69002", "+33 4", "www.google.com",
]


def delivery(store, *, days_ago: float, status: str = DeliveryStatus.PROCESSED, body: bytes = SHOPIFY_ORDER,
             topic: str = "orders/create", key: str | None = None) -> WebhookDelivery:
    received = timezone.now() - timedelta(days=days_ago)
    return WebhookDelivery.objects.create(
        store=store, platform=store.platform, topic=topic, delivery_key=key or f"{status}-{days_ago}-{topic}",
        received_at=received, body=body, status=status,
        processed_at=None if status == DeliveryStatus.PENDING else received,
        error="disk on fire" if status == DeliveryStatus.FAILED else "",
    )


def body_of(delivery: WebhookDelivery) -> bytes:
    return bytes(WebhookDelivery.objects.get(pk=delivery.pk).body)


def parsed(platform: str, topic: str, body: bytes):
    return registry.parser_for(platform, topic)(json.loads(body))


def test_processed_webhook_bodies_lose_personal_data_after_seven_days(shopify_store):
    old = delivery(shopify_store, days_ago=8)
    recent = delivery(shopify_store, days_ago=6)

    scrubbed = retention.scrub_webhook_bodies()

    assert scrubbed == 1
    body = body_of(old).decode()
    assert [value for value in PERSONAL if value.lower() in body.lower()] == []
    assert WebhookDelivery.objects.get(pk=old.pk).scrubbed_at is not None
    assert body_of(recent) == SHOPIFY_ORDER
    assert WebhookDelivery.objects.get(pk=recent.pk).scrubbed_at is None


@pytest.mark.parametrize(
    ("platform", "topic", "body"),
    [("shopify", "orders/create", SHOPIFY_ORDER), ("woocommerce", "order.created", WOO_ORDER)],
    ids=["shopify_case", "woocommerce_case"],
)
def test_a_scrubbed_order_still_reads_as_the_same_order_without_its_customer(platform, topic, body):
    before = parsed(platform, topic, body)

    after = parsed(platform, topic, retention.scrubbed_body(body))

    scrubbed_text = retention.scrubbed_body(body).decode().lower()
    assert [value for value in PERSONAL if value.lower() in scrubbed_text] == []
    assert "email" not in scrubbed_text and "phone" not in scrubbed_text
    assert (before.customer_first_name, before.customer_city) != ("", "")
    assert after == dataclasses.replace(before, customer_first_name="", customer_city="")


def test_stock_and_cart_webhooks_keep_what_they_are_read_for():
    for topic, name in [("inventory_levels/update", "inventory_levels_update"), ("carts/create", "carts_create")]:
        body = (PLATFORMS / "shopify" / "fixtures" / f"{name}.json").read_bytes()
        assert parsed("shopify", topic, retention.scrubbed_body(body)) == parsed("shopify", topic, body)


def test_a_body_that_is_not_json_is_scrubbed_whole():
    assert json.loads(retention.scrubbed_body(b"name=Olivia&email=olivia@example.com")) == {"scrubbed": True}


def test_failed_webhooks_keep_their_body_for_a_retry_for_thirty_days_then_are_scrubbed(shopify_store):
    pending = delivery(shopify_store, days_ago=40, status=DeliveryStatus.PENDING)
    failed_recently = delivery(shopify_store, days_ago=8, status=DeliveryStatus.FAILED)
    failed_long_ago = delivery(shopify_store, days_ago=31, status=DeliveryStatus.FAILED)

    retention.scrub_webhook_bodies()

    assert body_of(pending) == SHOPIFY_ORDER
    assert body_of(failed_recently) == SHOPIFY_ORDER
    assert b"olivia" not in body_of(failed_long_ago)
    # Scrubbed, it is no longer offered for a retry.
    assert actions.retry_failed_deliveries(store_ids=[shopify_store.pk]) == 1
    assert WebhookDelivery.objects.get(pk=failed_long_ago.pk).status == DeliveryStatus.FAILED


def test_retention_periods_come_from_the_settings_and_zero_keeps_for_ever(shopify_store, settings):
    settings.WEBHOOK_BODY_RETENTION_DAYS = 2
    settings.WEBHOOK_FAILED_BODY_RETENTION_DAYS = 0
    three_days = delivery(shopify_store, days_ago=3)
    failed = delivery(shopify_store, days_ago=400, status=DeliveryStatus.FAILED)

    assert retention.scrub_webhook_bodies() == 1

    assert b"olivia" not in body_of(three_days)
    assert body_of(failed) == SHOPIFY_ORDER


def test_scrubbing_a_large_backlog_goes_batch_by_batch_and_each_once(shopify_store):
    for number in range(7):
        delivery(shopify_store, days_ago=9, key=f"order-{number}")

    first = retention.scrub_webhook_bodies(batch_size=3)
    again = retention.scrub_webhook_bodies(batch_size=3)

    assert (first, again) == (7, 0)
    assert WebhookDelivery.objects.filter(scrubbed_at__isnull=True).count() == 0


def test_privacy_exports_are_removed_after_seven_days(shopify_store):
    old, recent = (
        CustomerDataRequest.objects.create(
            store=shopify_store, external_id=external_id, customer_email="olivia.nguyen@example.com",
            export={"customer": {"email": "olivia.nguyen@example.com"}},
        )
        for external_id in ("old", "recent")
    )
    CustomerDataRequest.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=7, hours=1))
    CustomerDataRequest.objects.filter(pk=recent.pk).update(created_at=timezone.now() - timedelta(days=6))

    assert privacy.remove_privacy_exports() == 1

    assert list(CustomerDataRequest.objects.values_list("external_id", flat=True)) == ["recent"]


def test_the_data_requests_page_tells_admins_when_exports_are_deleted(shopify_store, personas, settings):
    settings.PRIVACY_EXPORT_RETENTION_DAYS = 3
    client = Client()
    client.force_login(personas["alice"])

    page = client.get(reverse("store-data-requests", args=[shopify_store.public_id])).content.decode()

    assert "A request and its export are deleted 3 days after they arrived." in page


def test_expired_sessions_and_their_session_list_rows_are_removed(personas):
    sessions = {}
    for name, expiry in [("expired", timedelta(seconds=-1)), ("valid", timedelta(days=1))]:
        store = SessionStore()
        store["_auth_user_id"] = str(personas["alice"].pk)
        store.set_expiry(timezone.now() + expiry)
        store.create()
        sessions[name] = store.session_key
        UserSession.objects.create(user=personas["alice"], ip="127.0.0.1", session_key=store.session_key,
                                   user_agent="test")

    assert retention.remove_expired_sessions() == 1

    assert list(Session.objects.values_list("session_key", flat=True)) == [sessions["valid"]]
    assert list(UserSession.objects.values_list("session_key", flat=True)) == [sessions["valid"]]


def test_expired_rate_limit_rows_are_removed_from_the_database_cache():
    cache.set("rl:login_failed:ip:203.0.113.9", [1], timeout=60)
    cache.set("rl:signup:ip:203.0.113.9", [1], timeout=3600)

    removed = retention.remove_expired_cache_rows(now=timezone.now() + timedelta(minutes=5))

    assert removed == 1
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM opspulse_cache")
        assert cursor.fetchone()[0] == 1
    assert cache.get("rl:signup:ip:203.0.113.9") == [1]


def test_failed_signature_counters_of_minutes_gone_by_are_removed():
    """A flood of forged webhooks leaves a counter per client address; the last ones go too."""
    now = timezone.now()
    SignatureFailure.objects.create(client="203.0.113.9", window_start=now - timedelta(hours=1), failures=60)
    SignatureFailure.objects.create(client="198.51.100.7", window_start=now, failures=3)

    removed = retention.remove_old_signature_failures(now=now)

    assert removed == 1
    assert list(SignatureFailure.objects.values_list("client", flat=True)) == ["198.51.100.7"]


def finished_job(status: str, *, days_ago: float) -> int:
    """A job of the queue, run and ended `days_ago` (its events moved back in time)."""
    from opspulse.ingest.tasks import drain_lane

    job_id = drain_lane.configure(queueing_lock=None, lock=None).defer(lane=0)
    with connection.cursor() as cursor:
        cursor.execute("UPDATE procrastinate_jobs SET status = 'doing' WHERE id = %s", [job_id])
        cursor.execute("UPDATE procrastinate_jobs SET status = %s WHERE id = %s", [status, job_id])
        cursor.execute("UPDATE procrastinate_events SET at = now() - make_interval(days => %s) WHERE job_id = %s",
                       [days_ago, job_id])
    return job_id


@pytest.mark.django_db(transaction=True)
def test_the_daily_maintenance_job_applies_every_rule_on_its_own_queue(shopify_store):
    from procrastinate.contrib.django import app

    from opspulse.ingest.tasks import MAINTENANCE_QUEUE, maintain

    old_body = delivery(shopify_store, days_ago=8)
    old_jobs = [finished_job("failed", days_ago=31), finished_job("succeeded", days_ago=31)]
    recent_job = finished_job("failed", days_ago=29)
    cache.set("rl:login_failed:ip:203.0.113.9", [1], timeout=1)
    with connection.cursor() as cursor:
        cursor.execute("UPDATE opspulse_cache SET expires = now() - interval '1 minute'")
    maintain.defer(timestamp=0)

    with app.replace_connector(app.connector.get_worker_connector()) as worker_app:
        worker_app.run_worker(queues=[MAINTENANCE_QUEUE], wait=False, install_signal_handlers=False,
                              listen_notify=False)

    assert b"olivia" not in body_of(old_body)
    with connection.cursor() as cursor:
        cursor.execute("SELECT id FROM procrastinate_jobs WHERE id = ANY(%s) OR id = %s", [old_jobs, recent_job])
        assert [row[0] for row in cursor.fetchall()] == [recent_job]
        cursor.execute("SELECT count(*) FROM opspulse_cache")
        assert cursor.fetchone()[0] == 0
    # Daily, on a queue of its own that the worker serves (never the drain's).
    schedule = {
        (periodic.task.name, periodic.cron, periodic.task.queue)
        for periodic in app.periodic_registry.periodic_tasks.values()
        if periodic.periodic_id == "maintenance"
    }
    assert schedule == {("opspulse.ingest.maintain", "17 3 * * *", "maintenance")}
    assert MAINTENANCE_QUEUE in worker.QUEUES

