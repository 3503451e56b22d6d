"""WooCommerce REST v3 resources as sent in webhooks.

The *_gmt dates carry no zone designator ("2016-05-15T20:17:52") and are UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, field_validator


class _Payload(BaseModel):
    model_config = ConfigDict(extra="ignore")


def _as_utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class Address(_Payload):
    first_name: str | None = None
    city: str | None = None


class LineItem(_Payload):
    id: int
    name: str
    product_id: int
    variation_id: int = 0
    quantity: int
    total: Decimal
    sku: str | None = None
    price: Decimal


class Order(_Payload):
    id: int
    number: str
    status: str
    currency: str
    total: Decimal
    date_created_gmt: datetime
    date_modified_gmt: datetime
    billing: Address | None = None
    shipping: Address | None = None
    line_items: list[LineItem]

    _utc = field_validator("date_created_gmt", "date_modified_gmt")(_as_utc)


class Product(_Payload):
    id: int
    name: str
    sku: str | None = None
    manage_stock: bool = False
    stock_quantity: int | None = None
    date_modified_gmt: datetime

    _utc = field_validator("date_modified_gmt")(_as_utc)
