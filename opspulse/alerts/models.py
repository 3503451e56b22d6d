from __future__ import annotations

import uuid
from urllib.parse import urlsplit

from django.conf import settings
from django.db import models
from django.db.models import Q

from opspulse.lib import crypto


class AlertType(models.TextChoices):
    HIGH_VALUE_ORDER = "high_value_order", "High-value order"
    LOW_STOCK = "low_stock", "Low stock"
    NO_ORDERS = "no_orders", "No orders"
    REVENUE_DROP = "revenue_drop", "Revenue down"
    SYNC_TROUBLE = "sync_trouble", "Sync trouble"


# Rules about a lasting condition: they fire once when it starts and resolve when it ends.
CONDITION_TYPES = frozenset({AlertType.LOW_STOCK, AlertType.NO_ORDERS, AlertType.REVENUE_DROP, AlertType.SYNC_TROUBLE})
# Rules that the clock can make true without any webhook: evaluated by the periodic job.
TIMED_TYPES = frozenset({AlertType.NO_ORDERS, AlertType.REVENUE_DROP, AlertType.SYNC_TROUBLE})
# A rule about single orders looks only at orders placed this recently (unless its config
# says otherwise): one that reaches OpsPulse later (a delayed or retried webhook) is not news.
RECENT_ORDER_MINUTES = 60


class Alert(models.Model):
    """An alert rule of a store. `config` by type (opspulse.alerts.forms writes it):

    high_value_order {"threshold": "500.00", "window_minutes": 60} (store currency; orders placed that recently)
    low_stock {"threshold": 5, "sku": "", "location": ""} (sku/location: "" for any)
    no_orders {"hours": 3, "weekdays": [0..6], "start": "09:00", "end": "18:00"} (store time)
    revenue_drop {"percent": 30, "minimum": "100.00"} (yesterday's revenue by this time)
    sync_trouble {"integration_error": true, "webhook_hours": 6, "failed_deliveries": true} (0: not watched)
    """

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    store = models.ForeignKey("stores.Store", on_delete=models.CASCADE, related_name="alerts")
    type = models.CharField(max_length=20, choices=AlertType.choices)
    config = models.JSONField(default=dict)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.get_type_display()} on store {self.store_id}"


class AlertEvent(models.Model):
    """A fired alert: the outbox row that live, email and webhook notices are sent from."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="events")
    store = models.ForeignKey("stores.Store", on_delete=models.CASCADE, related_name="alert_events")
    # What fired it, e.g. "order:<external id>": one event per alert and cause.
    subject = models.CharField(max_length=200)
    # For condition rules, the condition it is an episode of (e.g. "stock:<item>:<location>"):
    # at most one unresolved event per alert and condition. Empty for one-off events.
    condition = models.CharField(max_length=200, blank=True, default="")
    message = models.CharField(max_length=500)
    data = models.JSONField(default=dict)
    fired_at = models.DateTimeField(auto_now_add=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # When its email and webhook deliveries were queued (opspulse.alerts.tasks.dispatch_event).
    notified_at = models.DateTimeField(null=True, blank=True)
    # When the webhooks that got the alert were queued its resolution (None: not yet).
    resolution_notified_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["alert", "subject"], name="alert_event_subject_unique"),
            models.UniqueConstraint(
                fields=["alert", "condition"],
                condition=Q(resolved_at__isnull=True) & ~Q(condition=""),
                name="alert_event_one_open_episode",
            ),
        ]
        indexes = [
            # The dashboard's alert panel reads a store's latest events.
            models.Index(fields=["store", "-fired_at", "-id"], name="alert_event_store_recent_idx"),
            # And counts those nobody has acknowledged.
            models.Index(fields=["store"], name="alert_event_unacked_idx", condition=Q(acknowledged_at__isnull=True)),
        ]

    def __str__(self) -> str:
        return self.message

    @property
    def is_open(self) -> bool:
        return bool(self.condition) and self.resolved_at is None


class AlertPreference(models.Model):
    """How one member of an account wants its alerts by email. No row: one mail per alert."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="alert_preferences")
    account = models.ForeignKey("accounts.Account", on_delete=models.CASCADE, related_name="alert_preferences")
    email_enabled = models.BooleanField(default=True)
    # One mail a day at `digest_hour` (the user's time) instead of one per alert.
    daily_digest = models.BooleanField(default=False)
    digest_hour = models.PositiveSmallIntegerField(default=8)
    timezone = models.CharField(max_length=64, default="UTC")
    # Mails are held between these times (the user's time; may span midnight).
    quiet_start = models.TimeField(null=True, blank=True)
    quiet_end = models.TimeField(null=True, blank=True)
    last_digest_on = models.DateField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "account"], name="alert_preference_unique")]

    def __str__(self) -> str:
        return f"Alert mail of user {self.user_id} in account {self.account_id}"


class DeliveryKind(models.TextChoices):
    FIRED = "fired"
    RESOLVED = "resolved"


class AlertNotification(models.Model):
    """An alert (its firing, or its resolution) to mail to one member: pending until
    `sent_at` (held, digested or due)."""

    event = models.ForeignKey(AlertEvent, on_delete=models.CASCADE, related_name="notifications")
    kind = models.CharField(max_length=10, choices=DeliveryKind.choices, default=DeliveryKind.FIRED)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="alert_notifications")
    account = models.ForeignKey("accounts.Account", on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    # Taken by a sending job: another job leaves it alone until the claim is stale.
    claimed_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["event", "user", "kind"], name="alert_notification_kind_unique")
        ]
        indexes = [
            models.Index(fields=["user", "account"], name="alert_notification_pending_idx",
                         condition=Q(sent_at__isnull=True)),
        ]

    def __str__(self) -> str:
        return f"Alert {self.event_id} for user {self.user_id}"


class ChannelKind(models.TextChoices):
    SLACK = "slack", "Slack-compatible"
    WEBHOOK = "webhook", "Webhook (JSON)"


class AlertChannel(models.Model):
    """A URL that alerts are posted to, signed with the channel's own secret.

    A channel with a store gets that store's alerts; one without gets the alerts of every
    store of its account, stores added later included. A store's channel belongs to the
    store's account (opspulse.alerts.actions.create_channel sets both).
    """

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    account = models.ForeignKey("accounts.Account", on_delete=models.CASCADE, related_name="alert_channels")
    store = models.ForeignKey(
        "stores.Store", on_delete=models.CASCADE, null=True, blank=True, related_name="alert_channels"
    )
    kind = models.CharField(max_length=10, choices=ChannelKind.choices)
    name = models.CharField(max_length=100)
    # The URL is a credential too (a Slack webhook URL is all it takes to post to the room).
    url_encrypted = models.TextField()
    secret_encrypted = models.TextField()
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name

    @property
    def is_account_wide(self) -> bool:
        return self.store_id is None

    def associated_data(self, field: str = "secret") -> str:
        return f"alerts.alertchannel:{self.public_id}:{field}"

    @property
    def secret(self) -> str:
        return crypto.decrypt(self.secret_encrypted, associated_data=self.associated_data("secret"))

    @secret.setter
    def secret(self, value: str) -> None:
        self.secret_encrypted = crypto.encrypt(value, associated_data=self.associated_data("secret"))

    @property
    def url(self) -> str:
        return crypto.decrypt(self.url_encrypted, associated_data=self.associated_data("url"))

    @url.setter
    def url(self, value: str) -> None:
        self.url_encrypted = crypto.encrypt(value, associated_data=self.associated_data("url"))

    @property
    def masked_url(self) -> str:
        """The URL as pages show it: its scheme and host, never the path or query that
        make it a secret."""
        return mask_url(self.url)


def mask_url(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ""
    rest = "/…" if (parts.path not in ("", "/") or parts.query) else "/"
    return f"{parts.scheme}://{host}{port}{rest}"


class ChannelDeliveryStatus(models.TextChoices):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


class ChannelDelivery(models.Model):
    """An alert (its firing, or its resolution) to post to one channel, and how that went."""

    event = models.ForeignKey(AlertEvent, on_delete=models.CASCADE, related_name="channel_deliveries")
    channel = models.ForeignKey(AlertChannel, on_delete=models.CASCADE, related_name="deliveries")
    kind = models.CharField(max_length=10, choices=DeliveryKind.choices, default=DeliveryKind.FIRED)
    status = models.CharField(
        max_length=10, choices=ChannelDeliveryStatus.choices, default=ChannelDeliveryStatus.PENDING
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["event", "channel", "kind"], name="channel_delivery_kind_unique")]

    def __str__(self) -> str:
        return f"Alert {self.event_id} to channel {self.channel_id}: {self.status}"


class DeliveryAttempt(models.Model):
    """One HTTP request of a channel delivery."""

    delivery = models.ForeignKey(ChannelDelivery, on_delete=models.CASCADE, related_name="attempt_log")
    started_at = models.DateTimeField()
    duration_ms = models.PositiveIntegerField(default=0)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True)

    def __str__(self) -> str:
        return f"Attempt at {self.started_at}: {self.status_code or self.error}"

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300
