"""Writes of the sync state every provider keeps (opspulse.platforms.models)."""

from __future__ import annotations

from django.db import transaction

from opspulse.platforms.models import Backfill, BackfillStatus
from opspulse.stores import actions as stores
from opspulse.stores.models import Store


@transaction.atomic
def disconnect_store(*, store: Store, actor, request=None, reason: str = "") -> Store:
    """Disconnect the store (opspulse.stores.actions.disconnect_store) and stop its import.

    An import waiting for Shopify's export would otherwise show as running for good.
    """
    store = stores.disconnect_store(store=store, actor=actor, request=request, reason=reason)
    Backfill.objects.filter(store=store, status=BackfillStatus.RUNNING).update(
        status=BackfillStatus.FAILED, error="the store was disconnected.", finished_at=store.disconnected_at
    )
    return store
