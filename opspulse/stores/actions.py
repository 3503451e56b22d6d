"""Store and integration writes."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from opspulse.accounts.audit import record_event
from opspulse.accounts.models import AuditKind
from opspulse.commerce.models import Backfill, BackfillStatus, SyncHealth
from opspulse.lib.jobs import defer_once, task_named
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

logger = logging.getLogger("opspulse.stores")


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
    from opspulse.platforms.shopify.client import store_grant

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


CREDENTIALS_REMOVED = {
    "access_token_encrypted": "",
    "refresh_token_encrypted": "",
    "webhook_secret_encrypted": "",
    "previous_webhook_secret_encrypted": "",
    "access_token_expires_at": None,
    "refresh_token_expires_at": None,
}


@transaction.atomic
def disconnect_store(*, store: Store, actor, request=None, reason: str = "") -> Store:
    """Stop syncing the store: its credentials are deleted and its webhooks refused.

    The store and its history stay, read-only, until it is connected again. `reason`
    goes to the audit log (what could not be undone at the platform, say).
    """
    now = timezone.now()
    store = Store.objects.select_for_update().get(pk=store.pk)
    store.disconnected_at = now
    store.save(update_fields=["disconnected_at"])
    Integration.objects.filter(store=store).update(
        status=IntegrationStatus.INACTIVE,
        last_error=f"Disconnected on {now:%Y-%m-%d %H:%M} UTC.",
        updated_at=now,
        **CREDENTIALS_REMOVED,
    )
    # An import waiting for Shopify's export would otherwise show as running for good.
    Backfill.objects.filter(store=store, status=BackfillStatus.RUNNING).update(
        status=BackfillStatus.FAILED, error="the store was disconnected.", finished_at=now
    )
    record_event(
        AuditKind.STORE_DISCONNECTED, user=actor, request=request, account=store.account, store=store.name,
        store_id=str(store.public_id), platform=store.platform, domain=store.domain, reason=reason,
    )
    return store


@transaction.atomic
def delete_store(*, store: Store, actor, request=None) -> None:
    """Delete the store with all its data: it is gone from every page at once, and its
    rows are removed in the background, in short transactions (see `purge_store_rows`).

    The account's audit log keeps the events about the store.
    """
    now = timezone.now()
    store = Store.objects.select_for_update().get(pk=store.pk)
    store.deleted_at = now
    store.save(update_fields=["deleted_at"])
    Integration.objects.filter(store=store).update(
        status=IntegrationStatus.INACTIVE, last_error="Deleted.", updated_at=now, **CREDENTIALS_REMOVED
    )
    # No rule of the store fires (about no orders, say) while its rows are being removed.
    store.alerts.update(is_active=False)
    record_event(
        AuditKind.STORE_DELETED, user=actor, request=request, account=store.account, store=store.name,
        store_id=str(store.public_id), platform=store.platform, domain=store.domain,
    )
    transaction.on_commit(lambda: defer_store_deletion(store.pk))


# The job of opspulse.stores.tasks that removes a deleted store's rows, deferred by name.
DELETE_STORE_DATA_TASK = "opspulse.stores.delete_store_data"


def defer_store_deletion(store_id: int) -> None:
    # One waiting job per store: it removes every row.
    defer_once(task_named(DELETE_STORE_DATA_TASK, queueing_lock=f"delete-store-{store_id}"), store_id=store_id)


def purge_store_rows(*, store_id: int, batch_size: int = 2000) -> bool:
    """Delete one batch of a deleted store's rows; True once the store row itself is gone.

    Every table that refers to the store is emptied of its rows a batch at a time, each
    batch in its own short transaction, so a big store never holds locks on the busy
    tables for long; the store row goes last. The tables are found through the store's
    relations, so a new one is covered without being named here.
    """
    store = Store.objects.filter(pk=store_id, deleted_at__isnull=False).first()
    if store is None:
        return True
    for relation in _store_relations():
        model = relation.related_model
        rows = model._base_manager.filter(**{relation.field.name: store_id})
        batch = list(rows.values_list("pk", flat=True)[:batch_size])
        if batch:
            # Their own rows (an order's line items, an alert event's deliveries) go with them.
            with transaction.atomic():
                model._base_manager.filter(pk__in=batch).delete()
            return False
    with transaction.atomic():
        store.delete()
    logger.info("store %s (public id %s) of account %s deleted", store_id, store.public_id, store.account_id)
    return True


def _store_relations() -> list:
    """The relations of the tables that refer to the store, those that others of them
    refer to last (alert events go before their alerts, not with them)."""
    relations = list(Store._meta.related_objects)
    models = {relation.related_model for relation in relations}

    def referred_to(relation) -> bool:
        return any(other.related_model in models for other in relation.related_model._meta.related_objects)

    return sorted(relations, key=referred_to)


def update_store_details(*, store: Store, details: ShopDetails) -> Store:
    store.name = details.name or store.name
    store.external_id = details.external_id
    store.currency = details.currency or store.currency
    store.timezone = details.timezone or store.timezone
    store.save(update_fields=["name", "external_id", "currency", "timezone"])
    return store


@dataclass(frozen=True)
class AppUninstalled:
    """The merchant removed OpsPulse's app from the shop (Shopify's app/uninstalled)."""

    # The shop the signed payload names. Shopify signs every shop's app webhooks with
    # the app's one secret and does not sign the shop header, so a body signed for one
    # shop could be replayed under another's header: only the body says whose it is.
    shop_domain: str


@dataclass(frozen=True)
class BulkOperationFinished:
    """A bulk query of the app ended on the shop's side (Shopify's bulk_operations/finish)."""

    operation_id: str
    status: str


PlatformEvent = (
    AppUninstalled | BulkOperationFinished | CustomerRedactionRequested | ShopRedactionRequested | CustomerDataRequested
)


def apply_platform_event(*, store_id: int, event: PlatformEvent) -> None:
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


def extend_history(*, store: Store, since: datetime) -> None:
    """Record that OpsPulse now knows the store's sales from `since` on (an import
    brought them in), unless its history already starts earlier."""
    Store.objects.filter(pk=store.pk, history_starts_at__gt=since).update(history_starts_at=since)
    store.history_starts_at = min(store.history_starts_at, since)


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
    from opspulse.platforms.shopify import backfill
    from opspulse.stores.tasks import defer_backfill

    if backfill.waiting_for(store_id) == operation_id:
        transaction.on_commit(lambda: defer_backfill(store_id))
