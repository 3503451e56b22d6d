"""Platform name → its webhook topic handlers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from opspulse.platforms.shopify import handlers as shopify
from opspulse.platforms.woocommerce import handlers as woocommerce

HANDLERS: dict[str, dict[str, Callable[[Any, Any], None]]] = {
    "shopify": shopify.HANDLERS,
    "woocommerce": woocommerce.HANDLERS,
}


def is_known_topic(platform: str, topic: str) -> bool:
    return topic in HANDLERS.get(platform, {})


def handler_for(platform: str, topic: str) -> Callable[[Any, Any], None] | None:
    return HANDLERS.get(platform, {}).get(topic)
