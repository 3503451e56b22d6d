"""The fake's whole world, in memory: the app, its shops, their data, tokens and logs.

Everything runs on the server's single event loop, so state is plain objects without
locks. Time comes from `Clock`, which the control API can move forward so that codes
and tokens expire without a test having to wait.
"""

from __future__ import annotations

import itertools
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from opspulse.sim.payloads import LineSpec, Sellable

API_VERSIONS = ("2025-01", "2025-04", "2025-07", "2025-10", "2026-01", "2026-04")
DEFAULT_API_VERSION = "2025-10"
CODE_LIFETIME = 60.0
ONLINE_TOKEN_LIFETIME = 86_399
REFRESH_TOKEN_LIFETIME = 7_776_000
# The 2026-08 change: a refresh token that was used stays valid until its replacement
# is used, for at most 30 days (shopify.dev/changelog/more-resilient-refreshes-…).
REFRESH_RECOVERY_WINDOW = 30 * 86_400.0


class Clock:
    """Wall and monotonic time that the control API can advance."""

    def __init__(self) -> None:
        self.offset = 0.0

    def advance(self, seconds: float) -> None:
        self.offset += seconds

    def now(self) -> datetime:
        """Return the current UTC time to the second, the precision of Shopify's timestamps."""
        return (datetime.now(UTC) + timedelta(seconds=self.offset)).replace(microsecond=0)

    def monotonic(self) -> float:
        return time.monotonic() + self.offset


@dataclass
class AppSettings:
    """The one app this fake Shopify knows: its credentials and its TOML-level settings."""

    client_id: str
    client_secret: str
    redirect_prefix: str
    access_token_lifetime: int = 3600
    refresh_token_lifetime: int = REFRESH_TOKEN_LIFETIME
    api_version: str = DEFAULT_API_VERSION
    # App-specific subscriptions (shopify.app.toml [webhooks]): topic → uris. The only
    # way to receive the compliance topics, which the Admin API cannot subscribe to.
    app_subscriptions: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class Variant(Sellable):
    product_id: int
    variant_id: int
    inventory_item_id: int
    sku: str
    title: str
    price: Decimal
    available: int
    updated_at: datetime


@dataclass(frozen=True)
class Customer:
    id: int
    first_name: str
    last_name: str
    email: str
    city: str


@dataclass
class Order:
    id: int
    number: int
    created_at: datetime
    updated_at: datetime
    customer: Customer
    lines: list[LineSpec]
    financial_status: str = "paid"
    fulfillment_status: str | None = None
    cancelled_at: datetime | None = None

    @property
    def total(self) -> Decimal:
        return sum((line.line_total for line in self.lines), Decimal("0.00"))


@dataclass
class WebhookSubscription:
    id: int
    topic: str
    uri: str
    api_version: str
    include_fields: list[str]
    created_at: datetime


@dataclass
class BulkOperation:
    id: int
    query: str
    status: str
    created_at: datetime
    completed_at: datetime | None = None
    error_code: str | None = None
    object_count: int = 0
    root_object_count: int = 0
    url: str | None = None
    body: bytes = b""


@dataclass
class Shop:
    id: int
    domain: str
    name: str
    email: str
    currency: str
    timezone: str
    plan: str
    location_id: int
    created_at: datetime
    variants: list[Variant] = field(default_factory=list)
    orders: dict[int, Order] = field(default_factory=dict)
    next_number: int = 1001
    installed: bool = False
    scopes: list[str] = field(default_factory=list)
    # Set through the control API: what the next install grants instead of the request.
    next_grant: list[str] | None = None
    # Set through the control API: the next refresh requests fail with this status.
    refresh_failures: int = 0
    refresh_failure_status: int = 503
    refresh_failure_retry_after: float | None = None
    subscriptions: dict[int, WebhookSubscription] = field(default_factory=dict)
    bulk_operations: list[BulkOperation] = field(default_factory=list)

    def variant_by_sku(self, sku: str) -> Variant | None:
        return next((variant for variant in self.variants if variant.sku == sku), None)


@dataclass
class AuthorizationCode:
    code: str
    shop: str
    scopes: list[str]
    online: bool
    expires_at: float
    used: bool = False


@dataclass
class AccessToken:
    token: str
    shop: str
    scopes: list[str]
    expires_at: float
    online: bool = False
    revoked: bool = False
    # The refresh token spent to get this one: retired when this one is first used.
    replaces: RefreshToken | None = None


@dataclass
class RefreshToken:
    token: str
    shop: str
    scopes: list[str]
    expires_at: float
    revoked: bool = False
    first_used_at: float | None = None
    replaces: RefreshToken | None = None


@dataclass
class CostBucket:
    """A GraphQL Admin leaky bucket of query-cost points, per app and shop."""

    level: float
    updated: float
    maximum: float = 1000.0
    restore_rate: float = 100.0

    def available(self, now: float) -> float:
        """Return the points available now, after leaking back since the last look."""
        self.level = min(self.maximum, self.level + (now - self.updated) * self.restore_rate)
        self.updated = now
        return self.level


@dataclass
class CallRecord:
    """One POST to the GraphQL endpoint: when (real monotonic seconds) and how it went."""

    at: float
    status: int
    throttled: bool
    requested_cost: int | None
    actual_cost: int | None


@dataclass
class DeliveryAttempt:
    webhook_id: str
    event_id: str
    shop: str
    topic: str
    uri: str
    attempt: int
    status: int | None
    error: str | None
    duration_ms: int
    at: datetime

    def as_json(self) -> dict[str, Any]:
        return {
            "webhook_id": self.webhook_id,
            "event_id": self.event_id,
            "shop": self.shop,
            "topic": self.topic,
            "uri": self.uri,
            "attempt": self.attempt,
            "status": self.status,
            "error": self.error,
            "duration_ms": self.duration_ms,
            "at": self.at.isoformat(),
        }


class Ids:
    """Shopify-sized numeric ids, one increasing sequence per resource."""

    def __init__(self) -> None:
        self.shop = itertools.count(55_871_000_001)
        self.location = itertools.count(61_234_000_001)
        self.product = itertools.count(7_712_000_000_001)
        self.variant = itertools.count(44_886_000_000_001)
        self.inventory_item = itertools.count(46_981_000_000_001)
        self.order = itertools.count(5_912_000_000_001)
        self.line_item = itertools.count(14_012_000_000_001)
        self.customer = itertools.count(6_394_000_000_001)
        self.subscription = itertools.count(1_302_000_001)
        self.bulk_operation = itertools.count(4_208_000_001)


Notifier = Callable[["Shop", str, dict[str, Any]], None]


class FakeShopify:
    """The state of one fake Shopify serving one app to many shops."""

    def __init__(self, app: AppSettings, *, clock: Clock | None = None) -> None:
        self.app = app
        self.clock = clock or Clock()
        self.ids = Ids()
        self.shops: dict[str, Shop] = {}
        self.codes: dict[str, AuthorizationCode] = {}
        self.access_tokens: dict[str, AccessToken] = {}
        self.refresh_tokens: dict[str, RefreshToken] = {}
        self.calls: dict[str, list[CallRecord]] = {}
        self.buckets: dict[str, CostBucket] = {}
        self.deliveries: list[DeliveryAttempt] = []
        self.notify: Notifier = lambda shop, topic, payload: None

    def bucket(self, shop: Shop) -> CostBucket:
        now = self.clock.monotonic()
        return self.buckets.setdefault(shop.domain, CostBucket(level=1000.0, updated=now))

    # -- OAuth -----------------------------------------------------------------------

    def issue_code(self, shop: Shop, *, requested: list[str], online: bool) -> AuthorizationCode:
        """Record the merchant's approval and return the single-use code for the callback."""
        granted = shop.next_grant if shop.next_grant is not None else requested
        shop.next_grant = None
        code = AuthorizationCode(
            code=secrets.token_hex(16),
            shop=shop.domain,
            scopes=list(granted),
            online=online,
            expires_at=self.clock.monotonic() + CODE_LIFETIME,
        )
        self.codes[code.code] = code
        return code

    def redeem_code(self, shop: Shop, code_value: str) -> AuthorizationCode | None:
        """Return the code and spend it, or None if unknown, used, expired or not this shop's."""
        code = self.codes.get(code_value)
        if (
            code is None
            or code.used
            or code.shop != shop.domain
            or code.expires_at <= self.clock.monotonic()
        ):
            return None
        code.used = True
        shop.installed = True
        shop.scopes = list(code.scopes)
        return code

    def issue_offline_pair(
        self, shop: Shop, scopes: list[str], *, replaces: RefreshToken | None = None
    ) -> tuple[AccessToken, RefreshToken]:
        now = self.clock.monotonic()
        access, refresh = (
            kind(
                token=f"{prefix}_{secrets.token_hex(16)}",
                shop=shop.domain,
                scopes=list(scopes),
                expires_at=now + lifetime,
                replaces=replaces,
            )
            for kind, prefix, lifetime in (
                (AccessToken, "shpat", self.app.access_token_lifetime),
                (RefreshToken, "shprt", self.app.refresh_token_lifetime),
            )
        )
        self.access_tokens[access.token] = access
        self.refresh_tokens[refresh.token] = refresh
        return access, refresh

    def issue_online_token(self, shop: Shop, scopes: list[str]) -> AccessToken:
        access = AccessToken(
            token=f"shpua_{secrets.token_hex(16)}",
            shop=shop.domain,
            scopes=list(scopes),
            expires_at=self.clock.monotonic() + ONLINE_TOKEN_LIFETIME,
            online=True,
        )
        self.access_tokens[access.token] = access
        return access

    def refresh(self, shop: Shop, refresh_value: str) -> tuple[AccessToken, RefreshToken] | None:
        """Return a new token pair for a live refresh token of this shop, else None.

        The refresh token spent here stays usable (so a client that lost the response
        can retry) until the new pair is first used; using it retires its predecessor.
        """
        refresh = self.refresh_tokens.get(refresh_value)
        now = self.clock.monotonic()
        if refresh is None or refresh.revoked or refresh.shop != shop.domain:
            return None
        if refresh.expires_at <= now:
            return None
        if refresh.first_used_at is None:
            refresh.first_used_at = now
        elif now - refresh.first_used_at > REFRESH_RECOVERY_WINDOW:
            return None
        _retire_replaced(refresh)
        return self.issue_offline_pair(shop, refresh.scopes, replaces=refresh)

    def authenticate(self, shop: Shop, token_value: str | None) -> AccessToken | None:
        """Return the live access token for this shop, else None; first use retires its predecessor."""
        access = self.access_tokens.get(token_value or "")
        if access is None or access.revoked or access.shop != shop.domain:
            return None
        if access.expires_at <= self.clock.monotonic():
            return None
        _retire_replaced(access)
        return access

    def expire_tokens(self, shop: Shop) -> int:
        """Expire every access token of the shop now; return how many were live."""
        now = self.clock.monotonic()
        count = 0
        for access in self.access_tokens.values():
            if access.shop == shop.domain and access.expires_at > now:
                access.expires_at = now
                count += 1
        return count

    def revoke_tokens(self, shop: Shop) -> None:
        for access in self.access_tokens.values():
            if access.shop == shop.domain:
                access.revoked = True
        for refresh in self.refresh_tokens.values():
            if refresh.shop == shop.domain:
                refresh.revoked = True


def _retire_replaced(token: AccessToken | RefreshToken) -> None:
    if token.replaces is not None:
        token.replaces.revoked = True
        token.replaces = None
