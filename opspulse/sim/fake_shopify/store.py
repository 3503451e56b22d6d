"""The merchants' side of the fake: shops with catalogues, orders, stock and carts.

Each action changes the shop and then tells the app, as Shopify does, by handing the
webhook topic and REST resource to `FakeShopify.notify`.
"""

from __future__ import annotations

import random
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from opspulse.sim.fake_shopify import resources
from opspulse.sim.payloads import LineSpec
from opspulse.sim.fake_shopify.state import Customer, FakeShopify, Order, Shop, Variant

SHOP_DOMAIN = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9\-]*\.myshopify\.com$")
CANCEL_RATE = 0.04

# (title, price, variant titles)
CATALOG: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("Merino Wool Beanie", "34.00", ("Charcoal", "Forest")),
    ("Packable Down Jacket", "189.00", ("S", "M", "L")),
    ("Trail Running Shoes", "138.99", ("US 8", "US 9", "US 10")),
    ("Waxed Canvas Backpack", "149.00", ()),
    ("Insulated Water Bottle 750 ml", "31.99", ("Sage", "Slate")),
    ("Camp Enamel Mug", "18.00", ()),
    ("Ultralight Tent 2P", "429.00", ()),
    ("Rain Shell Jacket", "218.99", ("S", "M", "L")),
    ("Headlamp 400 lm", "45.00", ()),
    ("Hammock with Straps", "68.99", ()),
)

# Shoppers by the shop's region: first names, last names, cities known to
# `opspulse.sim.payloads.PLACES` (so addresses come out complete).
_REGIONS: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    "America": (
        ("Olivia", "Liam", "Emma", "Noah", "Ava", "Ethan", "Sophia", "Mason"),
        ("Johnson", "Nguyen", "Garcia", "Miller", "Davis", "Patel", "Kim"),
        ("New York", "Brooklyn", "Boston", "Chicago", "Austin", "Denver", "Seattle"),
    ),
    "Europe": (
        ("Camille", "Louis", "Chloé", "Hugo", "Oliver", "Amelia", "Emma", "Paul"),
        ("Martin", "Dubois", "Moreau", "Smith", "Taylor", "Müller", "Schmidt"),
        ("Paris", "Lyon", "London", "Manchester", "Berlin", "Hamburg"),
    ),
    "Australia": (
        ("Charlotte", "Oliver", "Isla", "Jack", "Matilda", "Leo"),
        ("Smith", "Williams", "Nguyen", "Thompson", "Kelly"),
        ("Sydney", "Melbourne", "Brisbane", "Perth"),
    ),
}


class StoreError(ValueError):
    """A control-API request that names something the fake cannot do."""


@dataclass(frozen=True)
class LineRequest:
    variant: Variant
    quantity: int


def create_shop(
    world: FakeShopify,
    *,
    domain: str,
    name: str,
    currency: str = "USD",
    timezone: str = "America/New_York",
    email: str | None = None,
    plan: str = "Basic",
    orders: int = 0,
    days: int = 90,
    seed: int | None = None,
) -> Shop:
    """Create a shop with a catalogue and `orders` past orders spread over `days` days."""
    if not SHOP_DOMAIN.match(domain):
        raise StoreError(f"{domain!r} is not a *.myshopify.com domain")
    if domain in world.shops:
        raise StoreError(f"shop {domain} already exists")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise StoreError(f"unknown time zone {timezone!r}") from error
    if orders < 0 or days < 1:
        raise StoreError("orders must not be negative and days must be positive")
    rng = random.Random(seed if seed is not None else domain)
    now = world.clock.now()
    shop = Shop(
        id=next(world.ids.shop),
        domain=domain,
        name=name,
        email=email or f"owner@{domain.split('.')[0]}.example.com",
        currency=currency,
        timezone=timezone,
        plan=plan,
        location_id=next(world.ids.location),
        created_at=now - timedelta(days=days + 30),
    )
    for title, price, options in CATALOG:
        product_id = next(world.ids.product)
        stem = "".join(word[0] for word in title.split()).upper()
        for option in options or ("",):
            shop.variants.append(
                Variant(
                    product_id=product_id,
                    variant_id=next(world.ids.variant),
                    inventory_item_id=next(world.ids.inventory_item),
                    sku=f"{stem}-{option.upper().replace(' ', '')}" if option else stem,
                    title=f"{title} - {option}" if option else title,
                    price=Decimal(price),
                    available=rng.randint(5, 80),
                    updated_at=now - timedelta(seconds=rng.randrange(days * 86_400)),
                )
            )
    _backfill(world, shop, count=orders, since=now - timedelta(days=days), now=now, rng=rng)
    world.shops[domain] = shop
    return shop


def _backfill(
    world: FakeShopify, shop: Shop, *, count: int, since: datetime, now: datetime, rng: random.Random
) -> None:
    span = int((now - since).total_seconds())
    customers = [_new_customer(world, shop, rng) for _ in range(max(10, count // 3))]
    for offset in sorted(rng.randrange(span) for _ in range(count)):
        created_at = since + timedelta(seconds=offset)
        order = Order(
            id=next(world.ids.order),
            number=shop.next_number,
            created_at=created_at,
            updated_at=created_at,
            customer=rng.choice(customers),
            lines=_random_lines(world, shop, rng),
        )
        shop.next_number += 1
        age = now - created_at
        roll = rng.random()
        if roll < CANCEL_RATE:
            order.cancelled_at = min(created_at + timedelta(seconds=rng.randrange(360, 86_400)), now)
            order.financial_status = "refunded"
            order.updated_at = order.cancelled_at
        elif roll < CANCEL_RATE + 0.03 and age < timedelta(days=3):
            order.financial_status = "pending"
        elif age > timedelta(days=2):
            order.fulfillment_status = "fulfilled"
            order.updated_at = min(created_at + timedelta(seconds=rng.randrange(7_200, 172_800)), now)
        shop.orders[order.id] = order


def _new_customer(world: FakeShopify, shop: Shop, rng: random.Random) -> Customer:
    first_names, last_names, cities = _REGIONS.get(
        shop.timezone.partition("/")[0], _REGIONS["America"]
    )
    first, last = rng.choice(first_names), rng.choice(last_names)
    local = re.sub(r"[^a-z]", "", f"{first}{last}".encode("ascii", "ignore").decode().lower())
    return Customer(
        id=next(world.ids.customer),
        first_name=first,
        last_name=last,
        email=f"{local}{rng.randint(1, 999)}@example.com",
        city=rng.choice(cities),
    )


def _random_lines(world: FakeShopify, shop: Shop, rng: random.Random) -> list[LineSpec]:
    variants = rng.sample(shop.variants, rng.choice((1, 1, 1, 2, 2, 3)))
    return [
        variant.line(line_id=next(world.ids.line_item), quantity=rng.choice((1, 1, 1, 2, 3)))
        for variant in variants
    ]


def place_order(
    world: FakeShopify,
    shop: Shop,
    *,
    lines: list[LineRequest] | None = None,
    financial_status: str = "paid",
    seed: int | None = None,
) -> Order:
    """Place an order now, take its items out of stock and send the webhooks."""
    rng = random.Random(seed)
    now = world.clock.now()
    if lines:
        specs = [
            line.variant.line(line_id=next(world.ids.line_item), quantity=line.quantity)
            for line in lines
        ]
    else:
        specs = _random_lines(world, shop, rng)
    order = Order(
        id=next(world.ids.order),
        number=shop.next_number,
        created_at=now,
        updated_at=now,
        customer=_new_customer(world, shop, rng),
        lines=specs,
        financial_status=financial_status,
    )
    shop.next_number += 1
    shop.orders[order.id] = order
    world.notify(shop, "orders/create", resources.order_resource(shop, order))
    for spec in specs:
        variant = shop.variant_by_sku(spec.sku)
        if variant is not None:
            _move_stock(world, shop, variant, variant.available - spec.quantity)
    return order


def update_order(
    world: FakeShopify,
    shop: Shop,
    order: Order,
    *,
    financial_status: str | None = None,
    fulfillment_status: str | None = None,
) -> Order:
    """Change an order's statuses and send orders/updated."""
    if financial_status is not None:
        order.financial_status = financial_status
    if fulfillment_status is not None:
        order.fulfillment_status = fulfillment_status or None
    order.updated_at = world.clock.now()
    world.notify(shop, "orders/updated", resources.order_resource(shop, order))
    return order


def cancel_order(world: FakeShopify, shop: Shop, order: Order, *, restock: bool = True) -> Order:
    """Cancel and refund an order, put its items back in stock, and send the webhooks."""
    if order.cancelled_at is not None:
        raise StoreError(f"order {order.id} is already cancelled")
    now = world.clock.now()
    order.cancelled_at = now
    order.updated_at = now
    order.financial_status = "refunded" if order.financial_status == "paid" else "voided"
    payload = resources.order_resource(shop, order)
    world.notify(shop, "orders/cancelled", payload)
    world.notify(shop, "orders/updated", payload)
    if restock:
        for line in order.lines:
            variant = shop.variant_by_sku(line.sku)
            if variant is not None:
                _move_stock(world, shop, variant, variant.available + line.quantity)
    return order


def set_inventory(world: FakeShopify, shop: Shop, variant: Variant, *, available: int) -> Variant:
    """Set a variant's available quantity at the shop's location and send the webhook."""
    _move_stock(world, shop, variant, available)
    return variant


def create_product(
    world: FakeShopify, shop: Shop, *, title: str, sku: str, price: Decimal, available: int
) -> Variant:
    """Add a product with one variant, stocked at the shop's location, and send the webhook."""
    if shop.variant_by_sku(sku) is not None:
        raise StoreError(f"a variant with SKU {sku!r} already exists in {shop.domain}")
    variant = Variant(
        product_id=next(world.ids.product),
        variant_id=next(world.ids.variant),
        inventory_item_id=next(world.ids.inventory_item),
        sku=sku,
        title=title,
        price=price,
        available=available,
        updated_at=world.clock.now(),
    )
    shop.variants.append(variant)
    _move_stock(world, shop, variant, available)
    return variant


def _move_stock(world: FakeShopify, shop: Shop, variant: Variant, available: int) -> None:
    variant.available = available
    variant.updated_at = world.clock.now()
    world.notify(shop, "inventory_levels/update", resources.inventory_level_resource(shop, variant))


def create_cart(world: FakeShopify, shop: Shop, *, lines: list[LineRequest]) -> str:
    """Open an anonymous cart on the storefront, send carts/create, return its token."""
    token = secrets.token_hex(16)
    specs = [
        line.variant.line(line_id=line.variant.variant_id, quantity=line.quantity)
        for line in lines
    ]
    world.notify(
        shop,
        "carts/create",
        resources.cart_resource(shop, token=token, lines=specs, at=world.clock.now()),
    )
    return token


def uninstall(world: FakeShopify, shop: Shop) -> None:
    """Uninstall the app: send app/uninstalled, then revoke its tokens and subscriptions."""
    if not shop.installed:
        raise StoreError(f"the app is not installed on {shop.domain}")
    world.notify(shop, "app/uninstalled", resources.shop_resource(shop))
    world.revoke_tokens(shop)
    shop.subscriptions.clear()
    shop.installed = False
    shop.scopes = []


def customer_orders(shop: Shop, email: str) -> tuple[Customer, list[Order]]:
    orders = [order for order in shop.orders.values() if order.customer.email == email]
    if not orders:
        raise StoreError(f"no customer with email {email!r} has ordered from {shop.domain}")
    return orders[0].customer, orders


def request_customer_data(world: FakeShopify, shop: Shop, *, email: str) -> None:
    """Send customers/data_request, as when a customer asks the merchant for their data."""
    customer, orders = customer_orders(shop, email)
    request_id = secrets.randbelow(10**10)
    world.notify(
        shop,
        "customers/data_request",
        resources.customers_data_request(shop, customer, orders, request_id),
    )


def redact_customer(world: FakeShopify, shop: Shop, *, email: str) -> None:
    """Send customers/redact, as when a merchant erases a customer."""
    customer, orders = customer_orders(shop, email)
    world.notify(shop, "customers/redact", resources.customers_redact(shop, customer, orders))


def redact_shop(world: FakeShopify, shop: Shop) -> None:
    """Send shop/redact, which Shopify sends 48 hours after the app is uninstalled."""
    if shop.installed:
        raise StoreError(f"shop/redact follows an uninstall; the app is installed on {shop.domain}")
    world.notify(shop, "shop/redact", resources.shop_redact(shop))
