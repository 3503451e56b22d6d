"""A newly connected shop's history: its orders of the last 60 days and current stock.

Orders are read with the GraphQL Admin API (through the rate-limited client), turned
into the same payload shape as the webhooks and applied with the same upserts, so an
order that also arrives by webhook during the import is counted once: whichever has
the newer `updated_at` wins and the metric buckets move by the difference. Being an
import, they fire no alert: a shop's past orders are not news.

Once the orders are in, the store's history starts where the import's period does, so
the dashboard compares with days before the connection.

A small shop is read in pages of orders, oldest first. A shop with more than
`PAGED_ORDERS_LIMIT` orders in the period goes on with a bulk operation for the rest:
one query that Shopify runs on its side, polled until done, whose JSONL result (orders,
then each one's line items as lines with `__parentId`) is downloaded and applied in
chunks. Shopify may take minutes on a large export: the job waits a little, then hands
its worker back, and the bulk_operations/finish webhook (or, should it not come, the
five-minute reconciliation sweep) starts it again. Each page's or chunk's records are saved with the import's position (cursor,
bulk operation, line number) in one transaction; an interrupted import resumes there.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from opspulse.commerce import actions as commerce
from opspulse.lib import http as outbound
from opspulse.platforms.errors import PayloadError
from opspulse.platforms.models import Backfill, BackfillStatus
from opspulse.platforms.shopify import handlers
from opspulse.platforms.shopify.client import HTTP_TIMEOUT, ShopifyClient, ShopifyError
from opspulse.stores import actions as stores
from opspulse.stores.models import Integration, Store

logger = logging.getLogger("opspulse.shopify")

HISTORY_DAYS = 60
# 10 orders with up to 15 line items each: a requested cost of about 700 points, under
# the 1,000 a single query may cost. Large shops are for bulk operations.
ORDERS_PER_PAGE = 10
LINE_ITEMS_PER_ORDER = 15
ITEMS_PER_PAGE = 50
# Past this many orders, the rest of the period is read by a bulk operation.
PAGED_ORDERS_LIMIT = 50
BULK_POLL_SECONDS = 2.0
# How long a job waits for a bulk export before leaving it to the finish webhook.
BULK_WAIT_IN_JOB_SECONDS = 10.0
BULK_CHUNK_ORDERS = 250
# A bulk file downloads within this long; an import cut short resumes at its saved line.
BULK_DOWNLOAD_SECONDS = 30 * 60.0

BULK_ORDERS_QUERY = """
{
  orders(query: "%(query)s", sortKey: CREATED_AT) {
    edges { node {
      id legacyResourceId name createdAt updatedAt cancelledAt test
      displayFinancialStatus displayFulfillmentStatus currencyCode
      totalPriceSet { shopMoney { amount } }
      currentTotalPriceSet { shopMoney { amount } }
      customer { firstName }
      shippingAddress { city }
      lineItems { edges { node {
        id name sku quantity
        originalUnitPriceSet { shopMoney { amount } }
        variant { legacyResourceId }
      } } }
    } }
  }
}
"""

RUN_BULK = """
mutation RunBulkQuery($query: String!) {
  bulkOperationRunQuery(query: $query) {
    bulkOperation { id status }
    userErrors { field message }
  }
}
"""

COUNTS_QUERY = """
query BackfillCounts($query: String!) {
  ordersCount(query: $query, limit: null) { count }
  productVariantsCount(limit: null) { count }
}
"""

CURRENT_BULK = "query CurrentBulkOperation { currentBulkOperation { id status errorCode objectCount url } }"

# What OpsPulse reads of an order: the fields of the orders/* webhooks it uses.
ORDER_FIELDS = """
fragment OrderFields on Order {
  legacyResourceId name createdAt updatedAt cancelledAt test
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
}
"""

ORDERS_QUERY = """
query BackfillOrders($first: Int!, $after: String, $query: String!, $lineItems: Int!) {
  orders(first: $first, after: $after, query: $query, sortKey: CREATED_AT) {
    edges { node { ...OrderFields } }
    pageInfo { hasNextPage endCursor }
  }
}
""" + ORDER_FIELDS

ITEMS_QUERY = """
query BackfillStock($first: Int!, $after: String, $query: String) {
  inventoryItems(first: $first, after: $after, query: $query) {
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
            "items_done": 0, "orders_total": None, "items_total": None, "since": since, "started_at": timezone.now(),
            "finished_at": None, "error": "",
        },
    )
    return backfill


def run(store_id: int) -> Backfill:
    """Import the remaining pages of the store's backfill, from where it stopped.

    Return the backfill; its phase is still "orders_bulk_wait" when Shopify's export was
    not ready within `BULK_WAIT_IN_JOB_SECONDS` (the caller arranges the next look).
    """
    backfill = Backfill.objects.select_related("store").get(store_id=store_id)
    if backfill.status != BackfillStatus.RUNNING:
        return backfill
    client = ShopifyClient(Integration.objects.select_related("store").get(store_id=store_id))
    if backfill.orders_total is None:
        _count(client, backfill)
    while backfill.phase == "orders":
        _orders_page(client, backfill)
    if backfill.phase == "orders_bulk":
        _start_bulk(client, backfill)
    deadline = time.monotonic() + BULK_WAIT_IN_JOB_SECONDS
    while backfill.phase == "orders_bulk_wait":
        if not _poll_bulk(client, backfill):
            if time.monotonic() + BULK_POLL_SECONDS > deadline:
                return backfill
            time.sleep(BULK_POLL_SECONDS)
    if backfill.phase == "orders_bulk_import":
        _import_bulk(backfill)
    while backfill.phase == "stock":
        _stock_page(client, backfill)
    return backfill


def waiting_for(store_id: int) -> str | None:
    """The id of the bulk operation the store's import waits for, if it waits for one."""
    cursor = (
        Backfill.objects.filter(store_id=store_id, status=BackfillStatus.RUNNING, phase="orders_bulk_wait")
        .values_list("cursor", flat=True)
        .first()
    )
    return json.loads(cursor)["operation"] if cursor else None


def fail(store_id: int, error: str) -> None:
    Backfill.objects.filter(store_id=store_id, status=BackfillStatus.RUNNING).update(
        status=BackfillStatus.FAILED, error=error[:1000], finished_at=timezone.now()
    )


def _count(client: ShopifyClient, backfill: Backfill) -> None:
    """Learn how many orders and stock items there are to import, for the progress bar."""
    since = backfill.since.isoformat(timespec="seconds")
    counts = client.query(COUNTS_QUERY, {"query": f"created_at:>='{since}'"}).data
    backfill.orders_total = counts["ordersCount"]["count"]
    backfill.items_total = counts["productVariantsCount"]["count"]  # one inventory item each
    backfill.save(update_fields=["orders_total", "items_total"])


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
        commerce.apply_records(store=backfill.store, records=records, imported=True)
        backfill.orders_done += len(connection["edges"])
        if not page["hasNextPage"]:
            backfill.phase, backfill.cursor = "stock", ""
            stores.extend_history(store=backfill.store, since=backfill.since)
        elif backfill.orders_done >= PAGED_ORDERS_LIMIT and connection["edges"]:
            # A large shop: the orders created from the last one read on come in bulk
            # (the boundary order again, harmlessly: it changes nothing the second time).
            backfill.phase = "orders_bulk"
            backfill.cursor = json.dumps({"from": connection["edges"][-1]["node"]["createdAt"]})
        else:
            backfill.cursor = page["endCursor"]
        backfill.save(update_fields=["orders_done", "cursor", "phase"])


def _start_bulk(client: ShopifyClient, backfill: Backfill) -> None:
    start = json.loads(backfill.cursor)["from"]
    query = BULK_ORDERS_QUERY % {"query": f"created_at:>='{start}'"}
    result = client.query(RUN_BULK, {"query": query}).data["bulkOperationRunQuery"]
    if result["userErrors"]:
        raise ShopifyError("; ".join(error["message"] for error in result["userErrors"]))
    backfill.phase = "orders_bulk_wait"
    backfill.cursor = json.dumps({"operation": result["bulkOperation"]["id"]})
    backfill.save(update_fields=["phase", "cursor"])


def _poll_bulk(client: ShopifyClient, backfill: Backfill) -> bool:
    """Look at the bulk export once; return whether it is finished (and the phase moved on)."""
    operation_id = json.loads(backfill.cursor)["operation"]
    current = client.query(CURRENT_BULK).data["currentBulkOperation"] or {}
    if current.get("id") != operation_id:
        raise ShopifyError("the shop's bulk operation was replaced by another one")
    status = current.get("status")
    if status == "COMPLETED":
        backfill.phase = "orders_bulk_import"
        backfill.cursor = json.dumps({"url": current.get("url") or "", "line": 0})
        backfill.save(update_fields=["phase", "cursor"])
        return True
    if status in ("FAILED", "CANCELED", "CANCELLED", "EXPIRED"):
        raise ShopifyError(f"Shopify's bulk export ended {status.lower()} ({current.get('errorCode') or 'no code'})")
    return False


def _import_bulk(backfill: Backfill) -> None:
    """Apply the bulk result's orders in chunks, each saved with the line it ends on."""
    position = json.loads(backfill.cursor)
    url, done_lines = position["url"], position["line"]
    if not url:  # Shopify gives no file when nothing matched
        _finish_orders(backfill)
        return
    with (
        outbound.client(guarded=False, timeout=HTTP_TIMEOUT) as http,
        outbound.deadline_of(BULK_DOWNLOAD_SECONDS),
        http.stream("GET", url) as response,
    ):
        if response.status_code != 200:
            raise ShopifyError(f"the bulk export could not be downloaded ({response.status_code})")
        chunk: list[commerce.OrderData] = []
        for end_line, node in _bulk_orders(response.iter_lines(), skip=done_lines):
            try:
                chunk.append(handlers.parse_order(order_payload(node)))
            except PayloadError as exc:
                logger.warning("store %s: skipped an order of the bulk import: %s", backfill.store_id, exc)
            if len(chunk) >= BULK_CHUNK_ORDERS:
                _save_chunk(backfill, chunk, url, end_line)
                chunk = []
        _save_chunk(backfill, chunk, url, None)


def _save_chunk(backfill: Backfill, chunk: list[commerce.OrderData], url: str, end_line: int | None) -> None:
    with transaction.atomic():
        commerce.apply_records(store=backfill.store, records=chunk, imported=True)
        if end_line is None:
            _finish_orders(backfill)
            return
        backfill.orders_done = backfill.store.orders.filter(placed_at__gte=backfill.since).count()
        backfill.cursor = json.dumps({"url": url, "line": end_line})
        backfill.save(update_fields=["orders_done", "cursor"])


def _finish_orders(backfill: Backfill) -> None:
    backfill.orders_done = backfill.store.orders.filter(placed_at__gte=backfill.since).count()
    backfill.phase, backfill.cursor = "stock", ""
    backfill.save(update_fields=["orders_done", "phase", "cursor"])
    stores.extend_history(store=backfill.store, since=backfill.since)


def _bulk_orders(lines: Iterator[str], *, skip: int) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (lines read through this order, order node with its line items) from JSONL.

    An order's line items follow it as lines carrying its id in `__parentId`; an order is
    complete when the next order starts (or the file ends).
    """
    current: dict[str, Any] | None = None
    number = 0
    for number, raw in enumerate(lines, start=1):
        if number <= skip or not raw.strip():
            continue
        line = json.loads(raw)
        if "__parentId" in line:
            if current is not None and line["__parentId"] == current["id"]:
                current["lineItems"]["edges"].append({"node": line})
            continue
        if current is not None:
            yield number - 1, current
        current = {**line, "lineItems": {"edges": []}}
    if current is not None:
        yield number, current


def _stock_page(client: ShopifyClient, backfill: Backfill) -> None:
    records, next_cursor, items = read_stock_page(client, backfill.cursor or None)
    with transaction.atomic():
        commerce.apply_records(store=backfill.store, records=records, imported=True)
        backfill.items_done += items
        if next_cursor:
            backfill.cursor = next_cursor
        else:
            backfill.phase, backfill.cursor = "done", ""
            backfill.status, backfill.finished_at = BackfillStatus.DONE, timezone.now()
        backfill.save(update_fields=["items_done", "cursor", "phase", "status", "finished_at"])


def read_stock_page(
    client: ShopifyClient, after: str | None, *, query: str | None = None
) -> tuple[list[commerce.StockData], str | None, int]:
    """One page of the shop's inventory items (those matching `query`) with their levels and SKUs.

    Return the stock records, the next page's cursor (None after the last page) and the
    number of items read. The SKU is what `inventory_levels/update` webhooks lack: kept
    with the level, it names the item on the dashboard.
    """
    result = client.query(ITEMS_QUERY, {"first": ITEMS_PER_PAGE, "after": after, "query": query})
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
    return records, page["endCursor"] if page["hasNextPage"] else None, len(connection["edges"])


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
        "test": bool(node.get("test")),
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
