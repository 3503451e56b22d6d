"""The demo tenant: one login, one account, a few stores with catalogues and alerts."""

from __future__ import annotations

import random
import re
import secrets
from dataclasses import dataclass
from decimal import Decimal

from allauth.account.models import EmailAddress
from django.db import transaction

from opspulse.accounts.models import Account, Membership, Plan, Role, User
from opspulse.alerts.models import Alert, AlertPreference, AlertType
from opspulse.sim.payloads import Sellable
from opspulse.stores.models import Integration, Platform, Store

DEMO_EMAIL = "demo@opspulse.localhost"
DEMO_PASSWORD = "opspulse-demo"
DEMO_ACCOUNT_NAME = "Demo Outfitters"

DEMO_ALERTS = (
    (AlertType.HIGH_VALUE_ORDER, {"threshold": "400.00"}),
    (AlertType.LOW_STOCK, {"threshold": 5}),
)


@dataclass(frozen=True)
class DemoStoreSpec:
    name: str
    timezone: str
    currency: str


DEMO_STORES = (
    DemoStoreSpec("Northwind Outfitters", "America/New_York", "USD"),
    DemoStoreSpec("Atelier Lumière", "Europe/Paris", "EUR"),
    DemoStoreSpec("Harbour & Pine", "Europe/London", "GBP"),
    DemoStoreSpec("Kestrel Trail Supply", "America/Los_Angeles", "USD"),
    DemoStoreSpec("Maple Ridge Goods", "America/Toronto", "CAD"),
    DemoStoreSpec("Southern Cross Surf Co.", "Australia/Sydney", "AUD"),
    DemoStoreSpec("Bergwerk Outdoor", "Europe/Berlin", "EUR"),
    DemoStoreSpec("Lone Star Provisions", "America/Chicago", "USD"),
)


@dataclass(frozen=True)
class CatalogItem(Sellable):
    """A sellable variant (Shopify) or simple product (WooCommerce, variant_id 0)."""

    product_id: int
    variant_id: int
    sku: str
    title: str
    price: Decimal

    @property
    def stock_key(self) -> int:
        """Return the id stock is tracked under: the variant, else the product."""
        return self.variant_id or self.product_id


# (title, price in USD, variant titles)
_PRODUCTS: tuple[tuple[str, int, tuple[str, ...]], ...] = (
    ("Merino Wool Beanie", 34, ("Charcoal", "Forest", "Rust")),
    ("Packable Down Jacket", 189, ("S", "M", "L")),
    ("Trail Running Shoes", 139, ("US 8", "US 9", "US 10")),
    ("Waxed Canvas Backpack", 149, ()),
    ("Insulated Water Bottle 750 ml", 32, ("Sage", "Slate")),
    ("Camp Enamel Mug", 18, ()),
    ("Ultralight Tent 2P", 429, ()),
    ("Down Sleeping Bag -5°C", 349, ("Regular", "Long")),
    ("Hiking Socks (3-pack)", 24, ("M", "L")),
    ("Fleece Quarter-Zip", 79, ("S", "M", "L", "XL")),
    ("Rain Shell Jacket", 219, ("S", "M", "L")),
    ("Headlamp 400 lm", 45, ()),
    ("Trekking Poles (pair)", 119, ()),
    ("Organic Cotton Tee", 29, ("S", "M", "L")),
    ("Leather Field Belt", 59, ("32", "34", "36")),
    ("Canvas Tote Bag", 26, ()),
    ("Titanium Spork", 12, ()),
    ("Wool Camp Blanket", 129, ("Heather Grey", "Navy")),
    ("Polarized Sunglasses", 89, ()),
    ("Dry Bag 20 L", 36, ("Orange", "Blue")),
    ("Backpacking Stove", 99, ()),
    ("Hammock with Straps", 69, ()),
    ("Softshell Trousers", 109, ("30", "32", "34")),
    ("Candle Lantern", 39, ()),
)

# Rough retail conversions so a EUR or AUD shop prices like one.
_PRICE_FACTORS = {
    "USD": Decimal("1"),
    "EUR": Decimal("0.95"),
    "GBP": Decimal("0.8"),
    "CAD": Decimal("1.4"),
    "AUD": Decimal("1.55"),
}


def catalog_for(*, platform: str, domain: str, currency: str, store_name: str) -> list[CatalogItem]:
    """Return 10–20 products for a store, the same every time for the same store."""
    rng = random.Random(f"opspulse-catalog:{platform}:{domain}")
    size = rng.randint(10, 20)
    words = re.findall(r"[^\W\d_]+", store_name)[:3]
    prefix = "".join(word[0] for word in words).upper() or "SKU"
    factor = _PRICE_FACTORS.get(currency, Decimal("1"))
    woo_ids = iter(rng.sample(range(20, 4000), len(_PRODUCTS)))
    products = list(enumerate(_PRODUCTS))
    rng.shuffle(products)
    items: list[CatalogItem] = []
    for index, (title, base_price, variants) in products:
        if len(items) >= size:
            break
        price = (base_price * factor).quantize(Decimal("1")).quantize(Decimal("0.01"))
        if currency != "EUR":
            price -= Decimal("0.01")
        sku = f"{prefix}-{index + 1:03d}"
        if platform == Platform.WOOCOMMERCE:
            items.append(CatalogItem(next(woo_ids), 0, sku, title, price))
            continue
        product_id = rng.randrange(7_000_000_000_000, 8_000_000_000_000)
        if not variants:
            variant_id = rng.randrange(40_000_000_000_000, 50_000_000_000_000)
            items.append(CatalogItem(product_id, variant_id, sku, title, price))
            continue
        chosen = rng.sample(variants, rng.randint(1, min(3, len(variants))))
        for variant in chosen[: size - len(items)]:
            variant_id = rng.randrange(40_000_000_000_000, 50_000_000_000_000)
            code = re.sub(r"[^A-Z0-9]", "", variant.upper())[:6]
            items.append(
                CatalogItem(product_id, variant_id, f"{sku}-{code}", f"{title} - {variant}", price)
            )
    return items


def demo_catalog(store: Store) -> list[CatalogItem]:
    return catalog_for(
        platform=store.platform, domain=store.domain, currency=store.currency, store_name=store.name
    )


def demo_store_identity(number: int) -> tuple[str, str, DemoStoreSpec, str]:
    """Return (platform, domain, spec, name) of the n-th demo store, counting from 1."""
    spec = DEMO_STORES[(number - 1) % len(DEMO_STORES)]
    if number % 2:
        platform, domain = Platform.SHOPIFY, f"demo-{number}.myshopify.com"
    else:
        platform, domain = Platform.WOOCOMMERCE, f"woo-{number}.example.com"
    cycle = (number - 1) // len(DEMO_STORES)
    name = spec.name if cycle == 0 else f"{spec.name} ({cycle + 1})"
    return platform, domain, spec, name


def ensure_demo_data(*, stores: int = 4) -> list[Store]:
    """Create whatever part of the demo tenant is missing; return its first `stores` stores."""
    with transaction.atomic():
        user, created = User.objects.get_or_create(
            email=DEMO_EMAIL, defaults={"name": "Demo Merchant"}
        )
        # Serialises concurrent seeders (seed_demo and simulate started together): the
        # account and alerts below have no unique key to lean on.
        user = User.objects.select_for_update().get(pk=user.pk)
        if created or not user.check_password(DEMO_PASSWORD):
            user.set_password(DEMO_PASSWORD)
            user.save(update_fields=["password"])
        # A confirmed address, as if the demo merchant had clicked the sign-up link.
        EmailAddress.objects.update_or_create(
            user=user, email=DEMO_EMAIL, defaults={"verified": True, "primary": True}
        )

        account = (
            Account.objects.filter(
                name=DEMO_ACCOUNT_NAME, memberships__user=user, memberships__role=Role.OWNER
            )
            .order_by("pk")
            .first()
        )
        if account is None:
            account = Account.objects.create(name=DEMO_ACCOUNT_NAME, plan=Plan.PRO)
            Membership.objects.create(account=account, user=user, role=Role.OWNER)
        elif account.plan != Plan.PRO:
            account.plan = Plan.PRO
            account.save(update_fields=["plan"])
        # The simulator's traffic fires alerts all day: the demo merchant gets them in a
        # daily digest, as a busy merchant would choose, not one mail each in the terminal.
        AlertPreference.objects.get_or_create(
            user=user, account=account, defaults={"daily_digest": True, "timezone": "Europe/Paris"}
        )

        return [_ensure_store(account, number) for number in range(1, stores + 1)]


def _ensure_store(account: Account, number: int) -> Store:
    platform, domain, spec, name = demo_store_identity(number)
    store, _ = Store.objects.get_or_create(
        platform=platform,
        domain=domain,
        defaults={
            "account": account,
            "name": name,
            "timezone": spec.timezone,
            "currency": spec.currency,
        },
    )
    integration, _ = Integration.objects.get_or_create(store=store, defaults={"type": platform})
    if not integration.webhook_secret_encrypted:
        integration.webhook_secret = secrets.token_urlsafe(32)
        integration.save()
    for alert_type, config in DEMO_ALERTS:
        Alert.objects.get_or_create(store=store, type=alert_type, defaults={"config": config})
    return store
