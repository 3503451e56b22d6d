"""Who holds a customer's personal data, for the export and the erasure of opspulse.privacy.actions.

Every place that keeps personal data registers a holder here, so that an export is
complete and an erasure misses nothing. privacy sits below the apps that keep webhook
bodies (opspulse.ingest registers its own holder from IngestConfig.ready()) and never
reads their tables; the orders (opspulse.commerce, below privacy) are registered by
PrivacyConfig.ready().
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from django.db import transaction

from opspulse.commerce import actions as commerce
from opspulse.commerce.models import Order


@dataclass
class Customer:
    """The customer a privacy request is about, in one store."""

    store_id: int
    customer_id: str
    email: str
    # Those the request names. A holder that finds more of the customer's orders (a
    # webhook that carries the customer) adds them while finding.
    order_ids: set[str]


class Held(Protocol):
    """What one holder keeps about a customer, once found."""

    def export(self) -> dict[str, list[dict[str, Any]]]:
        """Return the records, under the export's key for them."""

    def erase(self) -> str:
        """Erase the customer's personal data from the records; return what was erased, for the log."""


Holder = Callable[[Customer], Held]
# Told that a shop's request is not acted on: (store id, topic, reason).
RefusalListener = Callable[[int, str, str], None]

_holders: list[Holder] = []
_refusal_listeners: list[RefusalListener] = []


def register(holder: Holder) -> None:
    if holder not in _holders:
        _holders.append(holder)


def register_refusal_listener(listener: RefusalListener) -> None:
    if listener not in _refusal_listeners:
        _refusal_listeners.append(listener)


def find(customer: Customer) -> list[Held]:
    """Return what every holder keeps about the customer.

    Every holder finds before any exports or erases, so all of them see every order
    found through the customer.
    """
    return [holder(customer) for holder in _holders]


def refused(store_id: int, topic: str, reason: str) -> None:
    for listener in _refusal_listeners:
        listener(store_id, topic, reason)


@dataclass
class CustomerOrders:
    """The customer's orders as the dashboard knows them (their first name and city)."""

    customer: Customer

    def export(self) -> dict[str, list[dict[str, Any]]]:
        orders = (
            Order.objects.filter(store_id=self.customer.store_id, external_id__in=set(self.customer.order_ids))
            .prefetch_related("line_items")
            .order_by("placed_at", "pk")
        )
        return {
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
            ]
        }

    def erase(self) -> str:
        store_id, order_ids = self.customer.store_id, self.customer.order_ids
        commerce.forget_customer_details(store_id=store_id, order_external_ids=order_ids)
        # The drain applies a batch's order records after its platform events: an update
        # of one of these orders in the same batch would write the name back. Blank the
        # fields again once the batch is committed (when there was none, this changes nothing).
        transaction.on_commit(
            lambda: commerce.forget_customer_details(store_id=store_id, order_external_ids=order_ids)
        )
        return f"{len(order_ids)} orders"


def orders_of(customer: Customer) -> CustomerOrders:
    return CustomerOrders(customer)
