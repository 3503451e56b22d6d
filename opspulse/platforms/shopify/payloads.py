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
    myshopify_domain: str | None = None
