"""What the ingest endpoint needs to know about a WooCommerce webhook delivery.

Headers: woocommerce/woocommerce plugins/woocommerce/includes/class-wc-webhook.php.
"""

from __future__ import annotations

import hashlib

SIGNATURE_HEADER = "x-wc-webhook-signature"
TOPIC_HEADER = "x-wc-webhook-topic"
WEBHOOK_ID_HEADER = "x-wc-webhook-id"
KEPT_HEADERS = (
    TOPIC_HEADER,
    WEBHOOK_ID_HEADER,
    "x-wc-webhook-delivery-id",
    "x-wc-webhook-source",
    "x-wc-webhook-resource",
    "x-wc-webhook-event",
)


def delivery_key(headers: dict[str, str], body: bytes) -> str:
    # X-WC-Webhook-Delivery-ID is wp_hash(id + time()): new on every send, so it cannot
    # catch a resend. The payload is built at send time from the resource's current
    # state, so the same webhook sending the same body is the same event.
    return f"{headers.get(WEBHOOK_ID_HEADER, '')}:{hashlib.sha256(body).hexdigest()}"


def is_ping(headers: dict[str, str], body: bytes) -> bool:
    """WooCommerce's activation ping: form body "webhook_id=<id>", no signature headers."""
    return SIGNATURE_HEADER not in headers and body.startswith(b"webhook_id=")
