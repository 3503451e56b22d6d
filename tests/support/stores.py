"""Stores with their webhook secrets, and clients signed in to them."""

from __future__ import annotations

from django.test import Client

from opspulse.stores.models import Integration, Store

SHOPIFY_SECRET = "shpss_test_webhook_secret"
# The Shopify app's credentials, as the fake Shopify knows them.
SHOPIFY_APP_CLIENT_ID = "opspulse-test-app"
SHOPIFY_APP_CLIENT_SECRET = "shpss_fake_app_client_secret"
WOO_SECRET = "woo_test_webhook_secret"


def client_for(user) -> Client:
    """A Django test client signed in as `user`."""
    client = Client()
    client.force_login(user)
    return client


def make_store(account, *, platform: str, domain: str, secret: str, timezone: str = "Europe/Paris", currency: str = "EUR"):
    store = Store.objects.create(
        account=account, name=domain.split(".")[0].title(), platform=platform, domain=domain,
        timezone=timezone, currency=currency,
    )
    integration = Integration(store=store, type=platform)
    integration.webhook_secret = secret
    integration.save()
    return store
