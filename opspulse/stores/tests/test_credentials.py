"""Credentials are encrypted at rest, bound to their row, and survive a key rotation."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.db import connection

from opspulse.lib import crypto
from opspulse.stores.models import Integration
from tests.support.stores import SHOPIFY_SECRET, make_store


def test_secret_is_not_stored_in_plaintext(shopify_store):
    integration = shopify_store.integration
    integration.access_token = "shpat_live_token_123"
    integration.save()

    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM stores_integration")
        row = " ".join(str(value) for value in cursor.fetchone())
    assert SHOPIFY_SECRET not in row
    assert "shpat_live_token_123" not in row
    assert Integration.objects.get().access_token == "shpat_live_token_123"


def test_ciphertext_moved_to_another_store_does_not_decrypt(personas, shopify_store):
    other = make_store(personas["other_account"], platform="shopify", domain="charlie.myshopify.com", secret="theirs")
    stolen = Integration.objects.get(store=other)
    stolen.webhook_secret_encrypted = shopify_store.integration.webhook_secret_encrypted
    stolen.save()

    with pytest.raises(crypto.DecryptionError):
        Integration.objects.get(store=other).webhook_secret


def test_rotation_reencrypts_and_the_old_key_can_then_go(shopify_store, settings):
    old_ring = settings.FIELD_ENCRYPTION_KEYS
    new_entry = crypto.generate_key_entry("k2")
    settings.FIELD_ENCRYPTION_KEYS = f"{new_entry},{old_ring}"

    call_command("rotate_field_keys")

    settings.FIELD_ENCRYPTION_KEYS = new_entry
    integration = Integration.objects.get()
    assert crypto.current_kid(integration.webhook_secret_encrypted) == "k2"
    assert integration.webhook_secret == SHOPIFY_SECRET


def test_key_ring_rejects_a_short_key():
    from django.core.exceptions import ImproperlyConfigured

    with pytest.raises(ImproperlyConfigured):
        crypto.parse_key_ring("k1:c2hvcnQ=")
