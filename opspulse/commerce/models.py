from __future__ import annotations

from django.db import models
from django.utils import timezone


class OrderStatus(models.TextChoices):
    OPEN = "open"
    PAID = "paid"
    FULFILLED = "fulfilled"
    CANCELLED = "cancelled"
    REFUNDED = "refunded"


# Orders in these states no longer count towards revenue, orders or units.
NOT_COUNTED = {OrderStatus.CANCELLED, OrderStatus.REFUNDED}


class Order(models.Model):
    store = models.ForeignKey("stores.Store", on_delete=models.CASCADE, related_name="orders")
    external_id = models.CharField(max_length=64)
    number = models.CharField(max_length=64)
    status = models.CharField(max_length=12, choices=OrderStatus.choices)
    currency = models.CharField(max_length=3)
    total = models.DecimalField(max_digits=14, decimal_places=2)
    units = models.PositiveIntegerField(default=0)
    # The only customer data OpsPulse keeps: what the live feed shows.
    customer_first_name = models.CharField(max_length=100, blank=True)
    customer_city = models.CharField(max_length=100, blank=True)
    placed_at = models.DateTimeField()
    platform_updated_at = models.DateTimeField()
    # Placed by the merchant testing checkout (Shopify's `test`): shown, marked, and never
    # counted in sales, best sellers or alerts. Once a test order, always one.
    is_test = models.BooleanField(default=False, db_default=False)
    # What this order currently contributes to the metric buckets of `placed_at`; an
    # update adjusts the buckets by the difference, so a replay changes nothing.
    counted_revenue = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    counted_units = models.IntegerField(default=0)
    counted_orders = models.IntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["store", "external_id"], name="order_store_external_unique")
        ]
        indexes = [
            models.Index(fields=["store", "-placed_at"], name="order_store_placed_idx"),
            # The dashboard's cancellations and refunds: a few orders in many.
            models.Index(
                fields=["store", "-platform_updated_at", "-id"],
                name="order_store_voided_idx",
                condition=models.Q(status__in=["cancelled", "refunded"]),
            ),
        ]

    def __str__(self) -> str:
        return f"Order {self.number}"


class LineItem(models.Model):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="line_items")
    external_id = models.CharField(max_length=64)
    product_external_id = models.CharField(max_length=64, blank=True)
    variant_external_id = models.CharField(max_length=64, blank=True)
    sku = models.CharField(max_length=100, blank=True)
    title = models.CharField(max_length=255)
    quantity = models.IntegerField()
    price = models.DecimalField(max_digits=14, decimal_places=2)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["order", "external_id"], name="line_item_order_external_unique")
        ]

    def __str__(self) -> str:
        return f"{self.quantity} × {self.title}"


class InventoryLevel(models.Model):
    store = models.ForeignKey("stores.Store", on_delete=models.CASCADE, related_name="inventory_levels")
    # Shopify: inventory item id. WooCommerce: product (or variation) id.
    item_external_id = models.CharField(max_length=64)
    location_external_id = models.CharField(max_length=64, blank=True, default="")
    sku = models.CharField(max_length=100, blank=True)
    title = models.CharField(max_length=255, blank=True)
    available = models.IntegerField()
    platform_updated_at = models.DateTimeField()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["store", "item_external_id", "location_external_id"],
                name="inventory_store_item_location_unique",
            )
        ]
        indexes = [models.Index(fields=["store", "available"], name="inventory_store_available_idx")]

    def __str__(self) -> str:
        return f"{self.display_name}: {self.available}"

    @property
    def display_name(self) -> str:
        # Shopify's inventory_levels/update names no product: until the catalogue is
        # read through the Admin API, the item is known by its inventory item id.
        return self.title or (f"SKU {self.sku}" if self.sku else f"Inventory item {self.item_external_id}")


class Cart(models.Model):
    store = models.ForeignKey("stores.Store", on_delete=models.CASCADE, related_name="carts")
    external_id = models.CharField(max_length=128)
    item_count = models.IntegerField(default=0)
    value = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    platform_created_at = models.DateTimeField()
    platform_updated_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["store", "external_id"], name="cart_store_external_unique")
        ]
        indexes = [
            # Carts active now (the last 30 minutes).
            models.Index(fields=["store", "-platform_updated_at"], name="cart_store_updated_idx"),
            # Carts created by this time of day yesterday and last week (the KPIs' comparisons).
            models.Index(fields=["store", "platform_created_at"], name="cart_store_created_idx"),
        ]

    def __str__(self) -> str:
        return f"Cart {self.external_id}"


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

    def __str__(self) -> str:
        return f"sync health of store {self.store_id}"
