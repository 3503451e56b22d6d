"""Webhook payloads, headers and signatures shaped like Shopify's and WooCommerce's.

Builders are deterministic: the same arguments give the same payload, so tests can
compare bodies byte for byte. Only the per-delivery header values that the platforms
themselves randomise (Shopify's webhook id when none is given, WooCommerce's
delivery id) differ between calls.

Shopify: Order, InventoryLevel and Cart webhook resources (Admin REST, 2025-10).
WooCommerce: REST API v3 order and product resources, which is what its webhooks send.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import unicodedata
import uuid
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

CENT = Decimal("0.01")
ZERO = Decimal("0.00")

SHOPIFY_API_VERSION = "2025-10"
SHOPIFY_USER_AGENT = "Shopify-Captain-Hook"
WOO_VERSION = "9.4.0"
WOO_USER_AGENT = "WooCommerce/9.4.0 Hookshot (WordPress/6.7)"
WOO_SITE_URL = "https://shop.example.com/"


@dataclass(frozen=True)
class LineSpec:
    line_id: int
    product_id: int
    variant_id: int
    sku: str
    title: str
    quantity: int
    price: Decimal

    @property
    def line_total(self) -> Decimal:
        return self.price * self.quantity


class Sellable:
    """What an order line can be made of: a catalogue item of the demo or a fake Shopify variant."""

    product_id: int
    variant_id: int
    sku: str
    title: str
    price: Decimal

    def line(self, *, line_id: int, quantity: int) -> LineSpec:
        return LineSpec(
            line_id=line_id,
            product_id=self.product_id,
            variant_id=self.variant_id,
            sku=self.sku,
            title=self.title,
            quantity=quantity,
            price=self.price,
        )


@dataclass(frozen=True)
class Place:
    country_code: str
    country: str
    province: str | None
    province_code: str | None
    zip: str
    street: str
    phone_prefix: str


# Cities the builders can address in full; any other city gets no country or postcode.
_US, _FR, _GB, _CA, _AU, _DE = (
    ("US", "United States"),
    ("FR", "France"),
    ("GB", "United Kingdom"),
    ("CA", "Canada"),
    ("AU", "Australia"),
    ("DE", "Germany"),
)

PLACES: dict[str, Place] = {
    "New York": Place(*_US, "New York", "NY", "10001", "Madison Avenue", "+1 212"),
    "Brooklyn": Place(*_US, "New York", "NY", "11201", "Atlantic Avenue", "+1 718"),
    "Boston": Place(*_US, "Massachusetts", "MA", "02108", "Beacon Street", "+1 617"),
    "Chicago": Place(*_US, "Illinois", "IL", "60601", "Wabash Avenue", "+1 312"),
    "Austin": Place(*_US, "Texas", "TX", "78701", "Congress Avenue", "+1 512"),
    "Houston": Place(*_US, "Texas", "TX", "77002", "Main Street", "+1 713"),
    "Denver": Place(*_US, "Colorado", "CO", "80202", "Larimer Street", "+1 303"),
    "Seattle": Place(*_US, "Washington", "WA", "98101", "Pike Street", "+1 206"),
    "Portland": Place(*_US, "Oregon", "OR", "97205", "Burnside Street", "+1 503"),
    "San Diego": Place(*_US, "California", "CA", "92101", "Market Street", "+1 619"),
    "Los Angeles": Place(*_US, "California", "CA", "90012", "Spring Street", "+1 213"),
    "Atlanta": Place(*_US, "Georgia", "GA", "30303", "Peachtree Street", "+1 404"),
    "Paris": Place(*_FR, None, None, "75011", "Rue Oberkampf", "+33 1"),
    "Lyon": Place(*_FR, None, None, "69002", "Rue de la République", "+33 4"),
    "Marseille": Place(*_FR, None, None, "13001", "La Canebière", "+33 4"),
    "Bordeaux": Place(*_FR, None, None, "33000", "Cours de l'Intendance", "+33 5"),
    "Lille": Place(*_FR, None, None, "59000", "Rue Faidherbe", "+33 3"),
    "Nantes": Place(*_FR, None, None, "44000", "Rue Crébillon", "+33 2"),
    "Toulouse": Place(*_FR, None, None, "31000", "Rue d'Alsace-Lorraine", "+33 5"),
    "London": Place(*_GB, "England", "ENG", "E1 6AN", "Brick Lane", "+44 20"),
    "Manchester": Place(*_GB, "England", "ENG", "M1 1AD", "Oldham Street", "+44 161"),
    "Bristol": Place(*_GB, "England", "ENG", "BS1 4DJ", "Park Street", "+44 117"),
    "Leeds": Place(*_GB, "England", "ENG", "LS1 6AA", "Briggate", "+44 113"),
    "Edinburgh": Place(*_GB, "Scotland", "SCT", "EH1 1QS", "Cockburn Street", "+44 131"),
    "Glasgow": Place(*_GB, "Scotland", "SCT", "G1 2QQ", "Buchanan Street", "+44 141"),
    "Toronto": Place(*_CA, "Ontario", "ON", "M5V 2T6", "Queen Street West", "+1 416"),
    "Montreal": Place(*_CA, "Quebec", "QC", "H2X 1Y4", "Rue Saint-Denis", "+1 514"),
    "Vancouver": Place(*_CA, "British Columbia", "BC", "V6B 1A1", "Granville Street", "+1 604"),
    "Calgary": Place(*_CA, "Alberta", "AB", "T2P 1J9", "Stephen Avenue", "+1 403"),
    "Ottawa": Place(*_CA, "Ontario", "ON", "K1P 5G4", "Sparks Street", "+1 613"),
    "Sydney": Place(*_AU, "New South Wales", "NSW", "2000", "George Street", "+61 2"),
    "Melbourne": Place(*_AU, "Victoria", "VIC", "3000", "Flinders Lane", "+61 3"),
    "Brisbane": Place(*_AU, "Queensland", "QLD", "4000", "Queen Street", "+61 7"),
    "Perth": Place(*_AU, "Western Australia", "WA", "6000", "Hay Street", "+61 8"),
    "Berlin": Place(*_DE, None, None, "10115", "Torstraße", "+49 30"),
    "Hamburg": Place(*_DE, None, None, "20095", "Mönckebergstraße", "+49 40"),
    "München": Place(*_DE, None, None, "80331", "Sendlinger Straße", "+49 89"),
    "Köln": Place(*_DE, None, None, "50667", "Hohe Straße", "+49 221"),
}


# ---------------------------------------------------------------------------
# Signing and encoding


def sign_shopify(body: bytes, secret: str) -> str:
    """Return base64(HMAC-SHA256(body, secret)), the X-Shopify-Hmac-Sha256 value."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def sign_woo(body: bytes, secret: str) -> str:
    """Return the X-WC-Webhook-Signature value: the same algorithm as Shopify's."""
    return sign_shopify(body, secret)


def encode(payload: dict[str, Any]) -> bytes:
    """Return the payload as compact UTF-8 JSON, the way both platforms post it."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def shopify_headers(
    *,
    shop_domain: str,
    topic: str,
    body: bytes,
    secret: str,
    webhook_id: str | None = None,
    event_id: str | None = None,
    triggered_at: datetime | None = None,
    api_version: str = SHOPIFY_API_VERSION,
) -> dict[str, str]:
    """Return the headers of one Shopify webhook delivery.

    Shopify keeps X-Shopify-Webhook-Id across retries of the same delivery, which is
    what a receiver dedupes on; X-Shopify-Event-Id is shared by all subscriptions
    notified of the same event.
    """
    triggered_at = _aware(triggered_at) if triggered_at else datetime.now(UTC)
    return {
        "Content-Type": "application/json",
        "User-Agent": SHOPIFY_USER_AGENT,
        "X-Shopify-Topic": topic,
        "X-Shopify-Hmac-Sha256": sign_shopify(body, secret),
        "X-Shopify-Shop-Domain": shop_domain,
        "X-Shopify-API-Version": api_version,
        "X-Shopify-Webhook-Id": webhook_id or str(uuid.uuid4()),
        "X-Shopify-Event-Id": event_id or str(uuid.uuid4()),
        "X-Shopify-Triggered-At": _utc_z(triggered_at, timespec="microseconds"),
    }


def woo_headers(
    *,
    topic: str,
    body: bytes,
    secret: str,
    webhook_id: int = 1,
    source: str = WOO_SITE_URL,
) -> dict[str, str]:
    """Return the headers of one WooCommerce webhook delivery.

    WooCommerce computes X-WC-Webhook-Delivery-ID as wp_hash(id + time()) on every
    send (class-wc-webhook.php), so a resent body carries a new one.
    """
    resource, _, event = topic.partition(".")
    return {
        "Content-Type": "application/json",
        "User-Agent": WOO_USER_AGENT,
        "X-WC-Webhook-Source": source,
        "X-WC-Webhook-Topic": topic,
        "X-WC-Webhook-Resource": resource,
        "X-WC-Webhook-Event": event,
        "X-WC-Webhook-Signature": sign_woo(body, secret),
        "X-WC-Webhook-ID": str(webhook_id),
        "X-WC-Webhook-Delivery-ID": secrets.token_hex(16),
    }


# ---------------------------------------------------------------------------
# Shopify


def shopify_order(
    order_id: int,
    *,
    number: int,
    created_at: datetime,
    updated_at: datetime,
    items: list[LineSpec],
    currency: str = "USD",
    financial_status: str = "paid",
    fulfillment_status: str | None = None,
    cancelled_at: datetime | None = None,
    first_name: str = "Ada",
    last_name: str = "Lovelace",
    city: str = "Lyon",
    email: str = "ada@example.com",
    test: bool = False,
) -> dict[str, Any]:
    """Return a Shopify Order resource as orders/create and orders/updated send it.

    `number` is the merchant-facing order number (order_number, "#1001"). Shipping is
    free and prices exclude tax, so total_price is exactly the sum of the lines. A
    `test` order is one placed through a test gateway or in a development store.
    """
    created_at, updated_at = _aware(created_at), _aware(updated_at)
    cancelled_at = _aware(cancelled_at) if cancelled_at else None
    subtotal = _sum_lines(items)
    refunded = financial_status == "refunded"
    current_total = ZERO if refunded else subtotal
    fulfilled = fulfillment_status == "fulfilled"
    closed_at = None
    if cancelled_at or (fulfilled and financial_status == "paid"):
        closed_at = updated_at
    token = _digest("order-token", order_id)
    customer_id = _shopify_customer_id(email)

    def bag(amount: Decimal) -> dict[str, Any]:
        return _money_bag(amount, currency)

    line_items = [
        _shopify_line(
            item,
            currency=currency,
            fulfillment_status=fulfillment_status,
            cancelled=cancelled_at is not None,
        )
        for item in items
    ]
    address = _shopify_address(first_name, last_name, city, email)
    fulfillments = []
    if fulfilled:
        fulfillment_id = 4_000_000_000_000 + order_id % 10**12
        fulfillments.append(
            {
                "id": fulfillment_id,
                "admin_graphql_api_id": f"gid://shopify/Fulfillment/{fulfillment_id}",
                "created_at": _iso(updated_at),
                "location_id": None,
                "name": f"#{number}.1",
                "order_id": order_id,
                "origin_address": {},
                "receipt": {},
                "service": "manual",
                "shipment_status": None,
                "status": "success",
                "tracking_company": None,
                "tracking_number": None,
                "tracking_numbers": [],
                "tracking_url": None,
                "tracking_urls": [],
                "updated_at": _iso(updated_at),
                "line_items": line_items,
            }
        )
    refunds = []
    if refunded:
        refund_at = cancelled_at or updated_at
        refund_id = 9_000_000_000_000 + order_id % 10**12
        refunds.append(
            {
                "id": refund_id,
                "admin_graphql_api_id": f"gid://shopify/Refund/{refund_id}",
                "created_at": _iso(refund_at),
                "note": None,
                "order_id": order_id,
                "processed_at": _iso(refund_at),
                "restock": True,
                "total_duties_set": bag(ZERO),
                "user_id": None,
                "order_adjustments": [],
                "transactions": [
                    {
                        "id": refund_id + 1,
                        "admin_graphql_api_id": f"gid://shopify/OrderTransaction/{refund_id + 1}",
                        "amount": _money(subtotal),
                        "authorization": None,
                        "created_at": _iso(refund_at),
                        "currency": currency,
                        "gateway": "shopify_payments",
                        "kind": "refund",
                        "order_id": order_id,
                        "parent_id": refund_id - 1,
                        "processed_at": _iso(refund_at),
                        "source_name": "web",
                        "status": "success",
                        "test": test,
                    }
                ],
                "refund_line_items": [
                    {
                        "id": refund_id + 10 + index,
                        "line_item_id": item.line_id,
                        "location_id": None,
                        "quantity": item.quantity,
                        "restock_type": "cancel",
                        "subtotal": _money(item.line_total),
                        "subtotal_set": bag(item.line_total),
                        "total_tax": "0.00",
                        "total_tax_set": bag(ZERO),
                        "line_item": line_items[index],
                    }
                    for index, item in enumerate(items)
                ],
                "duties": [],
            }
        )

    return {
        "id": order_id,
        "admin_graphql_api_id": f"gid://shopify/Order/{order_id}",
        "app_id": 580111,
        "browser_ip": _documentation_ip(order_id),
        "buyer_accepts_marketing": False,
        "cancel_reason": "customer" if cancelled_at else None,
        "cancelled_at": _iso(cancelled_at) if cancelled_at else None,
        "cart_token": _digest("cart-token", order_id),
        "checkout_id": 30_000_000_000_000 + order_id % 10**12,
        "checkout_token": _digest("checkout-token", order_id),
        "client_details": {
            "accept_language": "en-US,en;q=0.9",
            "browser_height": None,
            "browser_ip": _documentation_ip(order_id),
            "browser_width": None,
            "session_hash": None,
            "user_agent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 "
            "(KHTML, like Gecko) Version/18.0 Safari/605.1.15",
        },
        "closed_at": _iso(closed_at) if closed_at else None,
        "confirmation_number": _confirmation_number(order_id),
        "confirmed": True,
        "contact_email": email,
        "created_at": _iso(created_at),
        "currency": currency,
        "current_subtotal_price": _money(current_total),
        "current_subtotal_price_set": bag(current_total),
        "current_total_additional_fees_set": None,
        "current_total_discounts": "0.00",
        "current_total_discounts_set": bag(ZERO),
        "current_total_duties_set": None,
        "current_total_price": _money(current_total),
        "current_total_price_set": bag(current_total),
        "current_total_tax": "0.00",
        "current_total_tax_set": bag(ZERO),
        "customer_locale": "en-US",
        "device_id": None,
        "discount_codes": [],
        "duties_included": False,
        "email": email,
        "estimated_taxes": False,
        "financial_status": financial_status,
        "fulfillment_status": fulfillment_status,
        "landing_site": "/",
        "landing_site_ref": None,
        "location_id": None,
        "merchant_business_entity_id": "MTcxMjMxNDg1",
        "merchant_of_record_app_id": None,
        "name": f"#{number}",
        "note": None,
        "note_attributes": [],
        # Shopify counts `number` from 1 and adds 1000 for the displayed order number.
        "number": max(number - 1000, 1),
        "order_number": number,
        "original_total_additional_fees_set": None,
        "original_total_duties_set": None,
        "payment_gateway_names": ["shopify_payments"],
        "phone": None,
        "po_number": None,
        "presentment_currency": currency,
        "processed_at": _iso(created_at),
        "reference": None,
        "referring_site": "https://www.google.com/",
        "source_identifier": None,
        "source_name": "web",
        "source_url": None,
        "subtotal_price": _money(subtotal),
        "subtotal_price_set": bag(subtotal),
        "tags": "",
        "tax_exempt": False,
        "tax_lines": [],
        "taxes_included": False,
        "test": test,
        "token": token,
        "total_cash_rounding_payment_adjustment_set": bag(ZERO),
        "total_cash_rounding_refund_adjustment_set": bag(ZERO),
        "total_discounts": "0.00",
        "total_discounts_set": bag(ZERO),
        "total_line_items_price": _money(subtotal),
        "total_line_items_price_set": bag(subtotal),
        "total_outstanding": _money(subtotal if financial_status == "pending" else ZERO),
        "total_price": _money(subtotal),
        "total_price_set": bag(subtotal),
        "total_shipping_price_set": bag(ZERO),
        "total_tax": "0.00",
        "total_tax_set": bag(ZERO),
        "total_tip_received": "0.00",
        "total_weight": sum(_grams(item.sku) * item.quantity for item in items),
        "updated_at": _iso(updated_at),
        "user_id": None,
        "billing_address": address,
        "customer": {
            "id": customer_id,
            "email": email,
            "created_at": _iso(created_at),
            "updated_at": _iso(created_at),
            "first_name": first_name,
            "last_name": last_name,
            "state": "disabled",
            "note": None,
            "verified_email": True,
            "multipass_identifier": None,
            "tax_exempt": False,
            "phone": None,
            "currency": currency,
            "tax_exemptions": [],
            "admin_graphql_api_id": f"gid://shopify/Customer/{customer_id}",
            "default_address": {
                "id": customer_id + 1_000_000,
                "customer_id": customer_id,
                "default": True,
                **{key: address[key] for key in _DEFAULT_ADDRESS_KEYS},
            },
        },
        "discount_applications": [],
        "fulfillments": fulfillments,
        "line_items": line_items,
        "payment_terms": None,
        "refunds": refunds,
        "shipping_address": address,
        "shipping_lines": [
            {
                "id": 5_000_000_000_000 + order_id % 10**12,
                "carrier_identifier": None,
                "code": "Standard",
                "discounted_price": "0.00",
                "discounted_price_set": bag(ZERO),
                "is_removed": False,
                "phone": None,
                "price": "0.00",
                "price_set": bag(ZERO),
                "requested_fulfillment_service_id": None,
                "source": "shopify",
                "title": "Standard",
                "tax_lines": [],
                "discount_allocations": [],
            }
        ],
        "returns": [],
    }


def shopify_inventory_level(
    *, inventory_item_id: int, location_id: int, available: int, updated_at: datetime
) -> dict[str, Any]:
    """Return an InventoryLevel resource as inventory_levels/update sends it."""
    return {
        "inventory_item_id": inventory_item_id,
        "location_id": location_id,
        "available": available,
        "updated_at": _iso(_aware(updated_at)),
        "admin_graphql_api_id": (
            f"gid://shopify/InventoryLevel/{location_id}?inventory_item_id={inventory_item_id}"
        ),
    }


def shopify_cart(
    *,
    token: str,
    items: list[LineSpec],
    created_at: datetime,
    updated_at: datetime,
    currency: str = "USD",
) -> dict[str, Any]:
    """Return a Cart resource as carts/create sends it: anonymous, UTC timestamps."""

    def bag(amount: Decimal) -> dict[str, Any]:
        return _money_bag(amount, currency)

    line_items = []
    for item in items:
        line_items.append(
            {
                # Shopify uses the variant id as the cart line id.
                "id": item.variant_id,
                "properties": {},
                "quantity": item.quantity,
                "variant_id": item.variant_id,
                "key": f"{item.variant_id}:{_digest('cart-line', token, item.variant_id)}",
                "discounted_price": _money(item.price),
                "discounts": [],
                "gift_card": False,
                "grams": _grams(item.sku),
                "line_price": _money(item.line_total),
                "original_line_price": _money(item.line_total),
                "original_price": _money(item.price),
                "price": _money(item.price),
                "product_id": item.product_id,
                "sku": item.sku,
                "taxable": True,
                "title": item.title,
                "total_discount": "0.00",
                "vendor": None,
                "discounted_price_set": bag(item.price),
                "line_price_set": bag(item.line_total),
                "original_line_price_set": bag(item.line_total),
                "price_set": bag(item.price),
                "total_discount_set": bag(ZERO),
            }
        )
    return {
        "id": token,
        "token": token,
        "line_items": line_items,
        "note": None,
        "updated_at": _utc_z(_aware(updated_at), timespec="milliseconds"),
        "created_at": _utc_z(_aware(created_at), timespec="milliseconds"),
    }


# ---------------------------------------------------------------------------
# WooCommerce


def woo_order(
    order_id: int,
    *,
    status: str = "processing",
    items: list[LineSpec],
    date_created: datetime,
    date_modified: datetime,
    currency: str = "USD",
    first_name: str = "Ada",
    city: str = "Lyon",
    last_name: str = "Lovelace",
    email: str | None = None,
    site_url: str = WOO_SITE_URL,
    number: int | None = None,
) -> dict[str, Any]:
    """Return a REST v3 order as order.created / order.updated send it.

    `number` is the order number shoppers see; it equals the id unless the store runs
    a sequential-numbering plugin.

    The datetimes' own time zone stands for the site's: `date_created` is site-local
    and the `*_gmt` fields are UTC, both without an offset or "Z", as WooCommerce
    writes them.
    """
    date_created, date_modified = _aware(date_created), _aware(date_modified)
    email = email or _email(first_name, last_name)
    total = _sum_lines(items)
    paid = status in {"processing", "completed", "refunded"}
    date_paid = date_created if paid else None
    date_completed = date_modified if status == "completed" else None
    place = PLACES.get(city)
    order_key = "wc_order_" + _digest("order-key", order_id)[:13]
    site_url = site_url if site_url.endswith("/") else site_url + "/"
    address = {
        "first_name": first_name,
        "last_name": last_name,
        "company": "",
        "address_1": _street_address(email, place),
        "address_2": "",
        "city": city,
        "state": (place.province_code or "") if place else "",
        "postcode": place.zip if place else "",
        "country": place.country_code if place else "",
    }
    phone = _phone(email, place)
    return {
        "id": order_id,
        "parent_id": 0,
        "status": status,
        "currency": currency,
        "version": WOO_VERSION,
        "prices_include_tax": False,
        "date_created": _site_local(date_created),
        "date_modified": _site_local(date_modified),
        "discount_total": "0.00",
        "discount_tax": "0.00",
        "shipping_total": "0.00",
        "shipping_tax": "0.00",
        "cart_tax": "0.00",
        "total": _money(total),
        "total_tax": "0.00",
        "customer_id": 2 + zlib.crc32(email.encode()) % 5000,
        "order_key": order_key,
        "billing": {**address, "email": email, "phone": phone},
        "shipping": {**address, "phone": ""},
        "payment_method": "stripe",
        "payment_method_title": "Credit Card (Stripe)",
        "transaction_id": f"pi_{_digest('payment', order_id)[:24]}" if paid else "",
        "customer_ip_address": _documentation_ip(order_id),
        "customer_user_agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36",
        "created_via": "checkout",
        "customer_note": "",
        "date_completed": _site_local(date_completed) if date_completed else None,
        "date_paid": _site_local(date_paid) if date_paid else None,
        "cart_hash": _digest("cart-hash", order_id),
        "number": str(order_id if number is None else number),
        "meta_data": [],
        "line_items": [_woo_line(item, site_url=site_url) for item in items],
        "tax_lines": [],
        "shipping_lines": [
            {
                "id": order_id * 10 + 9,
                "method_title": "Free shipping",
                "method_id": "free_shipping",
                "instance_id": "1",
                "total": "0.00",
                "total_tax": "0.00",
                "taxes": [],
                "meta_data": [],
            }
        ],
        "fee_lines": [],
        "coupon_lines": [],
        "refunds": [],
        "payment_url": (
            f"{site_url}checkout/order-pay/{order_id}/?pay_for_order=true&key={order_key}"
        ),
        "is_editable": status in {"pending", "on-hold", "auto-draft"},
        "needs_payment": status in {"pending", "failed"},
        "needs_processing": True,
        "date_created_gmt": _gmt(date_created),
        "date_modified_gmt": _gmt(date_modified),
        "date_completed_gmt": _gmt(date_completed) if date_completed else None,
        "date_paid_gmt": _gmt(date_paid) if date_paid else None,
        "currency_symbol": _CURRENCY_SYMBOLS.get(currency, currency),
        "_links": {
            "self": [{"href": f"{site_url}wp-json/wc/v3/orders/{order_id}"}],
            "collection": [{"href": f"{site_url}wp-json/wc/v3/orders"}],
        },
    }


def woo_product(
    product_id: int,
    *,
    name: str,
    sku: str,
    stock_quantity: int | None,
    date_modified: datetime,
    manage_stock: bool = True,
    price: Decimal = Decimal("25.00"),
    site_url: str = WOO_SITE_URL,
) -> dict[str, Any]:
    """Return a REST v3 simple product as product.updated sends it."""
    date_modified = _aware(date_modified)
    date_created = date_modified - timedelta(days=120)
    site_url = site_url if site_url.endswith("/") else site_url + "/"
    slug = _slugify(name)
    if not manage_stock:
        stock_quantity = None
        stock_status = "instock"
    else:
        stock_status = "instock" if (stock_quantity or 0) > 0 else "outofstock"
    price_text = _money(price)
    return {
        "id": product_id,
        "name": name,
        "slug": slug,
        "permalink": f"{site_url}product/{slug}/",
        "date_created": _site_local(date_created),
        "date_created_gmt": _gmt(date_created),
        "date_modified": _site_local(date_modified),
        "date_modified_gmt": _gmt(date_modified),
        "type": "simple",
        "status": "publish",
        "featured": False,
        "catalog_visibility": "visible",
        "description": f"<p>{name}.</p>\n",
        "short_description": "",
        "sku": sku,
        "price": price_text,
        "regular_price": price_text,
        "sale_price": "",
        "date_on_sale_from": None,
        "date_on_sale_from_gmt": None,
        "date_on_sale_to": None,
        "date_on_sale_to_gmt": None,
        "on_sale": False,
        "purchasable": True,
        "total_sales": 0,
        "virtual": False,
        "downloadable": False,
        "downloads": [],
        "download_limit": -1,
        "download_expiry": -1,
        "external_url": "",
        "button_text": "",
        "tax_status": "taxable",
        "tax_class": "",
        "manage_stock": manage_stock,
        "stock_quantity": stock_quantity,
        "backorders": "no",
        "backorders_allowed": False,
        "backordered": False,
        "low_stock_amount": None,
        "sold_individually": False,
        "weight": str(_grams(sku) / 1000),
        "dimensions": {"length": "", "width": "", "height": ""},
        "shipping_required": True,
        "shipping_taxable": True,
        "shipping_class": "",
        "shipping_class_id": 0,
        "reviews_allowed": True,
        "average_rating": "0.00",
        "rating_count": 0,
        "upsell_ids": [],
        "cross_sell_ids": [],
        "parent_id": 0,
        "purchase_note": "",
        "categories": [{"id": 15, "name": "Uncategorized", "slug": "uncategorized"}],
        "tags": [],
        "images": [
            {
                "id": product_id + 1,
                "date_created": _site_local(date_created),
                "date_created_gmt": _gmt(date_created),
                "date_modified": _site_local(date_created),
                "date_modified_gmt": _gmt(date_created),
                "src": f"{site_url}wp-content/uploads/{slug}.jpg",
                "name": slug,
                "alt": "",
            }
        ],
        "attributes": [],
        "default_attributes": [],
        "variations": [],
        "grouped_products": [],
        "menu_order": 0,
        "price_html": "",
        "related_ids": [],
        "meta_data": [],
        "stock_status": stock_status,
        "has_options": False,
        "post_password": "",
        "global_unique_id": "",
        "_links": {
            "self": [{"href": f"{site_url}wp-json/wc/v3/products/{product_id}"}],
            "collection": [{"href": f"{site_url}wp-json/wc/v3/products"}],
        },
    }


# ---------------------------------------------------------------------------
# Helpers

_DEFAULT_ADDRESS_KEYS = (
    "first_name",
    "last_name",
    "company",
    "address1",
    "address2",
    "city",
    "province",
    "country",
    "zip",
    "phone",
    "name",
    "province_code",
    "country_code",
    "country_name",
)

_CURRENCY_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "CAD": "$", "AUD": "$"}


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"naive datetime {value!r}: platform timestamps carry a time zone")
    return value


def _iso(value: datetime) -> str:
    """Shopify's format: seconds precision with the shop's UTC offset."""
    return value.isoformat(timespec="seconds")


def _utc_z(value: datetime, *, timespec: str) -> str:
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(timespec=timespec) + "Z"


def _site_local(value: datetime) -> str:
    return value.replace(tzinfo=None).isoformat(timespec="seconds")


def _gmt(value: datetime) -> str:
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="seconds")


def _money(amount: Decimal) -> str:
    return str(amount.quantize(CENT, rounding=ROUND_HALF_UP))


def _money_bag(amount: Decimal, currency: str) -> dict[str, Any]:
    money = {"amount": _money(amount), "currency_code": currency}
    return {"shop_money": money, "presentment_money": dict(money)}


def _sum_lines(items: list[LineSpec]) -> Decimal:
    return sum((item.line_total for item in items), ZERO)


def _digest(*parts: object) -> str:
    return hashlib.sha256(":".join(str(part) for part in parts).encode()).hexdigest()[:32]


def _grams(sku: str) -> int:
    return 100 + zlib.crc32(sku.encode()) % 1900


def _documentation_ip(seed: int) -> str:
    # TEST-NET-3 (RFC 5737): addresses reserved for examples.
    return f"203.0.113.{seed % 254 + 1}"


def _confirmation_number(order_id: int) -> str:
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    digest = int(_digest("confirmation", order_id), 16)
    chars = []
    for _ in range(9):
        digest, index = divmod(digest, len(alphabet))
        chars.append(alphabet[index])
    return "".join(chars)


def _shopify_customer_id(email: str) -> int:
    return 6_000_000_000_000 + int(_digest("customer", email.lower()), 16) % 10**12


def _ascii(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()


def _slugify(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", _ascii(text).lower()).strip("-")


def _email(first_name: str, last_name: str) -> str:
    local = re.sub(r"[^a-z0-9.]", "", f"{_ascii(first_name)}.{_ascii(last_name)}".lower())
    return f"{local}@example.com"


def _street_address(email: str, place: Place | None) -> str:
    number = 1 + zlib.crc32(email.encode()) % 180
    street = place.street if place else "Main Street"
    if place and place.country_code == "DE":
        return f"{street} {number}"
    return f"{number} {street}"


def _phone(email: str, place: Place | None) -> str:
    prefix = place.phone_prefix if place else "+1 555"
    digits = f"{zlib.crc32(email.encode()) % 10**7:07d}"
    return f"{prefix} {digits[:3]} {digits[3:]}"


def _shopify_address(first_name: str, last_name: str, city: str, email: str) -> dict[str, Any]:
    place = PLACES.get(city)
    return {
        "first_name": first_name,
        "address1": _street_address(email, place),
        "phone": None,
        "city": city,
        "zip": place.zip if place else None,
        "province": place.province if place else None,
        "country": place.country if place else None,
        "last_name": last_name,
        "address2": None,
        "company": None,
        "latitude": None,
        "longitude": None,
        "name": f"{first_name} {last_name}",
        "country_code": place.country_code if place else None,
        "country_name": place.country if place else None,
        "province_code": place.province_code if place else None,
    }


def _shopify_line(
    item: LineSpec, *, currency: str, fulfillment_status: str | None, cancelled: bool
) -> dict[str, Any]:
    product_title, _, variant_title = item.title.partition(" - ")
    fulfilled = fulfillment_status == "fulfilled"
    return {
        "id": item.line_id,
        "admin_graphql_api_id": f"gid://shopify/LineItem/{item.line_id}",
        "attributed_staffs": [],
        "current_quantity": 0 if cancelled else item.quantity,
        "fulfillable_quantity": 0 if (fulfilled or cancelled) else item.quantity,
        "fulfillment_service": "manual",
        "fulfillment_status": "fulfilled" if fulfilled else None,
        "gift_card": False,
        "grams": _grams(item.sku),
        "name": item.title,
        "price": _money(item.price),
        "price_set": _money_bag(item.price, currency),
        "product_exists": True,
        "product_id": item.product_id,
        "properties": [],
        "quantity": item.quantity,
        "requires_shipping": True,
        "sales_line_item_group_id": None,
        "sku": item.sku,
        "taxable": True,
        "title": product_title,
        "total_discount": "0.00",
        "total_discount_set": _money_bag(ZERO, currency),
        "variant_id": item.variant_id,
        "variant_inventory_management": "shopify",
        "variant_title": variant_title or None,
        "vendor": None,
        "tax_lines": [],
        "duties": [],
        "discount_allocations": [],
    }


def _woo_line(item: LineSpec, *, site_url: str) -> dict[str, Any]:
    total = _money(item.line_total)
    slug = _slugify(item.title)
    return {
        "id": item.line_id,
        "name": item.title,
        "product_id": item.product_id,
        "variation_id": item.variant_id,
        "quantity": item.quantity,
        "tax_class": "",
        "subtotal": total,
        "subtotal_tax": "0.00",
        "total": total,
        "total_tax": "0.00",
        "taxes": [],
        "meta_data": [],
        "sku": item.sku,
        "global_unique_id": "",
        # WooCommerce sends the unit price as a JSON number, unlike every other amount.
        "price": _json_number(item.price),
        "image": {
            "id": str(item.product_id + 1),
            "src": f"{site_url}wp-content/uploads/{slug}.jpg",
        },
        "parent_name": None,
    }


def _json_number(amount: Decimal) -> int | float:
    return int(amount) if amount == amount.to_integral_value() else float(amount)
