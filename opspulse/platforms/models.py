"""How a store's records follow its platform: the import of its past, and the periodic
reconciliation with the platform.

This is sync state, not commerce: only a provider's code (platforms/<provider>/) writes
it, and every provider keeps it the same way, so it lives here, provider-neutral, for
Shopify today and WooCommerce's import and reconciliation when they come. The dashboard
reads it (opspulse.live). The tables keep the names they had in the commerce app.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class BackfillStatus(models.TextChoices):
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class Backfill(models.Model):
    """Importing a newly connected store's recent orders and current stock, page by page.

    The cursor and counts are saved with each page's records, in one transaction, so an
    interrupted import goes on from the last page it saved.
    """

    store = models.OneToOneField("stores.Store", on_delete=models.CASCADE, related_name="backfill")
    status = models.CharField(max_length=10, choices=BackfillStatus.choices, default=BackfillStatus.RUNNING)
    phase = models.CharField(max_length=20, default="orders")
    # Where the import stands in its phase: a page cursor, a bulk operation, a line.
    cursor = models.TextField(blank=True)
    orders_done = models.PositiveIntegerField(default=0)
    # What there is to import, counted on the platform when the import starts.
    orders_total = models.PositiveIntegerField(null=True, blank=True)
    items_done = models.PositiveIntegerField(default=0)
    items_total = models.PositiveIntegerField(null=True, blank=True)
    since = models.DateTimeField()
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        db_table = "commerce_backfill"

    def __str__(self) -> str:
        return f"backfill of store {self.store_id}: {self.status}"

    @property
    def orders_imported(self) -> int:
        # Orders that arrive live during the import are counted too: capped at the total.
        return self.orders_done if self.orders_total is None else min(self.orders_done, self.orders_total)

    @property
    def items_imported(self) -> int:
        return self.items_done if self.items_total is None else min(self.items_done, self.items_total)

    @property
    def percent(self) -> int | None:
        """How far the import is, 0 to 100, or None before the totals are known.

        Orders and stock items weigh the same.
        """
        if self.orders_total is None or self.items_total is None:
            return None
        total = self.orders_total + self.items_total
        if total == 0:
            return 100 if self.status == BackfillStatus.DONE else 0
        return (self.orders_imported + self.items_imported) * 100 // total


class SyncHealth(models.Model):
    """How well a store's records follow its platform: the periodic reconciliation's state.

    Orders updated on the platform since `orders_watermark` (less an overlap) are read
    again and applied with the webhooks' upserts; `corrected` counts what that changed,
    i.e. what webhooks had missed.
    """

    store = models.OneToOneField("stores.Store", on_delete=models.CASCADE, related_name="sync_health")
    orders_watermark = models.DateTimeField(null=True, blank=True)
    last_reconciled_at = models.DateTimeField(null=True, blank=True)
    last_corrected = models.PositiveIntegerField(default=0)
    total_corrected = models.PositiveIntegerField(default=0)
    subscriptions_checked_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)

    class Meta:
        db_table = "commerce_synchealth"

    def __str__(self) -> str:
        return f"sync health of store {self.store_id}"
