from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from opspulse.sim.payloads import (
    LineSpec,
    encode,
    shopify_cart,
    shopify_headers,
    shopify_inventory_level,
    shopify_order,
    sign_shopify,
    sign_woo,
    woo_headers,
    woo_order,
    woo_product,
)

PLATFORMS_DIR = Path(__file__).resolve().parents[2] / "platforms"
SECRET = "whsec-test-secret"
NEW_YORK = ZoneInfo("America/New_York")
PARIS = ZoneInfo("Europe/Paris")
CREATED = datetime(2025, 10, 14, 10, 12, 33, tzinfo=NEW_YORK)

LINES = [
    LineSpec(
        line_id=14_000_000_000_001,
        product_id=7_100_000_000_001,
        variant_id=44_000_000_000_001,
        sku="NO-005-SAGE",
        title="Insulated Water Bottle 750 ml - Sage",
        quantity=3,
        price=Decimal("19.99"),
    ),
    LineSpec(
        line_id=14_000_000_000_002,
        product_id=7_100_000_000_002,
        variant_id=44_000_000_000_002,
        sku="NO-011-L",
        title="Rain Shell Jacket - L",
        quantity=1,
        price=Decimal("218.99"),
    ),
]


def _expected_signature(body: bytes, secret: str) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def _order(**overrides: object) -> dict:
    arguments: dict = {
        "number": 1042,
        "created_at": CREATED,
        "updated_at": CREATED,
        "items": LINES,
    }
    arguments.update(overrides)
    return shopify_order(5_900_000_000_001, **arguments)


def _woo_order(**overrides: object) -> dict:
    created = datetime(2025, 10, 14, 16, 5, 12, tzinfo=PARIS)
    arguments: dict = {"items": LINES, "date_created": created, "date_modified": created}
    arguments.update(overrides)
    return woo_order(2318, **arguments)


def test_shopify_signature_verifies_with_hmac() -> None:
    body = encode(_order())

    signature = sign_shopify(body, SECRET)

    assert hmac.compare_digest(signature, _expected_signature(body, SECRET))


def test_woo_signature_verifies_with_hmac() -> None:
    body = encode(_woo_order())

    assert hmac.compare_digest(sign_woo(body, SECRET), _expected_signature(body, SECRET))


@pytest.mark.parametrize("sign", [sign_shopify, sign_woo], ids=["shopify_case", "woo_case"])
def test_one_byte_change_breaks_signature(sign) -> None:
    body = encode(_order())
    tampered = body.replace(b'"total_price":"278.96"', b'"total_price":"278.97"')
    assert tampered != body

    assert sign(body, SECRET) != sign(tampered, SECRET)
    assert sign(body, SECRET) != sign(body, SECRET + "x")


def test_shopify_total_equals_sum_of_lines() -> None:
    order = _order()

    lines_total = sum(Decimal(line["price"]) * line["quantity"] for line in order["line_items"])
    assert lines_total == Decimal("278.96")
    assert Decimal(order["total_price"]) == lines_total
    assert Decimal(order["subtotal_price"]) == lines_total
    assert Decimal(order["current_total_price"]) == lines_total
    assert order["total_price_set"]["shop_money"] == {"amount": "278.96", "currency_code": "USD"}
    assert order["total_tax"] == "0.00"


def test_shopify_order_has_platform_shape() -> None:
    order = _order(currency="EUR", city="Paris", first_name="Léa", last_name="Moreau")

    assert order["name"] == "#1042"
    assert order["order_number"] == 1042
    assert order["admin_graphql_api_id"] == "gid://shopify/Order/5900000000001"
    assert order["currency"] == "EUR"
    assert order["created_at"] == "2025-10-14T10:12:33-04:00"
    assert order["cancelled_at"] is None
    assert order["customer"]["first_name"] == "Léa"
    assert order["shipping_address"]["city"] == "Paris"
    assert order["shipping_address"]["country_code"] == "FR"
    line = order["line_items"][0]
    assert line["title"] == "Insulated Water Bottle 750 ml"
    assert line["variant_title"] == "Sage"
    assert line["name"] == "Insulated Water Bottle 750 ml - Sage"
    assert isinstance(line["quantity"], int)
    assert line["price"] == "19.99"
    assert line["admin_graphql_api_id"] == "gid://shopify/LineItem/14000000000001"


def test_shopify_cancelled_refunded_order_keeps_total_but_zeroes_current_total() -> None:
    cancelled_at = CREATED + timedelta(minutes=5)

    order = _order(updated_at=cancelled_at, cancelled_at=cancelled_at, financial_status="refunded")

    assert order["cancelled_at"] == "2025-10-14T10:17:33-04:00"
    assert order["cancel_reason"] == "customer"
    assert order["total_price"] == "278.96"
    assert order["current_total_price"] == "0.00"
    assert order["refunds"][0]["transactions"][0]["amount"] == "278.96"


def test_shopify_fulfilled_order_marks_lines_fulfilled() -> None:
    order = _order(updated_at=CREATED + timedelta(hours=1), fulfillment_status="fulfilled")

    assert order["fulfillment_status"] == "fulfilled"
    assert [line["fulfillable_quantity"] for line in order["line_items"]] == [0, 0]
    assert order["fulfillments"][0]["status"] == "success"


def test_woo_total_equals_sum_of_lines() -> None:
    order = _woo_order()

    lines_total = sum(Decimal(line["total"]) for line in order["line_items"])
    assert Decimal(order["total"]) == lines_total == Decimal("278.96")
    assert [line["subtotal"] for line in order["line_items"]] == ["59.97", "218.99"]
    assert [line["price"] for line in order["line_items"]] == [19.99, 218.99]
    assert all(isinstance(line["quantity"], int) for line in order["line_items"])
    assert isinstance(order["number"], str)


def test_woo_dates_have_no_z_and_gmt_is_utc() -> None:
    completed = datetime(2025, 10, 14, 18, 0, tzinfo=PARIS)
    order = _woo_order(status="completed", date_modified=completed)
    product = woo_product(
        2276,
        name="Headlamp 400 lm",
        sku="AL-012",
        stock_quantity=4,
        date_modified=datetime(2025, 10, 14, 16, 5, 14, tzinfo=PARIS),
    )

    dates = {key: value for key, value in {**order, **product}.items() if key.startswith("date_")}
    assert dates and all(value is None or not value.endswith("Z") for value in dates.values())
    assert all(value is None or "+" not in value for value in dates.values())
    assert order["date_created"] == "2025-10-14T16:05:12"
    assert order["date_created_gmt"] == "2025-10-14T14:05:12"
    assert order["date_modified_gmt"] == "2025-10-14T16:00:00"
    assert order["date_completed_gmt"] == "2025-10-14T16:00:00"
    assert product["date_modified_gmt"] == "2025-10-14T14:05:14"


def test_woo_product_stock_status_follows_quantity() -> None:
    modified = datetime(2025, 10, 14, 16, 5, 14, tzinfo=UTC)

    in_stock = woo_product(1, name="Mug", sku="M", stock_quantity=2, date_modified=modified)
    sold_out = woo_product(1, name="Mug", sku="M", stock_quantity=0, date_modified=modified)
    unmanaged = woo_product(
        1, name="Mug", sku="M", stock_quantity=7, date_modified=modified, manage_stock=False
    )

    assert (in_stock["stock_status"], in_stock["stock_quantity"]) == ("instock", 2)
    assert (sold_out["stock_status"], sold_out["stock_quantity"]) == ("outofstock", 0)
    assert (unmanaged["stock_status"], unmanaged["stock_quantity"]) == ("instock", None)
    assert in_stock["low_stock_amount"] is None
    assert in_stock["price"] == "25.00"


def test_inventory_level_has_graphql_id() -> None:
    level = shopify_inventory_level(
        inventory_item_id=44_000_010_000_001, location_id=60_123, available=3, updated_at=CREATED
    )

    assert level == {
        "inventory_item_id": 44_000_010_000_001,
        "location_id": 60_123,
        "available": 3,
        "updated_at": "2025-10-14T10:12:33-04:00",
        "admin_graphql_api_id": (
            "gid://shopify/InventoryLevel/60123?inventory_item_id=44000010000001"
        ),
    }


def test_cart_is_anonymous_and_keys_lines_by_variant() -> None:
    cart = shopify_cart(token="abc123", items=LINES, created_at=CREATED, updated_at=CREATED)

    assert cart["id"] == cart["token"] == "abc123"
    assert "customer" not in cart and "email" not in cart
    assert cart["created_at"] == "2025-10-14T14:12:33.000Z"
    first = cart["line_items"][0]
    assert first["key"].startswith("44000000000001:")
    assert (first["quantity"], first["price"], first["line_price"]) == (3, "19.99", "59.97")


def test_naive_datetimes_are_rejected() -> None:
    with pytest.raises(ValueError):
        _order(created_at=datetime(2025, 10, 14, 10, 12, 33))


def test_builders_are_deterministic() -> None:
    assert encode(_order()) == encode(_order())
    assert encode(_woo_order()) == encode(_woo_order())


def test_encode_is_compact_utf8_json() -> None:
    body = encode({"name": "Léa", "items": [1, 2]})

    assert body == '{"name":"Léa","items":[1,2]}'.encode()


def test_shopify_headers_sign_the_body() -> None:
    body = encode(_order())
    triggered_at = datetime(2025, 10, 14, 14, 12, 34, 123456, tzinfo=UTC)

    headers = shopify_headers(
        shop_domain="demo-1.myshopify.com",
        topic="orders/create",
        body=body,
        secret=SECRET,
        webhook_id="b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
        triggered_at=triggered_at,
    )

    assert headers["X-Shopify-Topic"] == "orders/create"
    assert headers["X-Shopify-Hmac-Sha256"] == _expected_signature(body, SECRET)
    assert headers["X-Shopify-Shop-Domain"] == "demo-1.myshopify.com"
    assert headers["X-Shopify-API-Version"] == "2025-10"
    assert headers["X-Shopify-Webhook-Id"] == "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"
    assert headers["X-Shopify-Event-Id"]
    assert headers["X-Shopify-Triggered-At"] == "2025-10-14T14:12:34.123456Z"
    assert headers["Content-Type"] == "application/json"


def test_shopify_headers_invent_a_webhook_id_when_none_is_given() -> None:
    body = encode(_order())
    arguments = {"shop_domain": "demo-1.myshopify.com", "topic": "orders/create", "body": body}

    first = shopify_headers(secret=SECRET, **arguments)
    second = shopify_headers(secret=SECRET, **arguments)

    assert first["X-Shopify-Webhook-Id"] != second["X-Shopify-Webhook-Id"]


def test_woo_headers_carry_a_new_delivery_id_each_call() -> None:
    body = encode(_woo_order())

    first = woo_headers(topic="order.created", body=body, secret=SECRET, webhook_id=12)
    second = woo_headers(topic="order.created", body=body, secret=SECRET, webhook_id=12)

    assert first["X-WC-Webhook-Delivery-ID"] != second["X-WC-Webhook-Delivery-ID"]
    assert first["X-WC-Webhook-Signature"] == second["X-WC-Webhook-Signature"]
    assert first["X-WC-Webhook-Signature"] == _expected_signature(body, SECRET)
    assert first["X-WC-Webhook-Topic"] == "order.created"
    assert first["X-WC-Webhook-Resource"] == "order"
    assert first["X-WC-Webhook-Event"] == "created"
    assert first["X-WC-Webhook-ID"] == "12"
    assert first["X-WC-Webhook-Source"] == "https://shop.example.com/"
    assert first["User-Agent"] == "WooCommerce/9.4.0 Hookshot (WordPress/6.7)"


FIXTURES = [
    "shopify/orders_create",
    "shopify/orders_updated",
    "shopify/inventory_levels_update",
    "shopify/carts_create",
    "woocommerce/order_created",
    "woocommerce/order_updated",
    "woocommerce/product_updated",
]


@pytest.mark.parametrize("name", FIXTURES, ids=lambda name: name.replace("/", "_") + "_case")
def test_fixture_is_consistent(name: str) -> None:
    platform, _, stem = name.partition("/")
    payload = json.loads((PLATFORMS_DIR / platform / "fixtures" / f"{stem}.json").read_text())

    if "total_price" in payload:
        lines = sum(Decimal(line["price"]) * line["quantity"] for line in payload["line_items"])
        assert Decimal(payload["total_price"]) == lines
    if "total" in payload:
        lines = sum(Decimal(line["total"]) for line in payload["line_items"])
        assert Decimal(payload["total"]) == lines
    for key, value in payload.items():
        if key.endswith("_gmt") and value:
            assert not value.endswith("Z")
