"""WooCommerce as a provider (opspulse.platforms.provider): how its webhooks are
received and parsed, and what disconnecting a store asks of the merchant.

Importing a store's past and reconciling it come later: OpsPulse holds no API keys of a
WooCommerce store yet.
"""

from __future__ import annotations

import re
from typing import Any

from opspulse.platforms.provider import KnownStore, ProviderCannot, WebhookDesk, webhook_store_lookup
from opspulse.platforms.woocommerce import handlers, verify
from opspulse.platforms.woocommerce.disconnect import disconnect
from opspulse.stores.models import Store

# WooCommerce webhooks carry no shop header: the store is named by its ingest token,
# the rest of the address (/webhooks/woocommerce/<token>/).
WEBHOOK_PATH_REST = re.compile(r"^(?P<token>[A-Za-z0-9_\-]{8,64})/?$")
STORE_BY_TOKEN = webhook_store_lookup(platform="woocommerce", key_column="ingest_token", app_signed=False)


class WooCommerce:
    name = "woocommerce"
    parsers = handlers.PARSERS
    event_types: tuple[type, ...] = ()
    privacy_request_types: tuple[type, ...] = ()
    store_lookup = STORE_BY_TOKEN
    topic_header = verify.TOPIC_HEADER
    shop_header: str | None = None
    kept_headers = verify.KEPT_HEADERS

    def webhook_store_key(self, rest: str) -> str | None:
        match = WEBHOOK_PATH_REST.match(rest)
        return match["token"] if match else None

    def app_secrets(self) -> list[str]:
        return []

    def delivery_key(self, headers: dict[str, str], body: bytes) -> str:
        return verify.delivery_key(headers, body)

    async def receive(self, desk: WebhookDesk, key: str, headers: dict[str, str], body: bytes) -> Any:
        store: KnownStore | None = await desk.find_store(self, key)
        signature = headers.get(verify.SIGNATURE_HEADER, "")
        if store is None or store.disconnected:
            # The token in the address is the store's credential: an unknown one gets
            # the answer of a bad signature, after the same work.
            desk.unknown_store_signed(body, signature, [])
            return desk.refuse(self, "unknown store", headers)
        if verify.is_ping(headers, body):
            # WooCommerce disables a webhook whose activation ping is not answered 200.
            return desk.answer(200, status="pong")
        if not signature:
            return desk.refuse(self, "missing signature", headers)
        if not await desk.signature_valid(self, key, store, body, signature):
            return desk.refuse(self, "signature mismatch", headers)
        return await desk.record(self, key, store, headers, body)

    def apply_event(self, *, store_id: int, event: Any) -> None:
        raise ProviderCannot(f"WooCommerce sends no platform events, got {type(event).__name__}")

    def disconnect(self, store: Store) -> str:
        return disconnect(store)

    def import_history(self, store_id: int) -> None:
        raise ProviderCannot("a WooCommerce store's past cannot be imported yet")

    def reconcile(self, store_id: int) -> None:
        raise ProviderCannot("a WooCommerce store cannot be reconciled yet")


PROVIDER = WooCommerce()
