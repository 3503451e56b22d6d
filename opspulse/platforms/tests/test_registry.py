"""A provider is a folder and a line in the registry: the ingest endpoint knows none by name."""

from __future__ import annotations

import httpx
import pytest

from opspulse.ingest.endpoint import IngestApp
from opspulse.platforms import registry


class Marketplace:
    """A third platform, as little of it as the endpoint needs."""

    name = "marketplace"

    def webhook_store_key(self, rest: str) -> str | None:
        return rest.rstrip("/") or None

    async def receive(self, desk, key: str, headers: dict[str, str], body: bytes):
        return desk.answer(200, status=f"received for {key}: {body.decode()}")


@pytest.mark.anyio
async def test_a_provider_in_the_registry_receives_the_webhooks_of_its_address(monkeypatch):
    monkeypatch.setitem(registry.PROVIDERS, "marketplace", Marketplace())
    transport = httpx.ASGITransport(app=IngestApp(app=None))

    async with httpx.AsyncClient(transport=transport, base_url="http://ingest") as client:
        received = await client.post("/webhooks/marketplace/shop-7/", content=b"hello")
        no_store = await client.post("/webhooks/marketplace/", content=b"hello")
        unknown = await client.post("/webhooks/bazaar/shop-7/", content=b"hello")

    assert (received.status_code, received.json()) == (200, {"status": "received for shop-7: hello"})
    assert (no_store.status_code, no_store.json()) == (404, {"error": "not found"})
    assert (unknown.status_code, unknown.json()) == (404, {"error": "not found"})


def test_every_platform_event_has_the_provider_that_applies_it():
    for provider in registry.PROVIDERS.values():
        for event_type in provider.event_types:
            assert registry.EVENT_PROVIDERS[event_type] is provider
        assert set(provider.privacy_request_types) <= set(provider.event_types)
