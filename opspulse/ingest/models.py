from __future__ import annotations

from django.db import models


class DeliveryStatus(models.TextChoices):
    PENDING = "pending"
    PROCESSED = "processed"
    # Stored but not processed: a topic OpsPulse does not handle, or a store deleted or
    # disconnected (see `error`). A payload that cannot be parsed is FAILED.
    IGNORED = "ignored"
    FAILED = "failed"


class WebhookDelivery(models.Model):
    """One webhook as it arrived: the ingest log, the dedupe key and the work queue.

    Rows are written by the ingest endpoint (opspulse.ingest.endpoint, plain SQL) and
    drained in id order, per store, by opspulse.ingest.tasks.drain_lane.
    """

    # Indexed by delivery_store_latest_idx, which starts with the store.
    store = models.ForeignKey("stores.Store", on_delete=models.CASCADE, related_name="deliveries", db_index=False)
    platform = models.CharField(max_length=20)
    topic = models.CharField(max_length=100)
    # Shopify: X-Shopify-Webhook-Id. WooCommerce sends a new delivery id on every
    # attempt, so its key is the webhook id plus a digest of the body.
    delivery_key = models.CharField(max_length=200)
    event_id = models.CharField(max_length=100, blank=True)
    received_at = models.DateTimeField()
    headers = models.JSONField(default=dict)
    body = models.BinaryField()
    status = models.CharField(
        max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    error = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0)
    # After a failed attempt the delivery (and the store's later ones) waits until then.
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    # When the body lost its personal data (opspulse.ingest.retention); None: as it arrived.
    scrubbed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "ingest_webhook_delivery"
        verbose_name_plural = "webhook deliveries"
        constraints = [
            models.UniqueConstraint(
                fields=["platform", "store", "delivery_key"], name="delivery_key_unique"
            )
        ]
        indexes = [
            models.Index(
                fields=["store", "id"],
                name="delivery_pending_idx",
                condition=models.Q(status="pending"),
            ),
            # A store's deliveries (its foreign key's lookups) and its latest one, for
            # the sync status on the dashboard: one index, so inserts pay for one.
            models.Index(fields=["store", "-received_at"], name="delivery_store_latest_idx"),
            # A store's failed deliveries, for its sync status and the sync-trouble alert.
            models.Index(
                fields=["store", "-processed_at"],
                name="delivery_failed_idx",
                condition=models.Q(status="failed"),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.platform} {self.topic} #{self.pk}"


class SignatureFailure(models.Model):
    """Failed webhook signatures from one client address in the current minute.

    Written by the ingest endpoint (plain SQL) on a refusal only, so every web process
    counts against the same limit (WEBHOOK_FAILED_SIGNATURES_PER_MINUTE); rows of
    minutes gone by are deleted by the endpoint as it goes.
    """

    # An IPv4 address, or the /64 network of an IPv6 one.
    client = models.CharField(max_length=64, primary_key=True)
    window_start = models.DateTimeField(db_index=True)
    failures = models.PositiveIntegerField(default=0)

    class Meta:
        db_table = "ingest_signature_failure"

    def __str__(self) -> str:
        return f"{self.client}: {self.failures} failed signatures since {self.window_start:%H:%M}"
