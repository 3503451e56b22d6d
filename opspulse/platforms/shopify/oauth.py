"""Shopify's OAuth authorization code grant, with expiring offline tokens.

shopify.dev/docs/apps/build/authentication-authorization/access-tokens/authorization-code-grant
and …/offline-access-tokens. The install request and the callback are signed by Shopify
with the app's client secret (hex HMAC-SHA256 over the sorted query); the code is
exchanged for an access token that expires after an hour and a refresh token that
lasts 90 days. Non-expiring offline tokens are refused by Shopify from 2027-01-01, so
OpsPulse never asks for one.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Mapping
from datetime import datetime, timedelta
from urllib.parse import urlencode

import httpx
from django.conf import settings
from pydantic import BaseModel, ValidationError

from opspulse.lib import http as outbound

# shopify.dev: a shop's permanent domain.
SHOP_DOMAIN = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9\-]*\.myshopify\.com$")
# Shopify's own library refuses a signed request whose timestamp is further off.
TIMESTAMP_LEEWAY_SECONDS = 90
HTTP_TIMEOUT = httpx.Timeout(10.0, connect=5.0)
# The whole token request, from connecting to the reply's last byte; a token answer is small.
TOKEN_REQUEST_DEADLINE_SECONDS = 15.0
TOKEN_REPLY_LIMIT_BYTES = 64 * 1024


class OAuthError(Exception):
    """The install could not go on; the message is meant for the merchant."""


class TokenGrant(BaseModel):
    access_token: str
    scope: str
    expires_in: int
    refresh_token: str
    refresh_token_expires_in: int

    def scopes(self) -> set[str]:
        return {scope.strip() for scope in self.scope.split(",") if scope.strip()}

    def access_expires_at(self, now: datetime) -> datetime:
        return now + timedelta(seconds=self.expires_in)

    def refresh_expires_at(self, now: datetime) -> datetime:
        return now + timedelta(seconds=self.refresh_token_expires_in)


def normalize_shop(value: str) -> str | None:
    """Return the shop's myshopify domain from what a merchant typed, or None.

    "harbor-goods", "harbor-goods.myshopify.com" and
    "https://harbor-goods.myshopify.com/admin" all name the same shop.
    """
    shop = value.strip().lower()
    shop = re.sub(r"^https?://", "", shop).split("/", 1)[0]
    if shop and "." not in shop:
        shop += ".myshopify.com"
    return shop if SHOP_DOMAIN.match(shop) else None


def query_signature(params: Mapping[str, str], secret: str) -> str:
    """Shopify's hex HMAC of a query: every parameter but `hmac`/`signature`, sorted."""
    message = "&".join(
        f"{key}={value}" for key, value in sorted(params.items()) if key not in ("hmac", "signature")
    )
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def verify_signed_query(params: Mapping[str, str], *, now: float | None = None) -> str:
    """Check a request Shopify signed (install request or callback); return its shop.

    Raise OAuthError unless the hmac matches under the app's client secret (or the
    previous one during a rotation), the shop is a myshopify domain and the timestamp
    is within 90 s.
    """
    given = params.get("hmac", "")
    secrets = [s for s in (settings.SHOPIFY_CLIENT_SECRET, settings.SHOPIFY_PREVIOUS_CLIENT_SECRET) if s]
    if not given or not any(hmac.compare_digest(query_signature(params, s), given) for s in secrets):
        raise OAuthError("The request was not signed by Shopify.")
    shop = params.get("shop", "")
    if not SHOP_DOMAIN.match(shop):
        raise OAuthError("The shop address is not a myshopify.com domain.")
    try:
        timestamp = int(params.get("timestamp", ""))
    except ValueError:
        raise OAuthError("The request has no valid timestamp.") from None
    if abs((now if now is not None else time.time()) - timestamp) > TIMESTAMP_LEEWAY_SECONDS:
        raise OAuthError("The request from Shopify is too old; start the installation again.")
    return shop


def shop_url(shop: str, path: str) -> str:
    return settings.SHOPIFY_SHOP_URL_TEMPLATE.format(shop=shop) + path


def authorize_url(shop: str, *, state: str, redirect_uri: str) -> str:
    """Where to send the merchant to approve OpsPulse (an offline token: no per-user grant)."""
    query = urlencode(
        {
            "client_id": settings.SHOPIFY_CLIENT_ID,
            "scope": ",".join(settings.SHOPIFY_SCOPES),
            "redirect_uri": redirect_uri,
            "state": state,
        }
    )
    return shop_url(shop, f"/admin/oauth/authorize?{query}")


def exchange_code(shop: str, code: str) -> TokenGrant:
    """Trade the callback's code for an expiring offline access token and its refresh token."""
    return _token_request(
        shop,
        {
            "client_id": settings.SHOPIFY_CLIENT_ID,
            "client_secret": settings.SHOPIFY_CLIENT_SECRET,
            "code": code,
            "expiring": "1",
        },
    )


def refresh_tokens(shop: str, refresh_token: str) -> TokenGrant:
    """A new access token and refresh token for the shop; the caller stores both."""
    return _token_request(
        shop,
        {
            "client_id": settings.SHOPIFY_CLIENT_ID,
            "client_secret": settings.SHOPIFY_CLIENT_SECRET,
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
        },
    )


class TokenRequestRefused(OAuthError):
    """Shopify refused the grant for good (invalid_grant, 401): a used code, a revoked token."""


class TokenServiceBusy(OAuthError):
    """Shopify did not answer the token request, failed (5xx) or asked to wait (429)."""

    def __init__(self, message: str, *, retry_after: str | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def _token_request(shop: str, payload: dict[str, str]) -> TokenGrant:
    try:
        with outbound.client(guarded=False, timeout=HTTP_TIMEOUT) as http:
            response = outbound.send(
                http, "POST", shop_url(shop, "/admin/oauth/access_token"), json=payload,
                deadline=TOKEN_REQUEST_DEADLINE_SECONDS, limit=TOKEN_REPLY_LIMIT_BYTES,
            )
    except httpx.HTTPError as exc:
        raise TokenServiceBusy(f"Shopify could not be reached ({exc.__class__.__name__}); try again.") from exc
    if response.status_code == 429 or response.status_code >= 500:
        raise TokenServiceBusy(
            f"Shopify answered {response.status_code}; try again in a moment.",
            retry_after=response.headers.get("Retry-After"),
        )
    if response.status_code == 401 or (response.status_code == 400 and _oauth_error(response) == "invalid_grant"):
        raise TokenRequestRefused(f"Shopify refused the token request ({response.status_code}).")
    if response.status_code != 200:
        raise OAuthError(f"Shopify could not issue a token ({response.status_code}); try again.")
    try:
        return TokenGrant.model_validate_json(response.content)
    except ValidationError as exc:
        raise OAuthError("Shopify's answer had no expiring offline token.") from exc


def _oauth_error(response: outbound.Reply) -> str:
    """The `error` code of an OAuth error answer (RFC 6749 §5.2), or ""."""
    try:
        body = response.json()
    except ValueError:
        return ""
    return str(body.get("error", "")) if isinstance(body, dict) else ""
