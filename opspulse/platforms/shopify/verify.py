"""What the ingest endpoint needs to know about a Shopify webhook delivery.

Headers: shopify.dev/docs/apps/build/webhooks/delivery-structure. Header names are
compared lowercased (HTTP/2 lowercases them anyway).
"""

from __future__ import annotations

import hashlib

SIGNATURE_HEADER = "x-shopify-hmac-sha256"
SHOP_HEADER = "x-shopify-shop-domain"
TOPIC_HEADER = "x-shopify-topic"
# Unique per delivery: the duplicate key. X-Shopify-Event-Id is shared by every
# subscription's delivery of one merchant action, so it is kept for correlation only.
WEBHOOK_ID_HEADER = "x-shopify-webhook-id"
EVENT_ID_HEADER = "x-shopify-event-id"
# Every app must take these, for any shop, installed or not (privacy law compliance).
COMPLIANCE_TOPICS = frozenset({"customers/data_request", "customers/redact", "shop/redact"})
KEPT_HEADERS = (
    TOPIC_HEADER,
    SHOP_HEADER,
    WEBHOOK_ID_HEADER,
    EVENT_ID_HEADER,
    "x-shopify-api-version",
    "x-shopify-triggered-at",
)


def delivery_key(headers: dict[str, str], body: bytes) -> str:
    return headers.get(WEBHOOK_ID_HEADER) or "sha256:" + hashlib.sha256(body).hexdigest()
