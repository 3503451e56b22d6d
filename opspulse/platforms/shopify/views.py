"""Connecting a Shopify store: the app's install request, the "Add Shopify store"
button, and the OAuth callback (see oauth.py for the protocol)."""

from __future__ import annotations

import hmac
import json
import secrets

from django.conf import settings
from django.db import transaction
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from opspulse.accounts.models import Role
from opspulse.accounts.selectors import get_current_account
from opspulse.platforms.shopify import backfill, oauth
from opspulse.platforms.shopify.client import ShopifyClient, ShopifyError
from opspulse.platforms.shopify.subscriptions import ensure_subscriptions
from opspulse.platforms.shopify.actions import (
    ShopDetails,
    StoreConnectedElsewhere,
    connect_shopify_store,
    update_store_details,
)
from opspulse.platforms.shopify.tasks import defer_backfill

# The nonce, the shop and the account of an install in progress, in a signed HttpOnly
# cookie bound to this browser: the callback must come back to the same one.
STATE_COOKIE = "opspulse_shopify_oauth"
STATE_COOKIE_SALT = "opspulse.shopify.oauth-state"
STATE_MAX_AGE = 600
# A verified install request from Shopify waits here while the merchant signs in.
PENDING_SHOP_SESSION_KEY = "opspulse_shopify_pending_shop"

SHOP_QUERY = "query ShopDetails { shop { id name currencyCode ianaTimezone myshopifyDomain } }"


@require_GET
@never_cache
def install(request: HttpRequest) -> HttpResponse:
    """Shopify's install request (the app URL): verify it, then start OAuth."""
    try:
        shop = oauth.verify_signed_query(request.GET.dict())
    except oauth.OAuthError as exc:
        return _problem(request, str(exc), status=400)
    if not request.user.is_authenticated:
        request.session[PENDING_SHOP_SESSION_KEY] = shop
        return redirect(f"{reverse('account_signup')}?next={reverse('shopify-install-resume')}")
    return _start(request, shop)


@login_required
@never_cache
def resume_install(request: HttpRequest) -> HttpResponse:
    """After signing in or up: go on with the install request Shopify made earlier."""
    shop = request.session.pop(PENDING_SHOP_SESSION_KEY, None)
    if not shop:
        return redirect("home")
    return _start(request, shop)


@require_POST
@login_required
def connect(request: HttpRequest) -> HttpResponse:
    """The "Add Shopify store" button: the merchant names their shop."""
    shop = oauth.normalize_shop(request.POST.get("shop", ""))
    if shop is None:
        messages.error(request, "Enter your shop's address, like harbor-goods.myshopify.com.")
        return redirect("home")
    return _start(request, shop)


def _start(request: HttpRequest, shop: str) -> HttpResponse:
    if not settings.SHOPIFY_CLIENT_ID or not settings.SHOPIFY_CLIENT_SECRET:
        return _problem(request, "The Shopify app is not configured on this OpsPulse (SHOPIFY_CLIENT_ID).", status=503)
    account = get_current_account(request, at_least=Role.ADMIN)
    state = secrets.token_urlsafe(32)
    response = redirect(oauth.authorize_url(shop, state=state, redirect_uri=_redirect_uri()))
    response.set_signed_cookie(
        STATE_COOKIE,
        json.dumps({"state": state, "shop": shop, "account": str(account.public_id)}),
        salt=STATE_COOKIE_SALT,
        max_age=STATE_MAX_AGE,
        httponly=True,
        samesite="Lax",
        secure=request.is_secure(),
    )
    return response


@require_GET
@login_required
@never_cache
def callback(request: HttpRequest) -> HttpResponse:
    """Shopify sends the merchant back here with a code: check everything, then connect."""
    params = request.GET.dict()
    try:
        pending = json.loads(request.get_signed_cookie(STATE_COOKIE, salt=STATE_COOKIE_SALT, max_age=STATE_MAX_AGE))
    except (KeyError, ValueError):
        return _problem(request, "This installation was not started from this browser, or took too long.", status=400)
    if not hmac.compare_digest(str(pending.get("state", "")), params.get("state", "")):
        return _problem(request, "This installation was not started from this browser.", status=400)
    try:
        shop = oauth.verify_signed_query(params)
    except oauth.OAuthError as exc:
        return _problem(request, str(exc), status=400)
    if shop != pending.get("shop"):
        return _problem(request, "Shopify answered for another shop than the one being installed.", status=400)
    account = get_current_account(request, at_least=Role.ADMIN)
    if str(account.public_id) != pending.get("account"):
        return _problem(request, "The account changed during the installation; start it again.", status=400)

    try:
        grant = oauth.exchange_code(shop, params.get("code", ""))
    except oauth.OAuthError as exc:
        return _problem(request, str(exc), status=502)
    missing = missing_scopes(grant.scopes())
    if missing:
        return _problem(
            request,
            f"OpsPulse needs access to {', '.join(missing)} to show the store's orders and stock. "
            "Install it again and approve every permission it asks for.",
            status=400,
        )
    try:
        store = connect_shopify_store(
            account=account, shop_domain=shop, grant=grant, actor=request.user, request=request
        )
    except StoreConnectedElsewhere:
        return _problem(request, f"{shop} is already connected to another OpsPulse account.", status=409)
    client = ShopifyClient(store.integration)
    try:
        update_store_details(store=store, details=read_shop_details(client))
        ensure_subscriptions(client)
    except ShopifyError as exc:
        messages.warning(request, f"{shop} is connected, but setting it up is not finished ({exc}).")
    else:
        messages.success(
            request,
            f"{store.name} is connected. New orders show up here as they are placed; "
            f"the last {backfill.HISTORY_DAYS} days are being imported.",
        )
    with transaction.atomic():
        backfill.start(store)
        transaction.on_commit(lambda: defer_backfill(store.pk))
    response = redirect("dashboard", store.public_id)
    response.delete_cookie(STATE_COOKIE)
    return response


def missing_scopes(granted: set[str]) -> list[str]:
    """The scopes OpsPulse asked for that Shopify did not grant (write_x covers read_x)."""
    return [
        scope for scope in settings.SHOPIFY_SCOPES
        if scope not in granted and scope.replace("read_", "write_", 1) not in granted
    ]


def read_shop_details(client: ShopifyClient) -> ShopDetails:
    shop = client.query(SHOP_QUERY).data["shop"]
    return ShopDetails(
        external_id=str(shop["id"]).rsplit("/", 1)[-1],
        name=shop.get("name") or "",
        currency=shop.get("currencyCode") or "",
        timezone=shop.get("ianaTimezone") or "",
    )


def _redirect_uri() -> str:
    return settings.PUBLIC_URL + reverse("shopify-callback")


def _problem(request: HttpRequest, message: str, *, status: int) -> HttpResponse:
    return render(request, "shopify/connect_problem.html", {"message": message}, status=status)
