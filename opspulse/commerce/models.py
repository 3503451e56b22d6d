from __future__ import annotations

from django.db import models


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
