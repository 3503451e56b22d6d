"""Healing what webhooks missed: a shop's recently updated orders, read again.

Shopify's webhooks are at-least-once but not guaranteed, and may come a day late.
Every few minutes each connected shop's orders updated since the watermark (less an
overlap, for clocks and in-flight writes) are read through the Admin API and applied
with the same upserts as webhooks: an order already up to date changes nothing, one
that a webhook missed is written and counted as corrected. The shop's webhook
subscriptions are checked again every hour, since Shopify deletes one after 8 failed
deliveries in a row.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from opspulse.commerce import actions as commerce
from opspulse.commerce.models import SyncHealth
from opspulse.platforms.errors import PayloadError
from opspulse.platforms.shopify import handlers
from opspulse.platforms.shopify.backfill import LINE_ITEMS_PER_ORDER, ORDERS_PER_PAGE, order_payload
from opspulse.platforms.shopify.client import ShopifyClient
from opspulse.platforms.shopify.subscriptions import ensure_subscriptions
from opspulse.stores.models import Integration

OVERLAP = timedelta(minutes=10)
FIRST_LOOK_BACK = timedelta(hours=1)
SUBSCRIPTION_CHECK_EVERY = timedelta(hours=1)

UPDATED_ORDERS_QUERY = """
query ReconcileOrders($first: Int!, $after: String, $query: String!, $lineItems: Int!) {
  orders(first: $first, after: $after, query: $query, sortKey: UPDATED_AT) {
    edges { node {
      legacyResourceId name createdAt updatedAt cancelledAt
      displayFinancialStatus displayFulfillmentStatus currencyCode
      totalPriceSet { shopMoney { amount } }
      currentTotalPriceSet { shopMoney { amount } }
      customer { firstName }
      shippingAddress { city }
      lineItems(first: $lineItems) { edges { node {
        id name sku quantity
        originalUnitPriceSet { shopMoney { amount } }
        variant { legacyResourceId }
      } } }
    } }
    pageInfo { hasNextPage endCursor }
  }
}
"""


def reconcile(store_id: int) -> SyncHealth:
    """Apply the shop's orders updated since the watermark; return the updated health."""
    integration = Integration.objects.select_related("store").get(store_id=store_id)
    health, _ = SyncHealth.objects.get_or_create(store_id=store_id)
    client = ShopifyClient(integration)
    started = timezone.now()
    since = (health.orders_watermark or started - FIRST_LOOK_BACK) - OVERLAP
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
        with transaction.atomic():
            written = commerce.apply_records(store=integration.store, records=records)
        corrected += sum(1 for result in written if result is not None)
        newest = max([newest, *(record.updated_at for record in records)], key=_moment)
        if not connection["pageInfo"]["hasNextPage"]:
            break
        after = connection["pageInfo"]["endCursor"]
    if health.subscriptions_checked_at is None or started - health.subscriptions_checked_at > SUBSCRIPTION_CHECK_EVERY:
        ensure_subscriptions(client)
        health.subscriptions_checked_at = started
    health.orders_watermark = newest or started
    health.last_reconciled_at = timezone.now()
    health.last_corrected = corrected
    health.total_corrected += corrected
    health.last_error = ""
    health.save()
    return health


def record_failure(store_id: int, error: str) -> None:
    SyncHealth.objects.update_or_create(store_id=store_id, defaults={"last_error": error[:1000]})


def _moment(value: datetime | None) -> datetime:
    return value or datetime.min.replace(tzinfo=timezone.get_current_timezone())
