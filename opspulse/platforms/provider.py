"""The face every commerce provider shows the rest of OpsPulse.

A provider is a folder, `platforms/<name>/`, whose `provider.py` holds an object with
this interface, listed by name in `platforms/registry.py`: the ingest endpoint, the
drain and the store settings page find it there and know nothing else of the provider.
What a provider cannot do yet raises `ProviderCannot`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

# What a delivery's parser makes of a decoded payload: a commerce record, a platform
# event, or None when there is nothing to do.
Parser = Callable[[Any], Any]


def webhook_store_lookup(*, platform: str, key_column: str, app_signed: bool) -> str:
    """The ingest endpoint's lookup of the store a webhook is for (`Provider.store_lookup`),
    by the store's `key_column`. A deleted store is unknown; a disconnected one is found,
    and marked so."""
    signed_by_app = "coalesce(i.app_installed, false)" if app_signed else "false"
    return f"""
    SELECT s.id, i.webhook_secret_encrypted, i.previous_webhook_secret_encrypted, {signed_by_app},
           s.disconnected_at IS NOT NULL
    FROM stores_store s LEFT JOIN stores_integration i ON i.store_id = s.id
    WHERE s.platform = '{platform}' AND s.{key_column} = %s AND s.deleted_at IS NULL
"""


class ProviderCannot(Exception):
    """The provider has no way to do this (yet): a WooCommerce store cannot be imported, say."""


class KnownStore(Protocol):
    """A store the ingest endpoint found for a webhook, with its decrypted webhook secrets."""

    id: int
    disconnected: bool


class WebhookDesk(Protocol):
    """What the ingest endpoint (opspulse.ingest.endpoint) lends a provider receiving a
    webhook. Answers are the endpoint's own; a provider hands them back unchanged.

    Every refusal goes through `refuse`, and an unknown store costs the same work as a
    known one with a bad signature: a lookup, a decryption and an HMAC check.
    """

    async def find_store(self, provider: Provider, key: str) -> KnownStore | None: ...

    async def signature_valid(
        self, provider: Provider, key: str, store: KnownStore, body: bytes, signature: str
    ) -> bool: ...

    def unknown_store_signed(self, body: bytes, signature: str, known_secrets: list[str]) -> bool:
        """Check `signature` as a known store's is checked, against `known_secrets` only."""
        ...

    def refuse(self, provider: Provider, reason: str, headers: dict[str, str]) -> Any: ...

    def answer(self, code: int, **body: Any) -> Any:
        """The answer `code` with `body` as its JSON (a body may have a "status" of its own)."""
        ...

    async def record(
        self, provider: Provider, key: str, store: KnownStore, headers: dict[str, str], body: bytes, *,
        event_id: str = "",
    ) -> Any:
        """Store the verified delivery and make sure its drain job runs; answer 200."""
        ...


class Provider(Protocol):
    """A commerce platform OpsPulse connects stores of."""

    name: str
    # Webhook topic → the parser of its payload (opspulse.ingest.actions).
    parsers: Mapping[str, Parser]
    # What its parsers may make instead of a commerce record: events about the store's
    # integration, applied by `apply_event`; among them, the privacy requests, applied
    # for a disconnected store too (its history is still held).
    event_types: tuple[type, ...]
    privacy_request_types: tuple[type, ...]

    # The ingest endpoint (POST /webhooks/<name>/...). The lookup's one parameter is the
    # store's key; its row is (store id, encrypted webhook secret, encrypted previous
    # webhook secret, signed with the app's secrets, disconnected).
    store_lookup: str
    topic_header: str
    # Named in the log of a refused webhook; None when the platform sends no such header.
    shop_header: str | None
    kept_headers: tuple[str, ...]

    def webhook_store_key(self, rest: str) -> str | None:
        """The store's key in the rest of a webhook's address after /webhooks/<name>/;
        None if that is no webhook address of the provider's."""
        ...

    def app_secrets(self) -> list[str]:
        """The secrets the provider's app signs webhooks with, for a store installed through it."""
        ...

    def delivery_key(self, headers: dict[str, str], body: bytes) -> str:
        """What tells a delivery from any other of the store's: a resend has the same."""
        ...

    async def receive(self, desk: WebhookDesk, key: str, headers: dict[str, str], body: bytes) -> Any:
        """Verify a webhook for the store of `key` and record it, or answer why not."""
        ...

    def apply_event(self, *, store_id: int, event: Any) -> None:
        """Apply a platform event a parser made (not a commerce record), in the drain's transaction."""
        ...

    def disconnect(self, store: Any) -> str:
        """Remove what connecting the store made at the platform; return what could not be
        removed, for the merchant, or ""."""
        ...

    def import_history(self, store_id: int) -> None:
        """Queue the import of the store's recent past."""
        ...

    def reconcile(self, store_id: int) -> None:
        """Apply what the platform changed that webhooks may have missed."""
        ...
