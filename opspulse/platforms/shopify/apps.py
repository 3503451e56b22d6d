from django.apps import AppConfig


class ShopifyConfig(AppConfig):
    """Shopify's models (`ApiCallSlot`) and jobs (`tasks.py`, found by procrastinate's
    autodiscovery of installed apps)."""

    name = "opspulse.platforms.shopify"
    label = "shopify"
