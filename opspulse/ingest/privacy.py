"""The stored webhooks' part in privacy requests (opspulse.privacy.holders).

A webhook body is kept as the platform sent it, so it may carry a customer: this finds
a customer's webhooks for an export, redacts them for an erasure, and marks a request
that is not acted on ignored. Registered from IngestConfig.ready().
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction

from opspulse.ingest.models import DeliveryStatus, WebhookDelivery
from opspulse.platforms.shopify import payloads as shopify_payloads
from opspulse.platforms.shopify.verify import COMPLIANCE_TOPICS
from opspulse.privacy.holders import Customer

# Webhook bodies that contain one of the needles, byte for byte; each is then decoded
# and checked (a customer id may also be part of a longer number).
DELIVERIES_CONTAINING = """
    SELECT id, topic, body FROM ingest_webhook_delivery
    WHERE store_id = %s AND EXISTS (SELECT FROM unnest(%s::bytea[]) AS needle WHERE position(needle IN body) > 0)
    ORDER BY id
"""


@dataclass
class CustomerWebhooks:
    """The store's webhooks about a customer: id → (topic, decoded payload, None if unreadable)."""

    deliveries: dict[int, tuple[str, Any]]

    def export(self) -> dict[str, list[dict[str, Any]]]:
        """Every webhook that carries the customer or is about one of their orders, as the platform sent it."""
        received = dict(WebhookDelivery.objects.filter(pk__in=list(self.deliveries)).values_list("pk", "received_at"))
        return {
            "webhooks": [
                {"topic": topic, "received_at": received[pk].isoformat(), "payload": payload}
                for pk, (topic, payload) in sorted(self.deliveries.items())
                # Privacy requests themselves are not data kept about the customer.
                if pk in received and topic not in COMPLIANCE_TOPICS
            ]
        }

    def erase(self) -> str:
        """Keep only each webhook's bookkeeping fields (see `shopify_payloads.redacted`)."""
        WebhookDelivery.objects.bulk_update(
            [
                WebhookDelivery(pk=pk, body=_encode(shopify_payloads.redacted(topic, payload)))
                for pk, (topic, payload) in self.deliveries.items()
            ],
            ["body"],
            batch_size=500,
        )
        return f"{len(self.deliveries)} webhooks"


def customer_webhooks(customer: Customer) -> CustomerWebhooks:
    """Return the store's webhooks about the customer, adding the orders they name to the customer's.

    Webhooks: those that carry the customer's id or email or are about one of the
    orders. Orders: those named, and those of the webhooks that carry the customer.
    """
    deliveries, customer.order_ids = _customer_deliveries(
        store_id=customer.store_id, customer_id=customer.customer_id, email=customer.email,
        order_ids=customer.order_ids,
    )
    return CustomerWebhooks(deliveries)


def _customer_deliveries(
    *, store_id: int, customer_id: str, email: str, order_ids: Iterable[str]
) -> tuple[dict[int, tuple[str, Any]], set[str]]:
    order_ids = set(order_ids)
    identity = {needle.encode() for needle in (customer_id, email, email.lower()) if needle}
    found: dict[int, tuple[str, Any]] = {}
    needles = identity | {order_id.encode() for order_id in order_ids}
    while needles:
        with connection.cursor() as cursor:
            cursor.execute(DELIVERIES_CONTAINING, [store_id, sorted(needles)])
            rows = cursor.fetchall()
        more_orders: set[str] = set()
        for pk, topic, body in rows:
            if pk in found:
                continue
            body = bytes(body)
            payload = _decode(body)
            order_id = shopify_payloads.order_id_of(topic, payload)
            if shopify_payloads.names_customer(payload, customer_id=customer_id, email=email):
                found[pk] = (topic, payload)
                if order_id is not None and order_id not in order_ids:
                    more_orders.add(order_id)
            elif (order_id is not None and order_id in order_ids) or (
                payload is None and any(needle in body for needle in identity)
            ):
                found[pk] = (topic, payload)
        order_ids |= more_orders
        # The other webhooks of the orders found through the customer.
        needles = {order_id.encode() for order_id in more_orders}
    return found, order_ids


def ignore_request(store_id: int, topic: str, reason: str) -> None:
    """Mark the store's pending deliveries of the topic ignored, with the reason.

    The drain marks the delivery processed when the batch ends, so the mark is made after
    the batch commits.
    """
    pending = list(
        WebhookDelivery.objects.filter(store_id=store_id, topic=topic, status=DeliveryStatus.PENDING).values_list(
            "pk", flat=True
        )
    )
    transaction.on_commit(
        lambda: WebhookDelivery.objects.filter(pk__in=pending).update(status=DeliveryStatus.IGNORED, error=reason)
    )


def _decode(body: bytes) -> Any:
    try:
        return json.loads(body.decode("utf-8-sig"))
    except (ValueError, RecursionError):
        return None


def _encode(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()
