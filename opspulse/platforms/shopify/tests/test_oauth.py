"""Checks on what Shopify signs, before any token is asked for."""

from __future__ import annotations

import time

import pytest

from opspulse.platforms.shopify import oauth
from opspulse.platforms.shopify.views import missing_scopes

SECRET = "shpss_app_client_secret"


@pytest.fixture(autouse=True)
def app_credentials(settings):
    settings.SHOPIFY_CLIENT_ID = "opspulse-client-id"
    settings.SHOPIFY_CLIENT_SECRET = SECRET
    settings.SHOPIFY_PREVIOUS_CLIENT_SECRET = ""


def signed(params: dict[str, str], secret: str = SECRET) -> dict[str, str]:
    return {**params, "hmac": oauth.query_signature(params, secret)}


def install_request(**overrides: str) -> dict[str, str]:
    params = {"shop": "harbor-goods.myshopify.com", "timestamp": str(int(time.time())), "host": "aGFyYm9yLWdvb2Rz"}
    params.update(overrides)
    return params


def test_a_request_signed_with_the_client_secret_is_accepted():
    assert oauth.verify_signed_query(signed(install_request())) == "harbor-goods.myshopify.com"


def test_the_signature_covers_every_parameter_sorted_and_leaves_out_hmac_and_signature():
    params = install_request(code="abc", state="xyz", signature="ignored")

    expected = oauth.query_signature({k: v for k, v in params.items() if k != "signature"}, SECRET)

    assert oauth.query_signature(params, SECRET) == expected
    assert len(expected) == 64  # hex, unlike webhooks' base64


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda p: {**p, "shop": "other-shop.myshopify.com"}, id="changed_shop_case"),
        pytest.param(lambda p: {**p, "hmac": p["hmac"][:-1] + ("0" if p["hmac"][-1] != "0" else "1")}, id="changed_hmac_case"),
        pytest.param(lambda p: {k: v for k, v in p.items() if k != "hmac"}, id="missing_hmac_case"),
    ],
)
def test_a_tampered_request_is_refused(tamper):
    with pytest.raises(oauth.OAuthError, match="not signed by Shopify"):
        oauth.verify_signed_query(tamper(signed(install_request())))


def test_a_request_signed_with_another_secret_is_refused():
    with pytest.raises(oauth.OAuthError):
        oauth.verify_signed_query(signed(install_request(), secret="someone-elses-secret"))


def test_the_previous_client_secret_is_accepted_during_a_rotation(settings):
    settings.SHOPIFY_PREVIOUS_CLIENT_SECRET = "shpss_old_secret"

    assert oauth.verify_signed_query(signed(install_request(), secret="shpss_old_secret"))


@pytest.mark.parametrize("shop", ["evil.example.com", "-leading.myshopify.com", "harbor.myshopify.com.evil.com", ""])
def test_a_shop_outside_myshopify_com_is_refused_even_when_signed(shop):
    with pytest.raises(oauth.OAuthError, match="myshopify"):
        oauth.verify_signed_query(signed(install_request(shop=shop)))


def test_a_stale_request_is_refused():
    old = install_request(timestamp=str(int(time.time()) - 91))

    with pytest.raises(oauth.OAuthError, match="too old"):
        oauth.verify_signed_query(signed(old))


@pytest.mark.parametrize(
    ("typed", "shop"),
    [
        ("harbor-goods", "harbor-goods.myshopify.com"),
        ("Harbor-Goods.myshopify.com", "harbor-goods.myshopify.com"),
        ("https://harbor-goods.myshopify.com/admin/orders", "harbor-goods.myshopify.com"),
        ("harbor goods", None),
        ("harbor-goods.example.com", None),
    ],
)
def test_what_a_merchant_types_is_turned_into_the_shop_domain(typed, shop):
    assert oauth.normalize_shop(typed) == shop


def test_the_authorize_url_asks_for_an_offline_token_with_only_the_needed_scopes(settings):
    settings.SHOPIFY_SHOP_URL_TEMPLATE = "https://{shop}"

    url = oauth.authorize_url("harbor-goods.myshopify.com", state="n0nce", redirect_uri="https://app.example/cb/")

    assert url.startswith("https://harbor-goods.myshopify.com/admin/oauth/authorize?")
    assert "client_id=opspulse-client-id" in url
    assert "scope=read_orders%2Cread_products%2Cread_inventory" in url
    assert "state=n0nce" in url
    assert "grant_options" not in url  # per-user would make it an online token


def test_granted_scopes_are_checked_and_write_covers_read():
    assert missing_scopes({"read_orders", "read_products", "read_inventory"}) == []
    assert missing_scopes({"write_orders", "read_products", "read_inventory"}) == []
    assert missing_scopes({"read_orders", "read_products"}) == ["read_inventory"]
