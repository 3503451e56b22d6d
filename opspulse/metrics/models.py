from __future__ import annotations

from django.db import models


class Granularity(models.TextChoices):
    HOUR = "hour"
    DAY = "day"


class MetricName(models.TextChoices):
    REVENUE = "revenue"
    ORDERS = "orders"
    UNITS_SOLD = "units_sold"
    CARTS = "carts"


class Metric(models.Model):
    """One bucket of one metric: hour buckets start on the hour, day buckets at local
    midnight in the store's timezone."""

    store = models.ForeignKey("stores.Store", on_delete=models.CASCADE, related_name="metrics")
    name = models.CharField(max_length=20, choices=MetricName.choices)
    granularity = models.CharField(max_length=5, choices=Granularity.choices)
    timestamp = models.DateTimeField()
    value = models.DecimalField(max_digits=16, decimal_places=2, default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["store", "name", "granularity", "timestamp"], name="metric_bucket_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.name}/{self.granularity} {self.timestamp:%Y-%m-%d %H:%M} = {self.value}"


class ProductDay(models.Model):
    """One product's sales on one local day of a store: the units and revenue of the line
    items of its counted orders, changed only by deltas, as the metric buckets are.

    Today's best sellers are read from here, so they cost the same however many orders
    the day has.
    """

    store = models.ForeignKey("stores.Store", on_delete=models.CASCADE, related_name="product_days")
    day = models.DateField(help_text="The local date in the store's timezone.")
    # The platform's product id; the title for a custom item, which has none.
    product_key = models.CharField(max_length=255)
    title = models.CharField(max_length=255)
    units = models.IntegerField(default=0)
    revenue = models.DecimalField(max_digits=16, decimal_places=2, default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["store", "day", "product_key"], name="product_day_unique")
        ]

    def __str__(self) -> str:
        return f"{self.day:%Y-%m-%d} {self.title}: {self.units} units, {self.revenue}"
