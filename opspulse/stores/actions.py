"""Store and integration writes."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from opspulse.core import crypto
from opspulse.stores.models import Integration, IntegrationStatus, Platform, Store


class StoreConnectedElsewhere(Exception):
    """The shop is already connected to another OpsPulse account."""


@dataclass(frozen=True)
class ShopDetails:
    """What the platform says about the shop (Shopify's `shop` query)."""

    external_id: str
    name: str
    currency: str
    timezone: str


@transaction.atomic
def connect_shopify_store(*, account, shop_domain: str, grant) -> Store:
    """Create or reconnect the account's Shopify store with a new token pair.

    A shop belongs to one account: connecting it from another is refused. Reconnecting
    (after an error or an uninstall) keeps the store, its history and its dashboards.
    """
    from opspulse.platforms.shopify.client import store_grant

    store = Store.objects.select_for_update().filter(platform=Platform.SHOPIFY, domain=shop_domain).first()
    if store is not None and store.account_id != account.pk:
        raise StoreConnectedElsewhere(shop_domain)
    if store is None:
        store = Store.objects.create(account=account, platform=Platform.SHOPIFY, domain=shop_domain, name=shop_domain)
    integration, _ = Integration.objects.select_for_update().get_or_create(
        store=store, defaults={"type": Platform.SHOPIFY}
    )
    integration.app_installed = True
    integration.status = IntegrationStatus.ACTIVE
    integration.last_error = ""
    integration.installed_at = timezone.now()
    integration.save(update_fields=["app_installed", "status", "last_error", "installed_at", "updated_at"])
    store_grant(integration, grant)
    return store


def update_store_details(*, store: Store, details: ShopDetails) -> Store:
    store.name = details.name or store.name
    store.external_id = details.external_id
    store.currency = details.currency or store.currency
    store.timezone = details.timezone or store.timezone
    store.save(update_fields=["name", "external_id", "currency", "timezone"])
    return store


def reencrypt_credentials(*, batch_size: int = 500) -> int:
    """Re-encrypt every integration credential not yet under the current key; return the count."""
    current = next(iter(crypto.key_ring()))
    changed = 0
    ids = list(Integration.objects.order_by("pk").values_list("pk", flat=True))
    for start in range(0, len(ids), batch_size):
        with transaction.atomic():
            for integration in Integration.objects.select_for_update().filter(pk__in=ids[start : start + batch_size]):
                fields = [
                    field
                    for field in Integration.ENCRYPTED_FIELDS
                    if getattr(integration, field) and crypto.current_kid(getattr(integration, field)) != current
                ]
                for field in fields:
                    integration._set(field, integration._get(field))
                if fields:
                    integration.save(update_fields=fields)
                    changed += 1
    return changed


@dataclass(frozen=True)
class AppUninstalled:
    """The merchant removed OpsPulse's app from the shop (Shopify's app/uninstalled)."""


PlatformEvent = AppUninstalled


def apply_platform_event(*, store_id: int, event: PlatformEvent) -> None:
    if isinstance(event, AppUninstalled):
        mark_uninstalled(store_id=store_id)


def mark_uninstalled(*, store_id: int) -> None:
    """Stop every use of the store's token: it is deleted, and the integration is inactive.

    The store and its history stay (Shopify asks for the shop's data to be erased with
    shop/redact, 48 hours later); reconnecting installs the app again.
    """
    Integration.objects.filter(store_id=store_id).update(
        status=IntegrationStatus.INACTIVE,
        last_error=f"The app was uninstalled from the shop on {timezone.now():%Y-%m-%d %H:%M} UTC.",
        access_token_encrypted="",
        refresh_token_encrypted="",
        access_token_expires_at=None,
        refresh_token_expires_at=None,
        updated_at=timezone.now(),
    )
