"""Provider name → the provider (opspulse.platforms.provider), and what the rest of
OpsPulse asks of a store's provider through it.

The only module of opspulse.platforms that names a provider: adding a platform is adding
its folder and a line here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from opspulse.commerce.actions import apply_records
from opspulse.platforms.provider import Parser, Provider
from opspulse.platforms.shopify.provider import PROVIDER as SHOPIFY
from opspulse.platforms.woocommerce.provider import PROVIDER as WOOCOMMERCE

PROVIDERS: dict[str, Provider] = {provider.name: provider for provider in (SHOPIFY, WOOCOMMERCE)}

# The provider of each kind of platform event (what a parser may make instead of a
# commerce record), and the kinds the drain tells apart: `isinstance` takes these tuples.
EVENT_PROVIDERS: dict[type, Provider] = {
    event_type: provider for provider in PROVIDERS.values() for event_type in provider.event_types
}
PlatformEvent = tuple(EVENT_PROVIDERS)
# Applied for a disconnected store too: its history is still held.
PrivacyRequest = tuple(
    event_type for provider in PROVIDERS.values() for event_type in provider.privacy_request_types
)


def disconnect_at_platform(store: Any) -> str:
    """Remove what connecting the store made at its platform (webhook subscriptions);
    return what could not be removed, for the merchant, or ""."""
    found = PROVIDERS.get(store.platform)
    return found.disconnect(store) if found is not None else ""


def apply_platform_event(*, store_id: int, event: Any) -> None:
    """Apply a platform event in the caller's transaction (the drain's batch)."""
    EVENT_PROVIDERS[type(event)].apply_event(store_id=store_id, event=event)


def parser_for(platform: str, topic: str) -> Parser | None:
    """The function that turns a decoded payload of `topic` into a record (None: nothing to do)."""
    found = PROVIDERS.get(platform)
    return found.parsers.get(topic) if found is not None else None


def handler_for(platform: str, topic: str) -> Callable[[Any, Any], None] | None:
    """Parse and apply one payload at once, outside the drain job (seeding, tests)."""
    parse = parser_for(platform, topic)
    if parse is None:
        return None

    def handle(store: Any, payload: Any) -> None:
        record = parse(payload)
        if record is not None:
            apply_records(store=store, records=[record])

    return handle
