"""Shopify as a provider (opspulse.platforms.provider): how its webhooks are received,
parsed and applied, and how a shop is disconnected, imported and reconciled."""

from __future__ import annotations

from typing import Any, get_args

from django.conf import settings

from opspulse.platforms.provider import KnownStore, WebhookDesk, webhook_store_lookup
from opspulse.platforms.shopify import actions, events, handlers, verify
from opspulse.platforms.shopify.disconnect import disconnect
from opspulse.platforms.shopify.tasks import defer_backfill, reconcile_shopify_store
from opspulse.privacy.actions import PrivacyRequest
from opspulse.stores.models import Store

# Shopify names the shop in a header: one address for every shop. A disconnected store
# is known only for privacy requests (its history is still held).
STORE_BY_DOMAIN = webhook_store_lookup(platform="shopify", key_column="domain", app_signed=True)


class Shopify:
    name = "shopify"
    parsers = handlers.PARSERS
    event_types = get_args(events.PlatformEvent)
    privacy_request_types = get_args(PrivacyRequest)
    store_lookup = STORE_BY_DOMAIN
    topic_header = verify.TOPIC_HEADER
    shop_header: str | None = verify.SHOP_HEADER
    kept_headers = verify.KEPT_HEADERS

    def webhook_store_key(self, rest: str) -> str | None:
        # The shop is named by its header, read in `receive`.
        return "" if not rest.rstrip("/") else None

    def app_secrets(self) -> list[str]:
        """The Shopify app's client secrets (the previous one too, during a rotation)."""
        return [s for s in (settings.SHOPIFY_CLIENT_SECRET, settings.SHOPIFY_PREVIOUS_CLIENT_SECRET) if s]

    def delivery_key(self, headers: dict[str, str], body: bytes) -> str:
        return verify.delivery_key(headers, body)

    async def receive(self, desk: WebhookDesk, key: str, headers: dict[str, str], body: bytes) -> Any:
        signature = headers.get(verify.SIGNATURE_HEADER, "")
        if not signature:
            return desk.refuse(self, "missing signature", headers)
        # Only HTTP's own whitespace: str.strip() would also drop "\x85" or "\xa0" from
        # a header read as Latin-1, and take a look-alike domain for the shop's.
        domain = headers.get(verify.SHOP_HEADER, "").strip(" \t").lower()
        store: KnownStore | None = await desk.find_store(self, domain) if domain else None
        if store is not None and store.disconnected:
            if headers.get(verify.TOPIC_HEADER, "") not in verify.COMPLIANCE_TOPICS:
                store = None
        if store is None:
            # Signed with the app's secret, only Shopify can have sent it: for a shop
            # OpsPulse does not know, a privacy request is done (never connected, or
            # already erased by shop/redact) and anything else is 404. Unsigned by it,
            # the answer is that of a bad signature, after the same work.
            if not desk.unknown_store_signed(body, signature, self.app_secrets()):
                return desk.refuse(self, "unknown store", headers)
            if headers.get(verify.TOPIC_HEADER, "") in verify.COMPLIANCE_TOPICS:
                return desk.answer(200, status="no data held")
            return desk.answer(404, error="unknown store")
        if not await desk.signature_valid(self, domain, store, body, signature):
            return desk.refuse(self, "signature mismatch", headers)
        return await desk.record(self, domain, store, headers, body, event_id=headers.get(verify.EVENT_ID_HEADER, ""))

    def apply_event(self, *, store_id: int, event: Any) -> None:
        actions.apply_platform_event(store_id=store_id, event=event)

    def disconnect(self, store: Store) -> str:
        return disconnect(store)

    def import_history(self, store_id: int) -> None:
        defer_backfill(store_id)

    def reconcile(self, store_id: int) -> None:
        reconcile_shopify_store.defer(store_id=store_id)


PROVIDER = Shopify()
