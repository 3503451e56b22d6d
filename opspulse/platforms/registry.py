"""Platform name → its webhook topics, each with the parser of its payload, and how a
store is disconnected at the platform."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from opspulse.commerce.actions import Record, apply_records
from opspulse.platforms.shopify import disconnect as shopify_disconnect
from opspulse.platforms.shopify import handlers as shopify
from opspulse.platforms.woocommerce import disconnect as woocommerce_disconnect
from opspulse.platforms.woocommerce import handlers as woocommerce

PARSERS: dict[str, dict[str, Callable[[Any], Record | None]]] = {
    "shopify": shopify.PARSERS,
    "woocommerce": woocommerce.PARSERS,
}

DISCONNECTORS: dict[str, Callable[[Any], str]] = {
    "shopify": shopify_disconnect.disconnect,
    "woocommerce": woocommerce_disconnect.disconnect,
}


def disconnect_at_platform(store: Any) -> str:
    """Remove what connecting the store made at its platform (webhook subscriptions);
    return what could not be removed, for the merchant, or ""."""
    disconnect = DISCONNECTORS.get(store.platform)
    return disconnect(store) if disconnect is not None else ""


def is_known_topic(platform: str, topic: str) -> bool:
    return topic in PARSERS.get(platform, {})


def parser_for(platform: str, topic: str) -> Callable[[Any], Record | None] | None:
    """The function that turns a decoded payload of `topic` into a record (None: nothing to do)."""
    return PARSERS.get(platform, {}).get(topic)


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
