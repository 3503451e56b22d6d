"""A Shopify store's integration writes: connecting it through the app, its shop's
details, and the platform events its webhooks bring (opspulse.platforms.shopify.events).

The store itself (disconnecting, deleting) is written by opspulse.stores.actions.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from opspulse.accounts.audit import record_event
from opspulse.accounts.models import AuditKind
from opspulse.platforms.models import SyncHealth
from opspulse.platforms.shopify import backfill
from opspulse.platforms.shopify.client import store_grant
from opspulse.platforms.shopify.events import AppUninstalled, BulkOperationFinished, PlatformEvent
from opspulse.platforms.shopify.tasks import defer_backfill
from opspulse.privacy.actions import (
    CustomerDataRequested,
    CustomerRedactionRequested,
    ShopRedactionRequested,
    erase_shop,
    record_data_request,
    redact_customer,
    store_named,
)
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
def connect_shopify_store(*, account, shop_domain: str, grant, actor=None, request=None) -> Store:
    """Create or reconnect the account's Shopify store with a new token pair.

    A shop belongs to one account: connecting it from another is refused. Reconnecting
    (after an error, an uninstall or a disconnection) keeps the store, its history and
    its dashboards.
    """
    store = (
        Store.objects.select_for_update()
        .filter(platform=Platform.SHOPIFY, domain=shop_domain, deleted_at__isnull=True)
        .first()
    )
    if store is not None and store.account_id != account.pk:
        raise StoreConnectedElsewhere(shop_domain)
    reconnected = store is not None
    if store is None:
        store = Store.objects.create(account=account, platform=Platform.SHOPIFY, domain=shop_domain, name=shop_domain)
    elif store.disconnected_at is not None:
        store.disconnected_at = None
        store.save(update_fields=["disconnected_at"])
    integration, _ = Integration.objects.select_for_update().get_or_create(
        store=store, defaults={"type": Platform.SHOPIFY}
    )
    integration.app_installed = True
    integration.status = IntegrationStatus.ACTIVE
    integration.last_error = ""
    integration.installed_at = timezone.now()
    integration.save(update_fields=["app_installed", "status", "last_error", "installed_at", "updated_at"])
    store_grant(integration, grant)
    # A failure from before the reconnection is over; the next check also looks at the
    # subscriptions and the stock at once.
    SyncHealth.objects.filter(store=store).update(last_error="", subscriptions_checked_at=None)
    record_event(
        AuditKind.STORE_CONNECTED, user=actor, request=request, account=account, store=store.name,
        store_id=str(store.public_id), platform=Platform.SHOPIFY, domain=shop_domain,
        reason="(reconnected)" if reconnected else "",
    )
    return store


def update_store_details(*, store: Store, details: ShopDetails) -> Store:
    store.name = details.name or store.name
    store.external_id = details.external_id
    store.currency = details.currency or store.currency
    store.timezone = details.timezone or store.timezone
    store.save(update_fields=["name", "external_id", "currency", "timezone"])
    return store


def apply_platform_event(*, store_id: int, event: PlatformEvent) -> None:
    """Apply an event about the store's integration, or a privacy request, in the caller's transaction."""
    if isinstance(event, AppUninstalled):
        if store_named(store_id, event.shop_domain, "app/uninstalled") is not None:
            mark_uninstalled(store_id=store_id)
    elif isinstance(event, BulkOperationFinished):
        resume_import(store_id=store_id, operation_id=event.operation_id)
    elif isinstance(event, CustomerRedactionRequested):
        redact_customer(store_id=store_id, request=event)
    elif isinstance(event, ShopRedactionRequested):
        erase_shop(store_id=store_id, request=event)
    elif isinstance(event, CustomerDataRequested):
        record_data_request(store_id=store_id, request=event)


def mark_uninstalled(*, store_id: int) -> None:
    """Stop every use of the store's token: it is deleted, and the integration is inactive.

    The store and its history stay (Shopify asks for the shop's data to be erased with
    shop/redact, 48 hours later); reconnecting installs the app again.
    """
    disconnected = Integration.objects.filter(store_id=store_id).update(
        status=IntegrationStatus.INACTIVE,
        last_error=f"The app was uninstalled from the shop on {timezone.now():%Y-%m-%d %H:%M} UTC.",
        access_token_encrypted="",
        refresh_token_encrypted="",
        access_token_expires_at=None,
        refresh_token_expires_at=None,
        updated_at=timezone.now(),
    )
    store = Store.objects.filter(pk=store_id).select_related("account").first() if disconnected else None
    if store is not None:
        record_event(
            AuditKind.STORE_DISCONNECTED, user=None, account=store.account, store=store.name,
            store_id=str(store.public_id), platform=store.platform, domain=store.domain,
            reason="(the app was uninstalled from the shop)",
        )


def resume_import(*, store_id: int, operation_id: str) -> None:
    """Go on with the store's history import now that its bulk export has finished.

    The import's job handed back its worker while Shopify ran the export; a finish of any
    other operation (an older one, a duplicate delivery) changes nothing.
    """
    if backfill.waiting_for(store_id) == operation_id:
        transaction.on_commit(lambda: defer_backfill(store_id))
