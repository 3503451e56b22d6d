"""Connecting a Shopify store by OAuth, against the fake Shopify, and what follows."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta

import httpx
import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from opspulse.accounts.models import AuditEvent, AuditKind, Role
from opspulse.platforms.shopify.client import AccessRevoked, ShopifyClient, ShopifyError, fresh_access_token
from opspulse.platforms.shopify.subscriptions import TOPICS
from opspulse.stores.models import Integration, IntegrationStatus, Platform, Store
from tests.factories import MembershipFactory, StoreFactory, UserFactory
from tests.support.processes import ROOT, process_env
from tests.support.shopify import create_shop, fake_get, install
from tests.support.stores import SHOPIFY_APP_CLIENT_ID, SHOPIFY_APP_CLIENT_SECRET

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def owner():
    return MembershipFactory(user=UserFactory(email="owner@example.com"), role=Role.OWNER).user


@pytest.fixture
def owner_client(owner):
    client = Client()
    client.force_login(owner)
    return client


@pytest.fixture
def shop(shopify_app, request):
    domain = f"harbor-goods-{request.node.name[-40:].replace('_', '-').strip('-')}.myshopify.com"[-60:]
    domain = domain.lstrip("-.")
    create_shop(shopify_app, domain, orders=5)
    return domain


def test_connecting_a_shop_saves_it_with_encrypted_expiring_tokens_and_subscribes_to_webhooks(
    shopify_app, shop, owner, owner_client
):
    response = install(owner_client, shop)

    store = Store.objects.get(platform=Platform.SHOPIFY, domain=shop)
    assert response.status_code == 302
    assert response.url == reverse("dashboard", args=[store.public_id])
    assert (store.name, store.currency, store.timezone) == ("Harbor Goods", "EUR", "Europe/Paris")
    assert store.account == owner.accounts.get()
    assert store.external_id.isdigit()
    integration = store.integration
    assert integration.app_installed and integration.status == IntegrationStatus.ACTIVE
    assert integration.access_token.startswith("shpat_") and integration.refresh_token
    assert integration.access_token not in integration.access_token_encrypted  # encrypted at rest
    assert integration.access_token_expires_at > timezone.now() + timedelta(minutes=55)
    assert integration.granted_scopes == "read_inventory,read_orders,read_products"
    subscriptions = fake_get(shopify_app, f"/shops/{shop}")["subscriptions"]
    assert sorted(s["topic"] for s in subscriptions) == sorted(TOPICS)
    assert {s["uri"] for s in subscriptions} == {"http://127.0.0.1:9/webhooks/shopify"}


def test_reinstalling_keeps_the_store_and_adds_no_second_subscription(shopify_app, shop, owner_client):
    install(owner_client, shop)
    install(owner_client, shop)

    assert Store.objects.filter(domain=shop).count() == 1
    assert len(fake_get(shopify_app, f"/shops/{shop}")["subscriptions"]) == len(TOPICS)


def test_connecting_and_reconnecting_a_shop_are_audited_without_its_tokens(shopify_app, shop, owner, owner_client):
    """A store's data flowing into an account is a security event its owners can see."""
    install(owner_client, shop)
    install(owner_client, shop)

    store = Store.objects.get(domain=shop)
    events = list(AuditEvent.objects.filter(kind=AuditKind.STORE_CONNECTED).order_by("pk"))
    assert [(event.user, event.account) for event in events] == [(owner, store.account)] * 2
    assert events[0].details == {
        "store": shop, "store_id": str(store.public_id), "platform": "shopify", "domain": shop, "reason": "",
    }
    assert events[1].details["reason"] == "(reconnected)"
    assert store.integration.access_token not in str([event.details for event in events])


def test_a_callback_whose_state_was_changed_is_refused(shopify_app, shop, owner_client):
    def tamper(url: httpx.URL) -> httpx.URL:
        return url.copy_set_param("state", "forged-state")

    response = install(owner_client, shop, approve=tamper)

    assert response.status_code == 400
    assert not Store.objects.filter(domain=shop).exists()


def test_a_callback_in_a_browser_that_did_not_start_the_install_is_refused(shopify_app, shop, owner, owner_client):
    started = owner_client.post(reverse("shopify-connect"), {"shop": shop})
    callback = httpx.URL(httpx.post(started.url, timeout=10).headers["location"])
    other_browser = Client()
    other_browser.force_login(owner)

    response = other_browser.get(f"{callback.path}?{callback.query.decode()}")

    assert response.status_code == 400
    assert b"not started from this browser" in response.content
    assert not Store.objects.filter(domain=shop).exists()


def test_a_callback_whose_signature_does_not_match_is_refused(shopify_app, shop, owner_client):
    response = install(owner_client, shop, approve=lambda url: url.copy_set_param("code", "another-code"))

    assert response.status_code == 400
    assert b"not signed by Shopify" in response.content


def test_an_install_that_did_not_grant_every_scope_is_refused(shopify_app, shop, owner_client):
    httpx.post(f"{shopify_app.url}/_fake/shops/{shop}/grant", json={"scopes": ["read_orders"]}, timeout=10)

    response = install(owner_client, shop)

    assert response.status_code == 400
    assert b"read_products" in response.content and b"read_inventory" in response.content
    assert not Store.objects.filter(domain=shop).exists()


def test_a_member_cannot_connect_a_store(shopify_app, shop, owner):
    member = MembershipFactory(account=owner.accounts.get(), role=Role.MEMBER).user
    client = Client()
    client.force_login(member)

    response = client.post(reverse("shopify-connect"), {"shop": shop})

    assert response.status_code == 403


def test_a_shop_connected_to_another_account_is_refused(shopify_app, shop, owner_client):
    StoreFactory(platform=Platform.SHOPIFY, domain=shop)

    response = install(owner_client, shop)

    assert response.status_code == 409
    assert Store.objects.filter(domain=shop).count() == 1


def test_two_processes_needing_a_new_token_refresh_it_once(shopify_app, shop, owner_client):
    install(owner_client, shop)
    integration = Integration.objects.get(store__domain=shop)
    first_token = integration.access_token
    Integration.objects.filter(pk=integration.pk).update(access_token_expires_at=timezone.now() + timedelta(minutes=1))
    script = (
        "import django, sys; django.setup();"
        "from opspulse.stores.models import Integration;"
        "from opspulse.platforms.shopify.client import fresh_access_token, ShopifyClient;"
        "integration = Integration.objects.select_related('store').get(pk=int(sys.argv[1]));"
        "token = fresh_access_token(integration);"
        "ShopifyClient(integration).query('query { shop { name } }');"
        "print(token)"
    )
    env = process_env(
        SHOPIFY_CLIENT_ID=SHOPIFY_APP_CLIENT_ID, SHOPIFY_CLIENT_SECRET=SHOPIFY_APP_CLIENT_SECRET,
        SHOPIFY_SHOP_URL_TEMPLATE=f"{shopify_app.url}/shops/{{shop}}",
    )
    processes = [
        subprocess.Popen([sys.executable, "-c", script, str(integration.pk)], cwd=ROOT, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    results = [process.communicate(timeout=60) for process in processes]

    assert [process.returncode for process in processes] == [0, 0], results
    tokens = {output.strip() for output, _ in results}
    integration.refresh_from_db()
    assert tokens == {integration.access_token}
    assert integration.access_token != first_token
    assert integration.access_token_expires_at > timezone.now() + timedelta(minutes=55)


def test_a_shop_that_refuses_the_token_marks_the_store_for_reconnection(shopify_app, shop, owner_client):
    install(owner_client, shop)
    store = Store.objects.get(domain=shop)
    httpx.post(f"{shopify_app.url}/_fake/shops/{shop}/tokens/expire", timeout=10)  # Shopify no longer honours it

    with pytest.raises(AccessRevoked):
        ShopifyClient(Integration.objects.select_related("store").get(store=store)).query("query { shop { name } }")

    integration = Integration.objects.get(store=store)
    assert integration.status == IntegrationStatus.ERROR
    assert "Reconnect" in integration.last_error
    page = owner_client.get(reverse("dashboard", args=[store.public_id])).content.decode()
    assert "data-integration-problem" in page and ">Reconnect</button>" in page
    # Reconnecting installs again and clears the problem.
    from opspulse.platforms.models import SyncHealth

    SyncHealth.objects.create(store=store, last_error=integration.last_error)
    install(owner_client, shop)
    integration.refresh_from_db()
    assert integration.status == IntegrationStatus.ACTIVE and integration.last_error == ""
    assert SyncHealth.objects.get(store=store).last_error == ""


def expiring_soon(shop: str) -> Integration:
    integration = Integration.objects.select_related("store").get(store__domain=shop)
    Integration.objects.filter(pk=integration.pk).update(access_token_expires_at=timezone.now() + timedelta(minutes=1))
    integration.refresh_from_db()
    return integration


def fail_refreshes(fake, shop: str, *, count: int, status: int) -> None:
    body = {"count": count, "status": status, "retry_after": 0.05}
    assert httpx.post(f"{fake.url}/_fake/shops/{shop}/tokens/refresh-failures", json=body, timeout=10).status_code == 200


@pytest.mark.parametrize("status", [429, 503], ids=["rate_limited_case", "unavailable_case"])
def test_a_refresh_answered_busy_is_tried_again_and_the_store_stays_connected(shopify_app, owner_client, status):
    """Shopify answering a token refresh with 429 or 5xx is a passing state, not a revoked grant."""
    shop = f"busy-refresh-{status}.myshopify.com"
    create_shop(shopify_app, shop, orders=0)
    install(owner_client, shop)
    integration = expiring_soon(shop)
    old_token = integration.access_token
    fail_refreshes(shopify_app, shop, count=2, status=status)

    token = fresh_access_token(integration)

    integration.refresh_from_db()
    assert token == integration.access_token != old_token
    assert integration.status == IntegrationStatus.ACTIVE and integration.last_error == ""
    assert ShopifyClient(integration).query("query { shop { name } }").data["shop"]["name"] == "Harbor Goods"


def test_a_refresh_busy_beyond_the_retries_fails_the_call_but_never_asks_for_a_reconnection(
    shopify_app, shop, owner_client
):
    install(owner_client, shop)
    integration = expiring_soon(shop)
    fail_refreshes(shopify_app, shop, count=10, status=429)

    with pytest.raises(ShopifyError) as raised:
        fresh_access_token(integration)

    assert not isinstance(raised.value, AccessRevoked)
    integration.refresh_from_db()
    assert integration.status == IntegrationStatus.ACTIVE and integration.last_error == ""
    # The next call, once Shopify answers again, refreshes as usual.
    fail_refreshes(shopify_app, shop, count=0, status=503)
    assert fresh_access_token(integration) == Integration.objects.get(pk=integration.pk).access_token


def test_a_refresh_refused_as_an_invalid_grant_marks_the_store_for_reconnection(shopify_app, shop, owner_client):
    install(owner_client, shop)
    integration = expiring_soon(shop)
    integration.refresh_token = "shprt_revoked_or_unknown"
    integration.save(update_fields=["refresh_token_encrypted"])

    with pytest.raises(AccessRevoked):
        fresh_access_token(integration)

    integration.refresh_from_db()
    assert integration.status == IntegrationStatus.ERROR
    assert "Reconnect" in integration.last_error


def test_throttled_queries_wait_for_the_shops_bucket_and_succeed(shopify_app, owner_client, settings):
    settings.SHOPIFY_CALL_SPACING_SECONDS = 0.75  # the real spacing: the calls per second are checked
    domain = "busy-bazaar.myshopify.com"
    create_shop(shopify_app, domain, orders=400)
    install(owner_client, domain)
    client = ShopifyClient(Integration.objects.select_related("store").get(store__domain=domain))
    heavy = "query { orders(first: 100) { edges { node { id lineItems(first: 3) { edges { node { sku } } } } } } }"

    results = [client.query(heavy) for _ in range(3)]  # about 1,200 points: more than the bucket holds

    assert all(len(result.data["orders"]["edges"]) == 100 for result in results)
    calls = fake_get(shopify_app, f"/shops/{domain}/calls")
    assert any(call["throttled"] for call in calls["calls"])
    assert calls["max_per_second"] <= 2


def test_fresh_access_token_does_not_refresh_a_token_that_is_still_good(shopify_app, shop, owner_client):
    install(owner_client, shop)
    integration = Integration.objects.get(store__domain=shop)
    before = integration.access_token

    assert fresh_access_token(integration) == before


def signed_install_request(shop: str) -> str:
    import time as clock

    from opspulse.platforms.shopify import oauth

    params = {"shop": shop, "timestamp": str(int(clock.time())), "host": "aGFyYm9yLWdvb2RzL2FkbWlu"}
    params["hmac"] = oauth.query_signature(params, SHOPIFY_APP_CLIENT_SECRET)
    return reverse("shopify-install") + "?" + "&".join(f"{k}={v}" for k, v in params.items())


def test_shopifys_install_request_starts_oauth_for_a_signed_in_admin(shopify_app, shop, owner_client):
    response = owner_client.get(signed_install_request(shop))

    assert response.status_code == 302
    assert response.url.startswith(f"{shopify_app.url}/shops/{shop}/admin/oauth/authorize?")
    assert "opspulse_shopify_oauth" in response.cookies


def test_shopifys_install_request_asks_a_newcomer_to_sign_up_then_goes_on(shopify_app, shop):
    visitor = Client()

    response = visitor.get(signed_install_request(shop))
    assert response.url == f"{reverse('account_signup')}?next={reverse('shopify-install-resume')}"
    owner = MembershipFactory(user=UserFactory(email="new-owner@example.com"), role=Role.OWNER).user
    visitor.force_login(owner)  # signing up or in keeps the session's pending install
    resumed = visitor.get(reverse("shopify-install-resume"))

    assert resumed.status_code == 302
    assert resumed.url.startswith(f"{shopify_app.url}/shops/{shop}/admin/oauth/authorize?")


def test_a_forged_install_request_is_refused(shopify_app, shop, owner_client):
    forged = signed_install_request(shop).replace(shop, "other-shop.myshopify.com")

    response = owner_client.get(forged)

    assert response.status_code == 400
    assert b"not signed by Shopify" in response.content
