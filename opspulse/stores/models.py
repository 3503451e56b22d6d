from __future__ import annotations

import secrets
import uuid
from datetime import datetime

from django.db import models
from django.utils.timezone import now

from opspulse.lib import crypto


class Platform(models.TextChoices):
    SHOPIFY = "shopify", "Shopify"
    WOOCOMMERCE = "woocommerce", "WooCommerce"


def new_ingest_token() -> str:
    return secrets.token_urlsafe(24)


class Store(models.Model):
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    account = models.ForeignKey("accounts.Account", on_delete=models.CASCADE, related_name="stores")
    name = models.CharField(max_length=200)
    platform = models.CharField(max_length=20, choices=Platform.choices)
    # Shopify: the shop's *.myshopify.com domain. WooCommerce: the site's host.
    domain = models.CharField(max_length=255)
    external_id = models.CharField(max_length=64, blank=True)
    timezone = models.CharField(max_length=64, default="UTC")
    currency = models.CharField(max_length=3, default="USD")
    # WooCommerce webhooks carry no shop header: the store is named by this token in
    # the delivery URL (an unguessable path segment, not the public id).
    ingest_token = models.CharField(max_length=64, unique=True, default=new_ingest_token)
    created_at = models.DateTimeField(auto_now_add=True)
    # Disconnected by the merchant: credentials gone, webhooks no longer accepted, the
    # history kept and shown read-only until the store is connected again.
    disconnected_at = models.DateTimeField(null=True, blank=True)
    # Deleted by the merchant: hidden everywhere at once, its rows removed in the
    # background (opspulse.stores.tasks.delete_store_data), the store row last.
    deleted_at = models.DateTimeField(null=True, blank=True)
    # OpsPulse knows the store's sales from this moment on: when it was connected, or the
    # start of the earliest period an import brought in. A comparison with an earlier
    # period would compare with sales OpsPulse never saw.
    history_starts_at = models.DateTimeField(default=now)
    # Counts changes to the store's alert rules: a trigger of opspulse.alerts adds one on
    # every insert, update or delete of a rule, so that the rules a process keeps can be
    # checked with the store row it reads anyway.
    alert_rules_version = models.PositiveIntegerField(default=0, editable=False)

    class Meta:
        constraints = [
            # A deleted store whose rows are still being removed does not keep its shop
            # from being connected again.
            models.UniqueConstraint(
                fields=["platform", "domain"],
                condition=models.Q(deleted_at__isnull=True),
                name="store_platform_domain_unique",
            )
        ]

    def __str__(self) -> str:
        return self.name

    def has_history_from(self, start: datetime) -> bool:
        """Whether OpsPulse knows all of the store's sales from `start` on."""
        return self.history_starts_at <= start


class IntegrationStatus(models.TextChoices):
    ACTIVE = "active"
    ERROR = "error"
    # The merchant uninstalled the app: its token is never used again.
    INACTIVE = "inactive"


class Integration(models.Model):
    """A store's credentials on its platform, encrypted at rest (see core.crypto)."""

    store = models.OneToOneField(Store, on_delete=models.CASCADE, related_name="integration")
    type = models.CharField(max_length=20, choices=Platform.choices)
    access_token_encrypted = models.TextField(blank=True)
    webhook_secret_encrypted = models.TextField(blank=True)
    # During a secret rotation the platform may still sign with the previous secret.
    previous_webhook_secret_encrypted = models.TextField(blank=True)
    status = models.CharField(
        max_length=10, choices=IntegrationStatus.choices, default=IntegrationStatus.ACTIVE
    )
    last_error = models.TextField(blank=True)
    updated_at = models.DateTimeField(auto_now=True)
    # Installed through OpsPulse's Shopify app (OAuth): the platform signs webhooks with
    # the app's client secret, and the API is called with an expiring offline token
    # that is refreshed with the refresh token before it expires.
    app_installed = models.BooleanField(default=False)
    access_token_expires_at = models.DateTimeField(null=True, blank=True)
    refresh_token_encrypted = models.TextField(blank=True)
    refresh_token_expires_at = models.DateTimeField(null=True, blank=True)
    granted_scopes = models.CharField(max_length=500, blank=True)
    installed_at = models.DateTimeField(null=True, blank=True)

    ENCRYPTED_FIELDS = (
        "access_token_encrypted",
        "webhook_secret_encrypted",
        "previous_webhook_secret_encrypted",
        "refresh_token_encrypted",
    )

    def __str__(self) -> str:
        return f"{self.type} integration for store {self.store_id}"

    @staticmethod
    def associated_data(store_id: int, field: str) -> str:
        return f"stores.integration:{store_id}:{field}"

    def _set(self, field: str, value: str) -> None:
        encrypted = (
            crypto.encrypt(value, associated_data=self.associated_data(self.store_id, field))
            if value
            else ""
        )
        setattr(self, field, encrypted)

    def _get(self, field: str) -> str:
        token = getattr(self, field)
        if not token:
            return ""
        return crypto.decrypt(token, associated_data=self.associated_data(self.store_id, field))

    @property
    def access_token(self) -> str:
        return self._get("access_token_encrypted")

    @access_token.setter
    def access_token(self, value: str) -> None:
        self._set("access_token_encrypted", value)

    @property
    def refresh_token(self) -> str:
        return self._get("refresh_token_encrypted")

    @refresh_token.setter
    def refresh_token(self, value: str) -> None:
        self._set("refresh_token_encrypted", value)

    @property
    def webhook_secret(self) -> str:
        return self._get("webhook_secret_encrypted")

    @webhook_secret.setter
    def webhook_secret(self, value: str) -> None:
        self._set("webhook_secret_encrypted", value)

    @property
    def previous_webhook_secret(self) -> str:
        return self._get("previous_webhook_secret_encrypted")

    @previous_webhook_secret.setter
    def previous_webhook_secret(self, value: str) -> None:
        self._set("previous_webhook_secret_encrypted", value)


