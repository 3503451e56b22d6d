from __future__ import annotations

from django.db import models


class AlertType(models.TextChoices):
    HIGH_VALUE_ORDER = "high_value_order", "High-value order"
    LOW_STOCK = "low_stock", "Low stock"


class Alert(models.Model):
    """An alert rule. config: high_value_order {"threshold": "500.00"}, low_stock {"threshold": 5}."""

    store = models.ForeignKey("stores.Store", on_delete=models.CASCADE, related_name="alerts")
    type = models.CharField(max_length=20, choices=AlertType.choices)
    config = models.JSONField(default=dict)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.get_type_display()} on store {self.store_id}"


class AlertEvent(models.Model):
    """A fired alert: the outbox row that in-page and email notices are sent from."""

    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="events")
    store = models.ForeignKey("stores.Store", on_delete=models.CASCADE, related_name="alert_events")
    # What fired it, e.g. "order:<external id>": one event per alert and cause.
    subject = models.CharField(max_length=200)
    message = models.CharField(max_length=500)
    data = models.JSONField(default=dict)
    fired_at = models.DateTimeField(auto_now_add=True)
    notified_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["alert", "subject"], name="alert_event_subject_unique")
        ]
        # The dashboard's alert panel reads a store's latest events.
        indexes = [models.Index(fields=["store", "-fired_at", "-id"], name="alert_event_store_recent_idx")]

    def __str__(self) -> str:
        return self.message
