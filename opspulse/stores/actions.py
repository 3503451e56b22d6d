"""Store and integration writes."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from opspulse.accounts.audit import record_event
from opspulse.accounts.models import AuditKind
from opspulse.commerce import actions as commerce
from opspulse.commerce.models import Order
from opspulse.ingest.models import DeliveryStatus, WebhookDelivery
from opspulse.platforms.shopify import payloads as shopify_payloads
from opspulse.platforms.shopify.verify import COMPLIANCE_TOPICS
from opspulse.stores.models import CustomerDataRequest, Integration, IntegrationStatus, Store

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
    from opspulse.stores.tasks import defer_store_deletion

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


@dataclass(frozen=True)
class CustomerRedactionRequested:
    """Erase a customer's personal data (Shopify's customers/redact)."""

    shop_domain: str
    customer_id: str
    email: str
    order_ids: tuple[str, ...]


@dataclass(frozen=True)
class ShopRedactionRequested:
    """Erase the shop's data, 48 hours after an uninstall (Shopify's shop/redact)."""

    shop_domain: str


@dataclass(frozen=True)
class CustomerDataRequested:
    """A customer asked the merchant for their data (Shopify's customers/data_request)."""

    shop_domain: str
    request_id: str
    customer_id: str
    email: str
    order_ids: tuple[str, ...]


def extend_history(*, store: Store, since: datetime) -> None:
    """Record that OpsPulse now knows the store's sales from `since` on (an import
    brought them in), unless its history already starts earlier."""
    Store.objects.filter(pk=store.pk, history_starts_at__gt=since).update(history_starts_at=since)
    store.history_starts_at = min(store.history_starts_at, since)


# Privacy requests (shopify.dev/docs/apps/build/privacy-law-compliance). They arrive
# through the drain like any webhook and run in its batch's transaction, so a request
# is done exactly when its delivery is marked done. Logs name ids, never the customer.


@transaction.atomic
def redact_customer(*, store_id: int, request: CustomerRedactionRequested) -> None:
    """Erase the customer's personal data from the store's orders and stored webhooks.

    The orders named by the request, and those whose webhooks carry the customer's id
    or email, lose their first name and city; each of the store's webhooks about those
    orders or carrying the customer keeps only its bookkeeping fields (see
    `shopify_payloads.redacted`). Totals, metrics and other customers stay as they are.
    The data requests made for the customer go too: their exports are that same data.
    """
    store = _store_named(store_id, request.shop_domain, "customers/redact")
    if store is None:
        return
    deliveries, order_ids = _customer_deliveries(
        store_id=store.pk, customer_id=request.customer_id, email=request.email, order_ids=request.order_ids
    )
    WebhookDelivery.objects.bulk_update(
        [
            WebhookDelivery(pk=pk, body=_encode(shopify_payloads.redacted(topic, payload)))
            for pk, (topic, payload) in deliveries.items()
        ],
        ["body"],
        batch_size=500,
    )
    _blank_customer_fields(store.pk, order_ids)
    identity = Q(customer_external_id=request.customer_id) if request.customer_id else Q(pk__in=[])
    if request.email:
        identity |= Q(customer_email__iexact=request.email)
    CustomerDataRequest.objects.filter(identity, store=store).delete()
    # The drain applies a batch's order records after its platform events: an update of
    # one of these orders in the same batch would write the name back. Blank the fields
    # again once the batch is committed (when there was none, this changes nothing).
    transaction.on_commit(lambda: _blank_customer_fields(store.pk, order_ids))
    logger.info(
        "customers/redact: store %s, %s orders and %s webhooks redacted", store.pk, len(order_ids), len(deliveries)
    )


def _blank_customer_fields(store_id: int, order_ids: set[str]) -> None:
    commerce.forget_customer_details(store_id=store_id, order_external_ids=order_ids)


@transaction.atomic
def erase_shop(*, store_id: int, request: ShopRedactionRequested) -> None:
    """Delete the store and everything that belongs to it, unless the app was installed again.

    Shopify sends shop/redact 48 hours after the uninstall and nothing else for the shop
    in between; the delivery itself goes with the store, and the log keeps the erasure.
    """
    store = Store.objects.select_for_update().filter(pk=store_id).first()
    if store is None:
        return
    if _store_named(store_id, request.shop_domain, "shop/redact") is None:
        return
    if Integration.objects.filter(store=store, status=IntegrationStatus.ACTIVE).exists():
        _ignore(store.pk, "shop/redact", "the app was installed again since it was uninstalled")
        return
    account_id, public_id, shop_id = store.account_id, store.public_id, store.external_id
    _, deleted = store.delete()
    logger.info(
        "shop/redact: store %s (public id %s, Shopify shop %s) of account %s erased: %s",
        store_id, public_id, shop_id or "-", account_id,
        ", ".join(f"{count} {label}" for label, count in sorted(deleted.items())),
    )


@transaction.atomic
def record_data_request(*, store_id: int, request: CustomerDataRequested) -> CustomerDataRequest | None:
    """Record the request with an export of what OpsPulse holds about the customer.

    A duplicate delivery finds the request already recorded and changes nothing.
    """
    store = _store_named(store_id, request.shop_domain, "customers/data_request")
    if store is None:
        return None
    deliveries, order_ids = _customer_deliveries(
        store_id=store.pk, customer_id=request.customer_id, email=request.email, order_ids=request.order_ids
    )
    data_request, created = CustomerDataRequest.objects.get_or_create(
        store=store,
        external_id=request.request_id,
        defaults={
            "customer_external_id": request.customer_id,
            "customer_email": request.email,
            "export": customer_export(store=store, request=request, order_ids=order_ids, deliveries=deliveries),
        },
    )
    if created:
        logger.info("customers/data_request: store %s, request %s recorded", store.pk, data_request.public_id)
    return data_request


def customer_export(
    *, store: Store, request: CustomerDataRequested, order_ids: Iterable[str], deliveries: dict[int, tuple[str, Any]]
) -> dict[str, Any]:
    """Return the customer's data as OpsPulse holds it, for the merchant to hand over.

    That is the customer's orders as the dashboard knows them, and every stored webhook
    that carries the customer or is about one of their orders, as Shopify sent it.
    """
    received = dict(WebhookDelivery.objects.filter(pk__in=list(deliveries)).values_list("pk", "received_at"))
    orders = (
        Order.objects.filter(store=store, external_id__in=set(order_ids))
        .prefetch_related("line_items")
        .order_by("placed_at", "pk")
    )
    return {
        "shop_domain": store.domain,
        "data_request_id": request.request_id,
        "customer": {"id": request.customer_id, "email": request.email},
        "generated_at": timezone.now().isoformat(),
        "orders": [
            {
                "number": order.number,
                "placed_at": order.placed_at.isoformat(),
                "total": str(order.total),
                "currency": order.currency,
                "status": order.status,
                "customer_first_name": order.customer_first_name,
                "customer_city": order.customer_city,
                "line_items": [
                    {"title": item.title, "sku": item.sku, "quantity": item.quantity, "price": str(item.price)}
                    for item in sorted(order.line_items.all(), key=lambda item: item.pk)
                ],
            }
            for order in orders
        ],
        "webhooks": [
            {"topic": topic, "received_at": received[pk].isoformat(), "payload": payload}
            for pk, (topic, payload) in sorted(deliveries.items())
            # Privacy requests themselves are not data kept about the customer.
            if pk in received and topic not in COMPLIANCE_TOPICS
        ],
    }


def _store_named(store_id: int, shop_domain: str, topic: str) -> Store | None:
    """The store, if the payload names the shop whose signed webhook it came in.

    The endpoint found the store by the X-Shopify-Shop-Domain header, so its domain is
    the header's: the payload, the header and the store must all name the same shop.
    """
    store = Store.objects.filter(pk=store_id).first()
    if store is None:
        return None
    if store.domain != shop_domain.strip().lower():
        _ignore(store_id, topic, "the payload names another shop than the one that sent it")
        return None
    return store


def _ignore(store_id: int, topic: str, reason: str) -> None:
    """Log why a shop's request is not acted on, and mark its delivery ignored with the reason.

    The drain marks the delivery processed when the batch ends, so the mark is made after
    the batch commits.
    """
    logger.warning("%s for store %s not acted on: %s", topic, store_id, reason)
    pending = list(
        WebhookDelivery.objects.filter(store_id=store_id, topic=topic, status=DeliveryStatus.PENDING).values_list(
            "pk", flat=True
        )
    )
    transaction.on_commit(
        lambda: WebhookDelivery.objects.filter(pk__in=pending).update(status=DeliveryStatus.IGNORED, error=reason)
    )


# Webhook bodies that contain one of the needles, byte for byte; each is then decoded
# and checked (a customer id may also be part of a longer number).
DELIVERIES_CONTAINING = """
    SELECT id, topic, body FROM ingest_webhook_delivery
    WHERE store_id = %s AND EXISTS (SELECT FROM unnest(%s::bytea[]) AS needle WHERE position(needle IN body) > 0)
    ORDER BY id
"""


def _customer_deliveries(
    *, store_id: int, customer_id: str, email: str, order_ids: Iterable[str]
) -> tuple[dict[int, tuple[str, Any]], set[str]]:
    """Return the store's webhooks about the customer, and the ids of the customer's orders.

    Webhooks: id → (topic, decoded payload, None if unreadable), those that carry the
    customer's id or email or are about one of the orders. Orders: those named, and
    those of the webhooks that carry the customer.
    """
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


def _decode(body: bytes) -> Any:
    try:
        return json.loads(body.decode("utf-8-sig"))
    except (ValueError, RecursionError):
        return None


def _encode(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()
