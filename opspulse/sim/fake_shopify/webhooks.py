"""Outgoing webhooks: signed like Shopify's, one delivery per subscription, retried.

Shopify gives a receiver 1 s to connect and 5 s in all, counts any non-2xx answer
(3xx included) as a failure and retries with the same body and X-Shopify-Webhook-Id.
It retries 8 times over 4 hours; the fake retries a few times, quickly, so tests can
watch it. Every attempt is recorded in `FakeShopify.deliveries`.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from typing import Any

import httpx

from opspulse.sim import payloads
from opspulse.sim.fake_shopify.schema import TOPICS
from opspulse.sim.fake_shopify.state import DeliveryAttempt, FakeShopify, Shop

TIMEOUT = httpx.Timeout(5.0, connect=1.0)
REST_TOPICS = {rest: name for name, (rest, _) in TOPICS.items()}
# Topics an uninstalled shop still sends to the app's own (TOML) subscriptions.
AFTER_UNINSTALL = {"app/uninstalled", "shop/redact", "customers/redact", "customers/data_request"}


@dataclass(frozen=True)
class Target:
    uri: str
    api_version: str
    include_fields: tuple[str, ...] = ()


class WebhookSender:
    """Delivers the events `FakeShopify.notify` reports, in background tasks."""

    def __init__(self, world: FakeShopify, *, retries: int = 3, retry_delay: float = 0.2) -> None:
        self.world = world
        self.retries = retries
        self.retry_delay = retry_delay
        self.pending: set[asyncio.Task[None]] = set()
        self.client: httpx.AsyncClient | None = None
        world.notify = self.notify

    def targets(self, shop: Shop, topic: str) -> list[Target]:
        """Return where an event on this topic goes: the shop's and the app's subscriptions."""
        found = [
            Target(s.uri, s.api_version, tuple(s.include_fields))
            for s in shop.subscriptions.values()
            if s.topic == REST_TOPICS.get(topic, "")
        ]
        if shop.installed or topic in AFTER_UNINSTALL:
            found += [
                Target(uri, self.world.app.api_version)
                for uri in self.world.app.app_subscriptions.get(topic, [])
            ]
        return found

    def notify(self, shop: Shop, topic: str, payload: dict[str, Any]) -> None:
        """Schedule one delivery per subscription; all share one X-Shopify-Event-Id."""
        event_id = str(uuid.uuid4())
        triggered_at = self.world.clock.now()
        loop = asyncio.get_running_loop()
        for target in self.targets(shop, topic):
            body = payload
            if target.include_fields:
                body = {key: value for key, value in payload.items() if key in target.include_fields}
            raw = payloads.encode(body)
            headers = payloads.shopify_headers(
                shop_domain=shop.domain,
                topic=topic,
                body=raw,
                secret=self.world.app.client_secret,
                event_id=event_id,
                triggered_at=triggered_at,
                api_version=target.api_version,
            )
            task = loop.create_task(self._deliver(shop.domain, topic, target.uri, raw, headers))
            self.pending.add(task)
            task.add_done_callback(self.pending.discard)

    async def flush(self) -> None:
        """Wait until every scheduled delivery, retries included, has finished."""
        while self.pending:
            await asyncio.gather(*list(self.pending))

    async def close(self) -> None:
        for task in list(self.pending):
            task.cancel()
        if self.client is not None:
            await self.client.aclose()

    async def _deliver(self, shop: str, topic: str, uri: str, body: bytes, headers: dict[str, str]) -> None:
        if self.client is None:
            self.client = httpx.AsyncClient(timeout=TIMEOUT, follow_redirects=False)
        for attempt in range(1, self.retries + 2):
            started = time.monotonic()
            status: int | None = None
            error: str | None = None
            try:
                response = await self.client.post(uri, content=body, headers=headers)
                status = response.status_code
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}"
            self.world.deliveries.append(
                DeliveryAttempt(
                    webhook_id=headers["X-Shopify-Webhook-Id"],
                    event_id=headers["X-Shopify-Event-Id"],
                    shop=shop,
                    topic=topic,
                    uri=uri,
                    attempt=attempt,
                    status=status,
                    error=error,
                    duration_ms=round((time.monotonic() - started) * 1000),
                    at=self.world.clock.now(),
                )
            )
            if status is not None and 200 <= status < 300:
                return
            if attempt <= self.retries:
                await asyncio.sleep(self.retry_delay * 2 ** (attempt - 1))
