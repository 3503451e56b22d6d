"""The reads behind the live dashboard that span domains; the rest are the domain's own
(opspulse.commerce.selectors, opspulse.metrics.selectors). Callers pass a store
already scoped to the user (opspulse.stores.selectors.get_store_for_user)."""

from __future__ import annotations

from opspulse.alerts.models import Alert, AlertType
from opspulse.commerce import selectors as commerce_selectors
from opspulse.commerce.selectors import LOW_STOCK_SHOWN, LowStock
from opspulse.stores.models import Store

DEFAULT_LOW_STOCK_THRESHOLD = 5


def low_stock_threshold(store: Store) -> int:
    """Return the threshold of the store's latest active low-stock alert for every item, or the default.

    A rule for one SKU or one location says nothing about the other items.
    """
    for config in (
        Alert.objects.filter(store=store, type=AlertType.LOW_STOCK, is_active=True)
        .order_by("-created_at")
        .values_list("config", flat=True)
    ):
        if not isinstance(config, dict) or config.get("sku") or config.get("location"):
            continue
        try:
            return int(config.get("threshold", DEFAULT_LOW_STOCK_THRESHOLD))
        except (TypeError, ValueError):
            return DEFAULT_LOW_STOCK_THRESHOLD
    return DEFAULT_LOW_STOCK_THRESHOLD


def low_stock(store: Store, *, limit: int = LOW_STOCK_SHOWN) -> LowStock:
    """Return the items still in stock but at or below the store's low-stock threshold
    (its alert's, or the default), fewest first."""
    return commerce_selectors.low_stock(store, threshold=low_stock_threshold(store), limit=limit)
