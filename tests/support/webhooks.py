"""Build and send signed webhooks the way Shopify and WooCommerce do."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
from django.db import connection

from opspulse.sim import payloads
from opspulse.sim.payloads import LineSpec
from tests.support.stores import SHOPIFY_SECRET, WOO_SECRET

T0 = datetime(2026, 11, 29, 9, 30, tzinfo=UTC)

TEE = LineSpec(line_id=1, product_id=101, variant_id=1001, sku="TEE-BLK-M", title="Black tee", quantity=2, price=Decimal("25.00"))
MUG = LineSpec(line_id=2, product_id=102, variant_id=1002, sku="MUG-01", title="Mug", quantity=1, price=Decimal("12.50"))


def shopify_order(order_id: int = 5001, *, minutes: int = 0, at: datetime = T0, **kwargs) -> dict:
    """An order placed at `at` (or `created_at`), as updated `minutes` later."""
    kwargs.setdefault("items", [TEE, MUG])
    return payloads.shopify_order(
        order_id,
        number=order_id - 4000,
        created_at=kwargs.pop("created_at", at),
        updated_at=at + timedelta(minutes=minutes),
        **kwargs,
    )


def post_shopify(base_url: str, store, topic: str, payload: dict | None = None, *, body: bytes | None = None,
                 secret: str = SHOPIFY_SECRET, webhook_id: str | None = None, headers: dict | None = None) -> httpx.Response:
    body = payloads.encode(payload) if body is None else body
    all_headers = payloads.shopify_headers(
        shop_domain=store.domain, topic=topic, body=body, secret=secret, webhook_id=webhook_id
    )
    all_headers.update(headers or {})
    all_headers = {k: v for k, v in all_headers.items() if v is not None}
    return httpx.post(f"{base_url}/webhooks/shopify", content=body, headers=all_headers, timeout=10)


def post_woo(base_url: str, store, topic: str, payload: dict | None = None, *, body: bytes | None = None,
             secret: str = WOO_SECRET, headers: dict | None = None) -> httpx.Response:
    body = payloads.encode(payload) if body is None else body
    all_headers = payloads.woo_headers(topic=topic, body=body, secret=secret)
    all_headers.update(headers or {})
    all_headers = {k: v for k, v in all_headers.items() if v is not None}
    return httpx.post(f"{base_url}/webhooks/woocommerce/{store.ingest_token}", content=body, headers=all_headers, timeout=10)


@contextmanager
def orders_refused(external_id: str) -> Iterator[None]:
    """While inside, the database refuses to store the order `external_id` ("disk on fire"),
    as a fault in PostgreSQL would: processing it raises every time, other orders go through."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            CREATE FUNCTION refuse_order() RETURNS trigger AS $$
            BEGIN RAISE EXCEPTION 'disk on fire'; END $$ LANGUAGE plpgsql;
            CREATE TRIGGER refuse_order BEFORE INSERT ON commerce_order
                FOR EACH ROW WHEN (NEW.external_id = '{int(external_id)}') EXECUTE FUNCTION refuse_order();
            """
        )
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TRIGGER refuse_order ON commerce_order; DROP FUNCTION refuse_order();")
