"""Reads of the webhook deliveries, for the dashboard and for alerts' sync check.

Alerts sits below ingest and reads these through the functions registered from
IngestConfig.ready() (opspulse.alerts.conditions.read_webhooks_with).
"""

from __future__ import annotations

from datetime import datetime

from django.db.models import Max, QuerySet

from opspulse.ingest.models import DeliveryStatus, WebhookDelivery


def retryable_deliveries() -> QuerySet[WebhookDelivery]:
    """Deliveries marked failed whose body is still whole, so that a retry can process them."""
    return WebhookDelivery.objects.filter(status=DeliveryStatus.FAILED, scrubbed_at__isnull=True)


def last_webhook_at(store_id: int) -> datetime | None:
    """When the store's latest webhook arrived; None before the first."""
    return WebhookDelivery.objects.filter(store_id=store_id).aggregate(last=Max("received_at"))["last"]


def retryable_count(store_id: int) -> int:
    """How many of the store's failed deliveries can still be retried."""
    return retryable_deliveries().filter(store_id=store_id).count()
