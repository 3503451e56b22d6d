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
