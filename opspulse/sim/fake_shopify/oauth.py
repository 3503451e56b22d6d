"""OAuth authorization code grant, as a standalone Shopify app sees it (PROTOCOLS.md §2).

GET authorize shows the merchant an "Install app" page; its form POSTs back here and
the merchant is redirected to the app's redirect_uri with a signed code. POST
access_token exchanges the code, or a refresh token, for tokens. Only expiring offline
tokens are issued: a request without expiring=1 is refused.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from html import escape
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from opspulse.sim.fake_shopify.services import request_params, services
from opspulse.sim.fake_shopify.state import AccessToken, FakeShopify, RefreshToken, Shop

SCOPE = re.compile(r"^(unauthenticated_)?(read|write)_[a-z_]+$")


def sign_query(params: dict[str, str], secret: str) -> str:
    """Return the callback's hmac: hex HMAC-SHA256 of the sorted `k=v&…` string."""
    message = "&".join(f"{key}={params[key]}" for key in sorted(params))
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def host_param(shop: str) -> str:
    """Return the `host` parameter: base64 of "<shop>/admin", unpadded as Shopify sends it."""
    return base64.b64encode(f"{shop}/admin".encode()).decode().rstrip("=")


async def authorize(request: Request) -> Response:
    """Show the install page (GET) or approve the install and redirect (POST)."""
    world = services(request).world
    shop = world.shops.get(request.path_params["shop"])
    if shop is None:
        return _page("There’s no page at this address", "Check the URL and try again.", 404)
    params = await request_params(request)
    problem = _request_problem(world, params)
    if problem:
        return _page("Oauth error", problem, 400)
    scopes = _scopes(params)
    online = params.get("grant_options[]") == "per-user"
    if request.method == "GET":
        return _install_page(request, shop, params, scopes)
    code = world.issue_code(shop, requested=scopes, online=online)
    callback = {
        "code": code.code,
        "host": host_param(shop.domain),
        "shop": shop.domain,
        "state": params.get("state", ""),
        "timestamp": str(int(world.clock.now().timestamp())),
    }
    callback["hmac"] = sign_query(callback, world.app.client_secret)
    redirect_uri = params["redirect_uri"]
    separator = "&" if "?" in redirect_uri else "?"
    return RedirectResponse(f"{redirect_uri}{separator}{urlencode(callback)}", status_code=302)


def _request_problem(world: FakeShopify, params: dict[str, Any]) -> str | None:
    if params.get("client_id") != world.app.client_id:
        return "invalid_request: The client_id is not valid"
    redirect_uri = params.get("redirect_uri") or ""
    if not redirect_uri.startswith(world.app.redirect_prefix):
        return "invalid_request: The redirect_uri is not whitelisted"
    scopes = _scopes(params)
    bad = [scope for scope in scopes if not SCOPE.match(scope)]
    if not scopes or bad:
        return f"invalid_scope: The access scope is invalid: {', '.join(bad) or '(none)'}"
    return None


def _scopes(params: dict[str, Any]) -> list[str]:
    return [scope.strip() for scope in str(params.get("scope", "")).split(",") if scope.strip()]


def _install_page(request: Request, shop: Shop, params: dict[str, Any], scopes: list[str]) -> Response:
    hidden = "".join(
        f'<input type="hidden" name="{escape(key)}" value="{escape(str(value))}">'
        for key, value in params.items()
        if key in ("client_id", "scope", "redirect_uri", "state", "grant_options[]")
    )
    items = "".join(f"<li>{escape(scope)}</li>" for scope in scopes)
    body = (
        f"<h1>Install app</h1><p>{escape(shop.name)} ({escape(shop.domain)})</p>"
        f"<p>This app will be able to:</p><ul>{items}</ul>"
        f'<form method="post" action="{escape(request.url.path)}">{hidden}'
        '<button type="submit">Install</button></form>'
    )
    return HTMLResponse(_html("Install app", body))


def _page(title: str, message: str, status: int) -> Response:
    return HTMLResponse(_html(title, f"<h1>{escape(title)}</h1><p>{escape(message)}</p>"), status)


def _html(title: str, body: str) -> str:
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}'
        f" · Shopify</title></head><body>{body}</body></html>"
    )


async def access_token(request: Request) -> Response:
    """Exchange an authorization code or a refresh token for an access token."""
    world = services(request).world
    shop = world.shops.get(request.path_params["shop"])
    if shop is None:
        return JSONResponse({"errors": "Not Found"}, 404)
    params = await request_params(request)
    if params.get("client_id") != world.app.client_id or not hmac.compare_digest(
        str(params.get("client_secret", "")), world.app.client_secret
    ):
        return _oauth_error("invalid_client", "Client authentication failed: invalid client_id or client_secret.", 401)
    if params.get("grant_type") == "refresh_token" and shop.refresh_failures > 0:
        shop.refresh_failures -= 1
        headers = {}
        if shop.refresh_failure_retry_after is not None:
            headers["Retry-After"] = str(shop.refresh_failure_retry_after)
        return JSONResponse({"errors": "Try again later"}, shop.refresh_failure_status, headers=headers)
    if params.get("grant_type") == "refresh_token":
        pair = world.refresh(shop, str(params.get("refresh_token", "")))
        if pair is None:
            return _oauth_error("invalid_grant", "The refresh token is invalid, expired or revoked.")
        return JSONResponse(_offline_body(world, *pair))
    code_value = str(params.get("code", ""))
    if not code_value:
        return _oauth_error("invalid_request", "Missing required parameter: code.")
    pending = world.codes.get(code_value)
    if (pending is None or not pending.online) and str(params.get("expiring", "")) != "1":
        return _oauth_error(
            "invalid_request",
            "Non-expiring offline access tokens are no longer issued. "
            "Request an expiring token with expiring=1.",
        )
    code = world.redeem_code(shop, code_value)
    if code is None:
        return _oauth_error("invalid_request", "The authorization code was not found or was already used")
    if code.online:
        return JSONResponse(_online_body(world, world.issue_online_token(shop, code.scopes), shop))
    return JSONResponse(_offline_body(world, *world.issue_offline_pair(shop, code.scopes)))


def _oauth_error(error: str, description: str, status: int = 400) -> Response:
    return JSONResponse({"error": error, "error_description": description}, status)


def _offline_body(world: FakeShopify, access: AccessToken, refresh: RefreshToken) -> dict[str, Any]:
    return {
        "access_token": access.token,
        "scope": ",".join(access.scopes),
        "expires_in": world.app.access_token_lifetime,
        "refresh_token": refresh.token,
        "refresh_token_expires_in": world.app.refresh_token_lifetime,
    }


def _online_body(world: FakeShopify, access: AccessToken, shop: Shop) -> dict[str, Any]:
    return {
        "access_token": access.token,
        "scope": ",".join(access.scopes),
        "expires_in": round(access.expires_at - world.clock.monotonic()),
        "associated_user_scope": ",".join(access.scopes),
        "associated_user": {
            "id": 902541635,
            "first_name": shop.name.split()[0],
            "last_name": "Owner",
            "email": shop.email,
            "email_verified": True,
            "account_owner": True,
            "locale": "en",
            "collaborator": False,
        },
    }
