"""Shopify webhook payloads, validated strictly enough to trust what we count.

Order resource: shopify.dev/docs/api/admin-rest/latest/resources/order. Money
amounts arrive as strings; timestamps carry the shop's UTC offset.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from pydantic import BaseModel, ConfigDict


class _Payload(BaseModel):
    model_config = ConfigDict(extra="ignore")


class Customer(_Payload):
    first_name: str | None = None


class Address(_Payload):
    city: str | None = None


class LineItem(_Payload):
    id: int
    product_id: int | None = None
    variant_id: int | None = None
    sku: str | None = None
    title: str
    name: str | None = None
    quantity: int
    price: Decimal


class Order(_Payload):
    id: int
    name: str
    currency: str
    total_price: Decimal
    # After order edits and refunds; absent from older API versions.
    current_total_price: Decimal | None = None
    created_at: datetime
    updated_at: datetime
    cancelled_at: datetime | None = None
    financial_status: str | None = None
    fulfillment_status: str | None = None
    customer: Customer | None = None
    shipping_address: Address | None = None
    billing_address: Address | None = None
    line_items: list[LineItem]
    # Placed through a test payment gateway or in a development store.
    test: bool = False


class InventoryLevel(_Payload):
    inventory_item_id: int
    location_id: int
    available: int | None
    updated_at: datetime


class CartLineItem(_Payload):
    quantity: int
    line_price: Decimal


class Cart(_Payload):
    id: str
    token: str | None = None
    created_at: datetime
    updated_at: datetime
    line_items: list[CartLineItem]


class Shop(_Payload):
    """The Shop resource, as app/uninstalled sends it."""

    id: int
    # The shop's own *.myshopify.com name; `domain` is its primary (maybe custom) domain.
    myshopify_domain: str | None = None
    domain: str | None = None


class BulkOperationFinish(_Payload):
    """bulk_operations/finish: a bulk operation of the app completed, failed or was cancelled."""

    admin_graphql_api_id: str
    status: str
    error_code: str | None = None


# The mandatory compliance topics (shopify.dev/docs/apps/build/privacy-law-compliance).


class ComplianceCustomer(_Payload):
    id: int | None = None
    email: str | None = None
    phone: str | None = None


class CustomersRedact(_Payload):
    shop_id: int
    shop_domain: str
    customer: ComplianceCustomer
    orders_to_redact: list[int] = []


class ShopRedact(_Payload):
    shop_id: int
    shop_domain: str


class DataRequest(_Payload):
    id: int


class CustomersDataRequest(_Payload):
    shop_id: int
    shop_domain: str
    customer: ComplianceCustomer
    orders_requested: list[int] = []
    data_request: DataRequest


# What a redacted payload keeps: the fields OpsPulse reads that say nothing about the
# customer, so an order payload still parses as the order it was (its totals and lines
# are the merchant's, not the customer's). Everything else goes: customer, email,
# phone, addresses, names, note, note_attributes, browser_ip, client_details, line item
# properties (personalisation), fulfillments (destinations, tracking), refunds (notes).
# An allowlist, because a list of personal keys would miss whatever Shopify adds next.
ORDER_FIELDS_KEPT = frozenset({
    "id", "admin_graphql_api_id", "name", "order_number", "currency", "total_price", "current_total_price",
    "subtotal_price", "total_tax", "created_at", "updated_at", "processed_at", "cancelled_at", "closed_at",
    "financial_status", "fulfillment_status", "test",
})
LINE_ITEM_FIELDS_KEPT = frozenset({
    "id", "admin_graphql_api_id", "product_id", "variant_id", "sku", "title", "name", "quantity", "price",
})
OTHER_FIELDS_KEPT = frozenset({"id", "admin_graphql_api_id", "order_id", "created_at", "updated_at"})
EMAIL_KEYS = frozenset({"email", "contact_email"})


def is_order_topic(topic: str) -> bool:
    return topic.startswith("orders/")


def redacted(topic: str, payload: object) -> dict:
    """Return `payload` with only the fields OpsPulse needs for bookkeeping, marked redacted."""
    if not isinstance(payload, dict):
        return {"redacted": True}
    kept_fields = ORDER_FIELDS_KEPT if is_order_topic(topic) else OTHER_FIELDS_KEPT
    kept = {key: value for key, value in payload.items() if key in kept_fields}
    if is_order_topic(topic) and isinstance(payload.get("line_items"), list):
        kept["line_items"] = [
            {key: value for key, value in item.items() if key in LINE_ITEM_FIELDS_KEPT}
            for item in payload["line_items"]
            if isinstance(item, dict)
        ]
    return {**kept, "redacted": True}


def order_id_of(topic: str, payload: object) -> str | None:
    """The id of the order a payload is about, if it is about one."""
    if not isinstance(payload, dict):
        return None
    value = payload.get("id") if is_order_topic(topic) else payload.get("order_id")
    return str(value) if isinstance(value, int | str) and value != "" else None


def names_customer(payload: object, *, customer_id: str, email: str) -> bool:
    """Whether the payload carries the customer: their id as a `customer`, or their email anywhere."""
    email = email.lower()
    if isinstance(payload, list):
        return any(names_customer(item, customer_id=customer_id, email=email) for item in payload)
    if not isinstance(payload, dict):
        return False
    for key, value in payload.items():
        if key == "customer" and isinstance(value, dict) and customer_id and str(value.get("id")) == customer_id:
            return True
        if key in EMAIL_KEYS and email and isinstance(value, str) and value.lower() == email:
            return True
        if isinstance(value, dict | list) and names_customer(value, customer_id=customer_id, email=email):
            return True
    return False
