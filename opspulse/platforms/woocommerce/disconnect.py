"""Disconnecting a WooCommerce store."""

from __future__ import annotations

from opspulse.stores.models import Store


def disconnect(store: Store) -> str:
    """Return what the merchant removes in WooCommerce: OpsPulse holds no API keys there.

    WooCommerce disables a webhook after more than 5 failed deliveries in a row; until
    then OpsPulse refuses them.
    """
    return (
        "Delete OpsPulse's webhooks in WooCommerce (Settings › Advanced › Webhooks); until then "
        "OpsPulse refuses their deliveries, and WooCommerce turns them off after a few failures."
    )
