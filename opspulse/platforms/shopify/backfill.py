"""A newly connected shop's history: its orders of the last 60 days and current stock.

Pages of orders are read with the GraphQL Admin API (through the rate-limited client),
turned into the same payload shape as the webhooks and applied with the same upserts,
so an order that also arrives by webhook during the import is counted once: whichever
has the newer `updated_at` wins and the metric buckets move by the difference. Each
page's records, the cursor and the counts are saved in one transaction; an interrupted
import resumes from the last saved page.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from opspulse.commerce import actions as commerce
from opspulse.commerce.models import Backfill, BackfillStatus
from opspulse.platforms.errors import PayloadError
from opspulse.platforms.shopify import handlers
from opspulse.platforms.shopify.client import ShopifyClient
from opspulse.stores.models import Integration, Store

logger = logging.getLogger("opspulse.shopify")

HISTORY_DAYS = 60
# 10 orders with up to 15 line items each: a requested cost of about 700 points, under
# the 1,000 a single query may cost. Large shops are for bulk operations.
ORDERS_PER_PAGE = 10
LINE_ITEMS_PER_ORDER = 15
ITEMS_PER_PAGE = 50

ORDERS_QUERY = """
query BackfillOrders($first: Int!, $after: String, $query: String!, $lineItems: Int!) {
  orders(first: $first, after: $after, query: $query, sortKey: CREATED_AT) {
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

ITEMS_QUERY = """
query BackfillStock($first: Int!, $after: String) {
  inventoryItems(first: $first, after: $after) {
    edges { node {
      legacyResourceId sku
      variant { legacyResourceId }
      inventoryLevels(first: 5) { edges { node {
        location { legacyResourceId }
        quantities(names: ["available"]) { name quantity }
      } } }
    } }
    pageInfo { hasNextPage endCursor }
  }
}
"""


def start(store: Store) -> Backfill:
    """Begin (or begin again) the store's import; the job then runs `run`."""
    since = timezone.now() - timedelta(days=HISTORY_DAYS)
    backfill, _ = Backfill.objects.update_or_create(
        store=store,
        defaults={
            "status": BackfillStatus.RUNNING, "phase": "orders", "cursor": "", "orders_done": 0,
            "items_done": 0, "orders_total": None, "since": since, "started_at": timezone.now(),
            "finished_at": None, "error": "",
        },
    )
    return backfill


def run(store_id: int) -> Backfill:
    """Import the remaining pages of the store's backfill, from where it stopped."""
    backfill = Backfill.objects.select_related("store").get(store_id=store_id)
    if backfill.status != BackfillStatus.RUNNING:
        return backfill
    client = ShopifyClient(Integration.objects.select_related("store").get(store_id=store_id))
    while backfill.phase == "orders":
        _orders_page(client, backfill)
    while backfill.phase == "stock":
        _stock_page(client, backfill)
    return backfill


def fail(store_id: int, error: str) -> None:
    Backfill.objects.filter(store_id=store_id, status=BackfillStatus.RUNNING).update(
        status=BackfillStatus.FAILED, error=error[:1000], finished_at=timezone.now()
    )


def _orders_page(client: ShopifyClient, backfill: Backfill) -> None:
    query = f"created_at:>='{backfill.since.isoformat(timespec='seconds')}'"
    result = client.query(
        ORDERS_QUERY,
        {"first": ORDERS_PER_PAGE, "after": backfill.cursor or None, "query": query, "lineItems": LINE_ITEMS_PER_ORDER},
    )
    connection = result.data["orders"]
    records = []
    for edge in connection["edges"]:
        try:
            records.append(handlers.parse_order(order_payload(edge["node"])))
        except PayloadError as exc:
            logger.warning("store %s: skipped an order of the backfill: %s", backfill.store_id, exc)
    page = connection["pageInfo"]
    with transaction.atomic():
        commerce.apply_records(store=backfill.store, records=records)
        backfill.orders_done += len(connection["edges"])
        if page["hasNextPage"]:
            backfill.cursor = page["endCursor"]
        else:
            backfill.phase, backfill.cursor = "stock", ""
        backfill.save(update_fields=["orders_done", "cursor", "phase"])


def _stock_page(client: ShopifyClient, backfill: Backfill) -> None:
    result = client.query(ITEMS_QUERY, {"first": ITEMS_PER_PAGE, "after": backfill.cursor or None})
    connection = result.data["inventoryItems"]
    now = timezone.now()
    records = []
    for edge in connection["edges"]:
        item = edge["node"]
        for level_edge in item["inventoryLevels"]["edges"]:
            level = level_edge["node"]
            available = next((q["quantity"] for q in level["quantities"] if q["name"] == "available"), None)
            if available is None:
                continue
            records.append(
                commerce.StockData(
                    item_external_id=str(item["legacyResourceId"]),
                    location_external_id=str(level["location"]["legacyResourceId"]),
                    available=available,
                    # The read time: a later webhook about the level is newer and wins.
                    updated_at=now,
                    sku=item.get("sku") or "",
                )
            )
    page = connection["pageInfo"]
    with transaction.atomic():
        commerce.apply_records(store=backfill.store, records=records)
        backfill.items_done += len(connection["edges"])
        if page["hasNextPage"]:
            backfill.cursor = page["endCursor"]
        else:
            backfill.phase, backfill.cursor = "done", ""
            backfill.status, backfill.finished_at = BackfillStatus.DONE, timezone.now()
        backfill.save(update_fields=["items_done", "cursor", "phase", "status", "finished_at"])


FINANCIAL_STATUSES = {
    "PAID": "paid", "PARTIALLY_PAID": "partially_paid", "PARTIALLY_REFUNDED": "partially_refunded",
    "REFUNDED": "refunded", "VOIDED": "voided", "PENDING": "pending", "AUTHORIZED": "authorized",
    "EXPIRED": "voided",
}


def order_payload(node: dict[str, Any]) -> dict[str, Any]:
    """An order of the GraphQL API in the shape of the orders/* webhooks (the REST resource)."""
    fulfillment = (node.get("displayFulfillmentStatus") or "").lower()
    return {
        "id": int(node["legacyResourceId"]),
        "name": node["name"],
        "currency": node["currencyCode"],
        "total_price": node["totalPriceSet"]["shopMoney"]["amount"],
        "current_total_price": (node.get("currentTotalPriceSet") or {}).get("shopMoney", {}).get("amount"),
        "created_at": node["createdAt"],
        "updated_at": node["updatedAt"],
        "cancelled_at": node.get("cancelledAt"),
        "financial_status": FINANCIAL_STATUSES.get(node.get("displayFinancialStatus") or "", None),
        "fulfillment_status": fulfillment if fulfillment in ("fulfilled", "partial") else None,
        "customer": {"first_name": (node.get("customer") or {}).get("firstName")},
        "shipping_address": {"city": (node.get("shippingAddress") or {}).get("city")},
        "line_items": [
            {
                "id": int(str(item["id"]).rsplit("/", 1)[-1]),
                "title": item["name"],
                "name": item["name"],
                "sku": item.get("sku"),
                "quantity": item["quantity"],
                "price": item["originalUnitPriceSet"]["shopMoney"]["amount"],
                "variant_id": int((item.get("variant") or {}).get("legacyResourceId") or 0) or None,
            }
            for item in (edge["node"] for edge in node["lineItems"]["edges"])
        ],
    }
