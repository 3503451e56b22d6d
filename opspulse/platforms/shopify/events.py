"""What a Shopify webhook says about the store's integration rather than its commerce.

The drain applies these in its batch's transaction (`actions.apply_platform_event`);
the privacy requests' own events and actions are those of opspulse.privacy.actions.
"""

from __future__ import annotations

from dataclasses import dataclass

from opspulse.privacy.actions import (
    CustomerDataRequested,
    CustomerRedactionRequested,
    ShopRedactionRequested,
)


@dataclass(frozen=True)
class AppUninstalled:
    """The merchant removed OpsPulse's app from the shop (Shopify's app/uninstalled)."""

    # The shop the signed payload names. Shopify signs every shop's app webhooks with
    # the app's one secret and does not sign the shop header, so a body signed for one
    # shop could be replayed under another's header: only the body says whose it is.
    shop_domain: str


@dataclass(frozen=True)
class BulkOperationFinished:
    """A bulk query of the app ended on the shop's side (Shopify's bulk_operations/finish)."""

    operation_id: str
    status: str


PlatformEvent = (
    AppUninstalled | BulkOperationFinished | CustomerRedactionRequested | ShopRedactionRequested | CustomerDataRequested
)
