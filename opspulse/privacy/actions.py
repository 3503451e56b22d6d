"""Privacy requests (shopify.dev/docs/apps/build/privacy-law-compliance): a customer's
export and erasure, a shop's erasure, and how long exports are kept.

They arrive through the drain like any webhook and run in its batch's transaction, so a
request is done exactly when its delivery is marked done. What OpsPulse holds about a
customer is found through the holders of opspulse.privacy.holders. Logs name ids, never
the customer.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from opspulse.privacy import holders
from opspulse.privacy.models import CustomerDataRequest
from opspulse.stores.models import Integration, IntegrationStatus, Store

logger = logging.getLogger("opspulse.privacy")


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


# Applied for a disconnected store too: its history is still held.
PrivacyRequest = CustomerRedactionRequested | ShopRedactionRequested | CustomerDataRequested


@transaction.atomic
def redact_customer(*, store_id: int, request: CustomerRedactionRequested) -> None:
    """Erase the customer's personal data from everything the store holds about them.

    The orders named by the request, and those whose webhooks carry the customer's id
    or email, lose their first name and city; each of the store's webhooks about those
    orders or carrying the customer keeps only its bookkeeping fields. Totals, metrics
    and other customers stay as they are. The data requests made for the customer go
    too: their exports are that same data.
    """
    store = store_named(store_id, request.shop_domain, "customers/redact")
    if store is None:
        return
    customer = _customer(store, request)
    erased = [held.erase() for held in holders.find(customer)]
    identity = Q(customer_external_id=request.customer_id) if request.customer_id else Q(pk__in=[])
    if request.email:
        identity |= Q(customer_email__iexact=request.email)
    CustomerDataRequest.objects.filter(identity, store=store).delete()
    logger.info("customers/redact: store %s, %s redacted", store.pk, " and ".join(erased))


@transaction.atomic
def erase_shop(*, store_id: int, request: ShopRedactionRequested) -> None:
    """Delete the store and everything that belongs to it, unless the app was installed again.

    Shopify sends shop/redact 48 hours after the uninstall and nothing else for the shop
    in between; the delivery itself goes with the store, and the log keeps the erasure.
    """
    store = Store.objects.select_for_update().filter(pk=store_id).first()
    if store is None:
        return
    if store_named(store_id, request.shop_domain, "shop/redact") is None:
        return
    if Integration.objects.filter(store=store, status=IntegrationStatus.ACTIVE).exists():
        not_acted_on(store.pk, "shop/redact", "the app was installed again since it was uninstalled")
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
    store = store_named(store_id, request.shop_domain, "customers/data_request")
    if store is None:
        return None
    data_request, created = CustomerDataRequest.objects.get_or_create(
        store=store,
        external_id=request.request_id,
        defaults={
            "customer_external_id": request.customer_id,
            "customer_email": request.email,
            "export": customer_export(store=store, request=request),
        },
    )
    if created:
        logger.info("customers/data_request: store %s, request %s recorded", store.pk, data_request.public_id)
    return data_request


def customer_export(*, store: Store, request: CustomerDataRequested) -> dict[str, Any]:
    """Return the customer's data as OpsPulse holds it, for the merchant to hand over.

    That is the customer's orders as the dashboard knows them, and every stored webhook
    that carries the customer or is about one of their orders, as Shopify sent it.
    """
    export: dict[str, Any] = {
        "shop_domain": store.domain,
        "data_request_id": request.request_id,
        "customer": {"id": request.customer_id, "email": request.email},
        "generated_at": timezone.now().isoformat(),
    }
    for held in holders.find(_customer(store, request)):
        export.update(held.export())
    return export


def _customer(store: Store, request: CustomerRedactionRequested | CustomerDataRequested) -> holders.Customer:
    return holders.Customer(
        store_id=store.pk, customer_id=request.customer_id, email=request.email, order_ids=set(request.order_ids)
    )


def store_named(store_id: int, shop_domain: str, topic: str) -> Store | None:
    """The store, if the payload names the shop whose signed webhook it came in.

    The endpoint found the store by the X-Shopify-Shop-Domain header, so its domain is
    the header's: the payload, the header and the store must all name the same shop.
    """
    store = Store.objects.filter(pk=store_id).first()
    if store is None:
        return None
    if store.domain != shop_domain.strip().lower():
        not_acted_on(store_id, topic, "the payload names another shop than the one that sent it")
        return None
    return store


def not_acted_on(store_id: int, topic: str, reason: str) -> None:
    """Log why a shop's request is not acted on, and tell the holders of its delivery
    (opspulse.ingest marks it ignored with the reason)."""
    logger.warning("%s for store %s not acted on: %s", topic, store_id, reason)
    holders.refused(store_id, topic, reason)


def remove_privacy_exports(*, now: datetime | None = None) -> int:
    """Delete the customer data requests, with their exports, past PRIVACY_EXPORT_RETENTION_DAYS; return how many.

    A period of 0 (or less) keeps them for ever.
    """
    days = settings.PRIVACY_EXPORT_RETENTION_DAYS
    if days <= 0:
        return 0
    cutoff = (now or timezone.now()) - timedelta(days=days)
    deleted, _ = CustomerDataRequest.objects.filter(created_at__lt=cutoff).delete()
    return deleted
