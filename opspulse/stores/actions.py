"""Store and integration writes."""

from __future__ import annotations

import logging
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from opspulse.accounts.audit import record_event
from opspulse.accounts.models import AuditKind
from opspulse.lib.jobs import defer_once, task_named
from opspulse.stores.models import Integration, IntegrationStatus, Store

logger = logging.getLogger("opspulse.stores")


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


def extend_history(*, store: Store, since: datetime) -> None:
    """Record that OpsPulse now knows the store's sales from `since` on (an import
    brought them in), unless its history already starts earlier."""
    Store.objects.filter(pk=store.pk, history_starts_at__gt=since).update(history_starts_at=since)
    store.history_starts_at = min(store.history_starts_at, since)
