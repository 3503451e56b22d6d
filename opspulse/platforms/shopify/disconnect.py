"""Disconnecting a Shopify store: what OpsPulse made at the shop is removed."""

from __future__ import annotations

from opspulse.platforms.shopify.client import ShopifyClient, ShopifyError
from opspulse.platforms.shopify.subscriptions import remove_subscriptions
from opspulse.stores.models import Integration, IntegrationStatus, Store


def disconnect(store: Store) -> str:
    """Delete the shop's webhook subscriptions to OpsPulse; return what could not be
    removed, for the merchant, or "" when nothing is left at Shopify.

    An uninstalled app's subscriptions went with it. OpsPulse refuses the webhooks of a
    subscription it could not remove, and Shopify deletes such a subscription after 8
    failed deliveries in a row.
    """
    integration = Integration.objects.select_related("store").filter(store=store).first()
    if integration is None or integration.status == IntegrationStatus.INACTIVE or not integration.app_installed:
        # Uninstalled, or connected by a webhook secret alone: nothing OpsPulse made at the shop.
        return ""
    try:
        remove_subscriptions(ShopifyClient(integration))
    except ShopifyError as exc:
        return (
            f"OpsPulse's webhook subscriptions at Shopify could not be removed ({exc}). OpsPulse refuses "
            "their webhooks, and Shopify deletes a subscription after 8 failed deliveries in a row."
        )
    return ""
