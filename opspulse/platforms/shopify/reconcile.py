"""Healing what webhooks missed: a shop's recently updated orders, read again.

Shopify's webhooks are at-least-once but not guaranteed, and may come a day late.
Every few minutes each connected shop's orders and inventory items updated since the
watermark (less an overlap, for clocks and in-flight writes) are read through the Admin
API and applied with the same upserts as webhooks: an order or stock level already up
to date changes nothing, one that a webhook missed is written and counted as corrected.
As an import, it fires no alert: what it finds happened minutes or hours ago.
Items created or renamed since are read with their SKUs, which `inventory_levels/update`
webhooks do not carry. Every hour all the shop's stock is read again, and its webhook
subscriptions are checked, since Shopify deletes one after 8 failed deliveries in a row.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from opspulse.commerce import actions as commerce
from opspulse.commerce.models import InventoryLevel
from opspulse.platforms.errors import PayloadError
from opspulse.platforms.models import SyncHealth
from opspulse.platforms.shopify import handlers
from opspulse.platforms.shopify.backfill import (
    LINE_ITEMS_PER_ORDER,
    ORDER_FIELDS,
    ORDERS_PER_PAGE,
    order_payload,
    read_stock_page,
)
from opspulse.platforms.shopify.client import ShopifyClient
from opspulse.platforms.shopify.subscriptions import ensure_subscriptions
from opspulse.stores.models import Integration

OVERLAP = timedelta(minutes=10)
FIRST_LOOK_BACK = timedelta(hours=1)
HOURLY_CHECK_EVERY = timedelta(hours=1)

UPDATED_ORDERS_QUERY = """
query ReconcileOrders($first: Int!, $after: String, $query: String!, $lineItems: Int!) {
  orders(first: $first, after: $after, query: $query, sortKey: UPDATED_AT) {
    edges { node { ...OrderFields } }
    pageInfo { hasNextPage endCursor }
  }
}
""" + ORDER_FIELDS


def reconcile(store_id: int) -> SyncHealth:
    """Apply the shop's orders updated since the watermark; return the updated health."""
    integration = Integration.objects.select_related("store").get(store_id=store_id)
    health, _ = SyncHealth.objects.get_or_create(store_id=store_id)
    client = ShopifyClient(integration)
    started = timezone.now()
    since = (health.orders_watermark or started - FIRST_LOOK_BACK) - OVERLAP
    first_pass = health.orders_watermark is None
    corrected, newest = 0, health.orders_watermark
    after = None
    while True:
        connection = client.query(
            UPDATED_ORDERS_QUERY,
            {
                "first": ORDERS_PER_PAGE, "after": after, "lineItems": LINE_ITEMS_PER_ORDER,
                "query": f"updated_at:>='{since.isoformat(timespec='seconds')}'",
            },
        ).data["orders"]
        records = []
        for edge in connection["edges"]:
            try:
                records.append(handlers.parse_order(order_payload(edge["node"])))
            except PayloadError:
                continue
        # Orders a lost webhook never brought: one placed within a rule's window still
        # alerts, as its webhook would have; older ones are history (alerts.actions.AlertCheck).
        # The first pass, while the shop's history may still be importing, reads orders
        # from before the connection: history too.
        with transaction.atomic():
            written = commerce.apply_records(store=integration.store, records=records, imported=first_pass)
        corrected += sum(1 for result in written if result is not None)
        newest = max([newest, *(record.updated_at for record in records)], key=_moment)
        if not connection["pageInfo"]["hasNextPage"]:
            break
        after = connection["pageInfo"]["endCursor"]
    if health.subscriptions_checked_at is None or started - health.subscriptions_checked_at > HOURLY_CHECK_EVERY:
        corrected += reconcile_stock(client, integration.store)
        ensure_subscriptions(client)
        health.subscriptions_checked_at = started
    else:
        corrected += reconcile_stock(
            client, integration.store, query=f"updated_at:>='{since.isoformat(timespec='seconds')}'"
        )
    health.orders_watermark = newest or started
    health.last_reconciled_at = timezone.now()
    health.last_corrected = corrected
    health.total_corrected += corrected
    health.last_error = ""
    health.save()
    return health


def reconcile_stock(client: ShopifyClient, store, *, query: str | None = None) -> int:
    """Read the shop's stock again (the items matching `query`) and apply it.

    Return the levels that were wrong or missing.
    """
    changed, after = 0, None
    while True:
        records, after, _ = read_stock_page(client, after, query=query)
        known = {
            (level.item_external_id, level.location_external_id): (level.available, level.sku)
            for level in InventoryLevel.objects.filter(
                store=store, item_external_id__in=[record.item_external_id for record in records]
            )
        }
        changed += sum(
            1 for record in records
            if known.get((record.item_external_id, record.location_external_id)) != (record.available, record.sku)
        )
        # Read whole, as at the import: a low level seen here for the first time is no
        # news to alert on (the next stock webhook does).
        with transaction.atomic():
            commerce.apply_records(store=store, records=records, imported=True)
        if after is None:
            return changed


def record_failure(store_id: int, error: str) -> None:
    SyncHealth.objects.update_or_create(store_id=store_id, defaults={"last_error": error[:1000]})


def _moment(value: datetime | None) -> datetime:
    return value or datetime.min.replace(tzinfo=timezone.get_current_timezone())
