"""An Admin API call has one overall deadline and reads a bounded answer, so a shop (or
anything in between) that drips or floods its answer cannot hold a worker slot."""

from __future__ import annotations

from datetime import timedelta
from time import monotonic

import pytest
from django.utils import timezone

from opspulse.platforms.shopify import client, oauth
from tests.support.alerts import RawReceiver

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def shop_client(shopify_store, monkeypatch):
    integration = shopify_store.integration
    integration.access_token = "shpat_valid"
    integration.access_token_expires_at = timezone.now() + timedelta(hours=1)
    integration.save()
    monkeypatch.setattr(client, "NETWORK_ATTEMPTS", 1)
    return client.ShopifyClient(integration)


def point_shops_at(settings, receiver: RawReceiver) -> None:
    settings.SHOPIFY_SHOP_URL_TEMPLATE = receiver.url.removesuffix("/hook") + "/shops/{shop}"
    settings.SHOPIFY_CALL_SPACING_SECONDS = 0


def test_an_answer_dripped_a_byte_at_a_time_ends_at_the_calls_deadline(shop_client, settings, monkeypatch):
    monkeypatch.setattr(client, "CALL_DEADLINE_SECONDS", 1.0)
    tarpit = RawReceiver(drip_seconds=0.2)
    point_shops_at(settings, tarpit)
    try:
        started = monotonic()
        with pytest.raises(client.ShopifyError, match="Shopify could not be reached: DeadlineExceeded"):
            shop_client.query("{ shop { name } }")
        took = monotonic() - started
    finally:
        tarpit.close()

    assert took < 3  # each byte came within the 30 s read timeout: it never fired


def test_an_answer_longer_than_the_limit_is_not_read_whole(shop_client, settings, monkeypatch):
    monkeypatch.setattr(client, "REPLY_LIMIT_BYTES", 1024 * 1024)
    huge = RawReceiver(body_bytes=64 * 1024 * 1024)
    point_shops_at(settings, huge)
    try:
        with pytest.raises(client.ShopifyError, match="Shopify could not be reached: ReplyTooLarge"):
            shop_client.query("{ shop { name } }")
    finally:
        huge.close()

    assert huge.sent_bytes < 16 * 1024 * 1024


def test_a_token_answer_dripped_a_byte_at_a_time_ends_at_its_deadline_as_a_busy_token_service(settings, monkeypatch):
    """A token refresh whose answer drips holds the job no longer than its deadline, and
    counts as Shopify being busy (tried again later), never as a refused grant."""
    monkeypatch.setattr(oauth, "TOKEN_REQUEST_DEADLINE_SECONDS", 1.0)
    tarpit = RawReceiver(drip_seconds=0.2)
    point_shops_at(settings, tarpit)
    try:
        started = monotonic()
        with pytest.raises(oauth.TokenServiceBusy, match="DeadlineExceeded"):
            oauth.refresh_tokens("dripping-shop.myshopify.com", "shprt_refresh")
        took = monotonic() - started
    finally:
        tarpit.close()

    assert took < 3  # each byte came within the 10 s read timeout: it never fired
