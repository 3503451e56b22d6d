"""What OpsPulse stops keeping, run by the daily maintenance job (opspulse.ingest.tasks.maintain).

- Webhook bodies lose their personal data WEBHOOK_BODY_RETENTION_DAYS after they
  arrived, once processed (or ignored). A failed delivery keeps its body whole, so that
  it can be retried, for WEBHOOK_FAILED_BODY_RETENTION_DAYS; then it is scrubbed too and
  can no longer be retried. Pending deliveries are never touched.
- Customer data requests, and their exports, are deleted PRIVACY_EXPORT_RETENTION_DAYS
  after they arrived (opspulse.privacy.actions.remove_privacy_exports).
- Expired sessions (and the session list's rows of sessions that are gone), expired
  rows of the database cache (rate-limit counters) and the failed-signature counters of
  minutes gone by are deleted.

Finished jobs are removed by the job itself, with procrastinate's builtin task.
A period of 0 (or less) keeps that kind of data for ever.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from importlib import import_module
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from opspulse.ingest.models import DeliveryStatus, SignatureFailure, WebhookDelivery
from opspulse.privacy.actions import remove_privacy_exports

logger = logging.getLogger("opspulse.ingest")

# Bodies are up to WEBHOOK_MAX_BODY_BYTES each: a batch holds at most this many in memory.
SCRUB_BATCH_SIZE = 100

# What a scrubbed body keeps: the fields reconciliation and debugging read, which say
# nothing about the customer (a scrubbed order still parses as the order it was, less
# the customer's first name and city). Everything else goes: customer, emails, phones,
# billing and shipping addresses, names, notes, note attributes, IP addresses and
# browser details, line item properties, fulfillments, refunds, plugin meta data.
# An allowlist, because a list of personal keys would miss whatever a platform adds next.
KEPT_FIELDS = frozenset({
    # ids and references
    "id", "admin_graphql_api_id", "order_id", "parent_id", "customer_id", "number", "order_number", "name",
    "token", "shop_id", "shop_domain", "myshopify_domain", "domain", "inventory_item_id", "location_id",
    "product_id", "sku",
    # times
    "created_at", "updated_at", "processed_at", "cancelled_at", "closed_at", "completed_at",
    "date_created", "date_created_gmt", "date_modified", "date_modified_gmt", "date_paid", "date_paid_gmt",
    "date_completed", "date_completed_gmt",
    # statuses
    "status", "financial_status", "fulfillment_status", "cancel_reason", "test", "source_name", "created_via",
    "error_code", "type", "manage_stock", "stock_quantity", "available",
    # money
    "currency", "presentment_currency", "total_price", "current_total_price", "subtotal_price", "total_tax",
    "total_discounts", "total", "discount_total", "shipping_total", "prices_include_tax",
})
LINE_ITEM_FIELDS = frozenset({
    "id", "admin_graphql_api_id", "product_id", "variant_id", "variation_id", "sku", "title", "name",
    "quantity", "current_quantity", "price", "line_price", "total", "subtotal",
})


def scrubbed_payload(payload: Any) -> dict[str, Any]:
    """Return the payload with only KEPT_FIELDS (and its line items' LINE_ITEM_FIELDS), marked scrubbed."""
    if not isinstance(payload, dict):
        return {"scrubbed": True}
    kept = {key: value for key, value in payload.items() if key in KEPT_FIELDS and not isinstance(value, dict | list)}
    if isinstance(payload.get("line_items"), list):
        kept["line_items"] = [
            {key: value for key, value in item.items() if key in LINE_ITEM_FIELDS}
            for item in payload["line_items"]
            if isinstance(item, dict)
        ]
    return {**kept, "scrubbed": True}


def scrubbed_body(body: bytes) -> bytes:
    try:
        payload = json.loads(body.decode("utf-8-sig"))
    except (ValueError, RecursionError):
        payload = None  # not JSON: nothing in it is worth keeping
    return json.dumps(scrubbed_payload(payload), separators=(",", ":")).encode()


def _days_before(now: datetime, days: int) -> datetime | None:
    return now - timedelta(days=days) if days > 0 else None


def scrub_webhook_bodies(*, now: datetime | None = None, batch_size: int = SCRUB_BATCH_SIZE) -> int:
    """Remove the personal data of the webhook bodies past their retention; return how many.

    Walks the table once in id order, a batch per transaction, so it never holds many
    rows locked and a large backlog is not read in one go.
    """
    now = now or timezone.now()
    due = Q(pk__in=[])
    if cutoff := _days_before(now, settings.WEBHOOK_BODY_RETENTION_DAYS):
        due |= Q(status__in=[DeliveryStatus.PROCESSED, DeliveryStatus.IGNORED], received_at__lt=cutoff)
    if cutoff := _days_before(now, settings.WEBHOOK_FAILED_BODY_RETENTION_DAYS):
        due |= Q(status=DeliveryStatus.FAILED, received_at__lt=cutoff)
    scrubbed, last_id = 0, 0
    while True:
        with transaction.atomic():
            deliveries = list(
                WebhookDelivery.objects.select_for_update(skip_locked=True)
                .filter(due, scrubbed_at__isnull=True, pk__gt=last_id)
                .order_by("pk")
                .only("pk", "body")[:batch_size]
            )
            if not deliveries:
                break
            for delivery in deliveries:
                delivery.body = scrubbed_body(bytes(delivery.body))
                delivery.scrubbed_at = now
            WebhookDelivery.objects.bulk_update(deliveries, ["body", "scrubbed_at"])
        scrubbed += len(deliveries)
        last_id = deliveries[-1].pk
    return scrubbed


def remove_expired_sessions(*, now: datetime | None = None) -> int:
    """Delete expired sessions and the session list's rows of sessions gone; return how many sessions."""
    from allauth.usersessions.models import UserSession
    from django.contrib.sessions.models import Session

    now = now or timezone.now()
    if settings.SESSION_ENGINE in {"django.contrib.sessions.backends.db", "django.contrib.sessions.backends.cached_db"}:
        deleted, _ = Session.objects.filter(expire_date__lt=now).delete()
        UserSession.objects.exclude(session_key__in=Session.objects.values("session_key")).delete()
        return deleted
    # Other engines expire sessions themselves, or know how to (Django's clearsessions).
    import_module(settings.SESSION_ENGINE).SessionStore.clear_expired()
    return 0


def remove_expired_cache_rows(*, now: datetime | None = None) -> int:
    """Delete the expired rows of every database cache (rate-limit counters); return how many.

    Django's database cache only culls when it holds more than its maximum of entries.
    """
    now = now or timezone.now()
    deleted = 0
    for cache in settings.CACHES.values():
        if cache["BACKEND"] != "django.core.cache.backends.db.DatabaseCache":
            continue
        with connection.cursor() as cursor:
            table = connection.ops.quote_name(cache["LOCATION"])
            cursor.execute(f"DELETE FROM {table} WHERE expires < %s", [now])
            deleted += cursor.rowcount
    return deleted


def remove_old_signature_failures(*, now: datetime | None = None) -> int:
    """Delete the failed-signature counters of minutes gone by; return how many.

    The endpoint deletes them as it refuses webhooks; what is left after the last flood
    goes here.
    """
    now = now or timezone.now()
    deleted, _ = SignatureFailure.objects.filter(window_start__lt=now - timedelta(minutes=2)).delete()
    return deleted


@dataclass
class Removed:
    webhook_bodies: int
    privacy_exports: int
    sessions: int
    cache_rows: int
    signature_failures: int


def remove_expired_data(*, now: datetime | None = None) -> Removed:
    """Apply every retention rule but the jobs' (the maintenance job removes those)."""
    now = now or timezone.now()
    removed = Removed(
        webhook_bodies=scrub_webhook_bodies(now=now),
        privacy_exports=remove_privacy_exports(now=now),
        sessions=remove_expired_sessions(now=now),
        cache_rows=remove_expired_cache_rows(now=now),
        signature_failures=remove_old_signature_failures(now=now),
    )
    logger.info(
        "maintenance: %s webhook bodies scrubbed, %s data requests, %s sessions, %s cache rows and %s"
        " signature counters removed",
        removed.webhook_bodies, removed.privacy_exports, removed.sessions, removed.cache_rows,
        removed.signature_failures,
    )
    return removed
