"""The GraphQL Admin API client: the one way OpsPulse talks to a shop.

- At most 2 calls per store start in any second, across every web and worker process:
  each call first reserves a start time in PostgreSQL (`ApiCallSlot`),
  `SHOPIFY_CALL_SPACING_SECONDS` (settings) after the previous one.
- The access token expires after an hour; it is refreshed a few minutes before, under
  a row lock on the integration, so one process refreshes and the others use its pair.
- Network errors and 5xx answers are retried with backoff and jitter; a THROTTLED
  answer waits until the shop's cost bucket has restored enough for the query
  (`extensions.cost.throttleStatus`), instead of failing.
- A token refresh that Shopify answers with 429 or 5xx (or not at all) is retried the
  same way; only a refused grant (invalid_grant, 401) asks for a reconnection.
- A 401 means Shopify no longer accepts the token (uninstalled, revoked): the
  integration is marked `error` with a message the merchant sees, and no call is made
  with it again until it is reconnected.

shopify.dev/docs/api/usage/limits; …/graphql-admin/rate-limits.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from opspulse.lib import http as outbound
from opspulse.platforms.shopify import oauth
from opspulse.stores.models import Integration, IntegrationStatus

logger = logging.getLogger("opspulse.shopify")

REFRESH_MARGIN = timedelta(minutes=5)
NETWORK_ATTEMPTS = 4
THROTTLED_ATTEMPTS = 10
HTTP_TIMEOUT = httpx.Timeout(30.0, connect=5.0)
# One call, from connecting to the last byte of its answer, and the most of it read.
CALL_DEADLINE_SECONDS = 60.0
REPLY_LIMIT_BYTES = 32 * 1024 * 1024
RECONNECT_MESSAGE = "Shopify no longer accepts OpsPulse's access to this store. Reconnect it to resume syncing."

RESERVE_SLOT = """
    INSERT INTO stores_apicallslot AS slot (store_id, next_at)
    VALUES (%(store)s, clock_timestamp() + %(spacing)s * interval '1 second')
    ON CONFLICT (store_id) DO UPDATE
        SET next_at = greatest(slot.next_at, clock_timestamp()) + %(spacing)s * interval '1 second'
    RETURNING extract(epoch FROM slot.next_at - clock_timestamp()) - %(spacing)s
"""


class ShopifyError(Exception):
    """A call to Shopify failed after its retries."""


class AccessRevoked(ShopifyError):
    """Shopify refuses the store's token; the merchant must reconnect the store."""


class IntegrationUnavailable(ShopifyError):
    """The integration is uninstalled or in error: nothing is sent with its token."""


@dataclass(frozen=True)
class Result:
    data: dict[str, Any]
    cost: dict[str, Any]


def wait_for_call_slot(store_id: int, *, spacing: float | None = None) -> float:
    """Reserve the store's next API call start and sleep until it; return the wait.

    Starts are `SHOPIFY_CALL_SPACING_SECONDS` apart unless `spacing` says otherwise.
    One short statement in its own transaction: the slot row is locked only while
    PostgreSQL runs it, and its clock is the one every process shares.
    """
    if connection.in_atomic_block:
        raise RuntimeError("reserve API call slots outside transactions, or the slot row stays locked")
    with connection.cursor() as cursor:
        if spacing is None:
            spacing = settings.SHOPIFY_CALL_SPACING_SECONDS
        cursor.execute(RESERVE_SLOT, {"store": store_id, "spacing": spacing})
        wait = max(0.0, float(cursor.fetchone()[0]))
    if wait:
        time.sleep(wait)
    return wait


def fresh_access_token(integration: Integration) -> str:
    """The store's access token, refreshed first if it expires within five minutes."""
    if _usable(integration):
        return integration.access_token
    try:
        with transaction.atomic():
            # One refresh per shop at a time: the others wait here, then use the new pair.
            locked = Integration.objects.select_for_update().select_related("store").get(pk=integration.pk)
            if locked.status != IntegrationStatus.ACTIVE:
                raise IntegrationUnavailable(locked.last_error or "The store's integration is not active.")
            if not _usable(locked):
                store_grant(locked, _refresh(locked))
                logger.info("shopify: refreshed the access token of store %s", locked.store_id)
    except AccessRevoked:
        # After the rollback, or the mark would be undone with it.
        _mark_revoked(integration)
        raise
    integration.refresh_from_db()
    return integration.access_token


def _refresh(integration: Integration) -> oauth.TokenGrant:
    """A new token pair; Shopify failing or asking to wait (5xx, 429) is tried again with
    backoff, and only a refused grant (invalid_grant, 401) asks the merchant to reconnect."""
    attempt = 0
    while True:
        try:
            return oauth.refresh_tokens(integration.store.domain, integration.refresh_token)
        except oauth.TokenRequestRefused as exc:
            raise AccessRevoked(RECONNECT_MESSAGE) from exc
        except oauth.TokenServiceBusy as exc:
            attempt += 1
            if attempt >= NETWORK_ATTEMPTS:
                raise ShopifyError(str(exc)) from exc
            logger.warning("shopify: refreshing the token of store %s: %s", integration.store_id, exc)
            _backoff(attempt, retry_after=exc.retry_after)
        except oauth.OAuthError as exc:
            raise ShopifyError(str(exc)) from exc


def store_grant(integration: Integration, grant: oauth.TokenGrant) -> None:
    """Keep a token pair (both encrypted), with its expiries, in one save."""
    now = timezone.now()
    integration.access_token = grant.access_token
    integration.refresh_token = grant.refresh_token
    integration.access_token_expires_at = grant.access_expires_at(now)
    integration.refresh_token_expires_at = grant.refresh_expires_at(now)
    integration.granted_scopes = ",".join(sorted(grant.scopes()))
    integration.save(
        update_fields=[
            "access_token_encrypted", "refresh_token_encrypted", "access_token_expires_at",
            "refresh_token_expires_at", "granted_scopes", "updated_at",
        ]
    )


def _usable(integration: Integration) -> bool:
    expires_at = integration.access_token_expires_at
    return bool(integration.access_token_encrypted) and expires_at is not None and (
        expires_at - timezone.now() > REFRESH_MARGIN
    )


def _mark_revoked(integration: Integration) -> None:
    Integration.objects.filter(pk=integration.pk).update(
        status=IntegrationStatus.ERROR, last_error=RECONNECT_MESSAGE, updated_at=timezone.now()
    )


class ShopifyClient:
    """GraphQL Admin API calls for one store's integration."""

    def __init__(self, integration: Integration, *, http: httpx.Client | None = None) -> None:
        self.integration = integration
        self.http = http or outbound.client(guarded=False, timeout=HTTP_TIMEOUT)

    @property
    def endpoint(self) -> str:
        return oauth.shop_url(
            self.integration.store.domain, f"/admin/api/{settings.SHOPIFY_API_VERSION}/graphql.json"
        )

    def query(self, document: str, variables: dict[str, Any] | None = None) -> Result:
        """Run a query or mutation; return its data and cost, or raise ShopifyError."""
        if self.integration.status != IntegrationStatus.ACTIVE:
            raise IntegrationUnavailable(self.integration.last_error or "The store's integration is not active.")
        network_failures = throttled = 0
        while True:
            token = fresh_access_token(self.integration)
            wait_for_call_slot(self.integration.store_id)
            try:
                response = outbound.send(
                    self.http, "POST", self.endpoint,
                    json={"query": document, "variables": variables or {}},
                    headers={"X-Shopify-Access-Token": token},
                    deadline=CALL_DEADLINE_SECONDS, limit=REPLY_LIMIT_BYTES,
                )
            except httpx.HTTPError as exc:
                network_failures += 1
                if network_failures >= NETWORK_ATTEMPTS:
                    raise ShopifyError(f"Shopify could not be reached: {exc.__class__.__name__}") from exc
                _backoff(network_failures)
                continue
            if response.status_code == 401:
                _mark_revoked(self.integration)
                self.integration.refresh_from_db()
                raise AccessRevoked(RECONNECT_MESSAGE)
            if response.status_code >= 500 or response.status_code == 429:
                network_failures += 1
                if network_failures >= NETWORK_ATTEMPTS:
                    raise ShopifyError(f"Shopify answered {response.status_code}")
                _backoff(network_failures, retry_after=response.headers.get("Retry-After"))
                continue
            if response.status_code != 200:
                raise ShopifyError(f"Shopify answered {response.status_code}: {response.text[:200]}")
            body = response.json()
            cost = (body.get("extensions") or {}).get("cost") or {}
            errors = body.get("errors") or []
            if any((error.get("extensions") or {}).get("code") == "THROTTLED" for error in errors):
                throttled += 1
                if throttled >= THROTTLED_ATTEMPTS:
                    raise ShopifyError("Shopify kept throttling the store's API calls")
                time.sleep(_restore_wait(cost))
                continue
            if errors:
                raise ShopifyError("; ".join(str(error.get("message", error)) for error in errors)[:500])
            return Result(data=body.get("data") or {}, cost=cost)


def _restore_wait(cost: dict[str, Any]) -> float:
    """Seconds until the shop's bucket holds the query's requested cost again (about 1 s if unknown)."""
    status = cost.get("throttleStatus") or {}
    try:
        needed = float(cost.get("requestedQueryCost", 0)) - float(status["currentlyAvailable"])
        return max(0.2, needed / float(status["restoreRate"]) + 0.05)
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        return 1.0


def _backoff(attempt: int, *, retry_after: str | None = None) -> None:
    if retry_after:
        try:
            time.sleep(min(30.0, float(retry_after)))
            return
        except ValueError:
            pass
    time.sleep(random.uniform(0, min(8.0, 0.5 * 2**attempt)))
