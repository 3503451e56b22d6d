"""The fake Shopify, over real HTTP: OAuth, GraphQL Admin, webhooks, bulk, control API."""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from opspulse.sim.fake_shopify.app import ServerThread, create_app
from opspulse.sim.fake_shopify.state import AppSettings

CLIENT_ID = "fake-client-id"
CLIENT_SECRET = "shpss_fake_client_secret"
REDIRECT = "http://127.0.0.1:8000/shopify/callback"
SCOPES = "read_orders,read_inventory"
_numbers = itertools.count(1)


class Receiver:
    """A webhook endpoint that records what it gets and answers the statuses it is told."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        self.statuses: dict[str, list[int]] = {}
        self.app = Starlette(routes=[Route("/{path:path}", self.receive, methods=["POST"])])

    async def receive(self, request: Request) -> Response:
        path = request.url.path
        self.requests.append((path, dict(request.headers), await request.body()))
        queued = self.statuses.get(path)
        return Response(status_code=queued.pop(0) if queued else 200)

    def received(self, path: str) -> list[tuple[dict[str, str], bytes]]:
        return [(headers, body) for p, headers, body in self.requests if p == path]


@pytest.fixture(scope="module")
def receiver() -> Iterator[tuple[Receiver, str]]:
    recorder = Receiver()
    with ServerThread(recorder.app) as server:
        yield recorder, server.url


@pytest.fixture(scope="module")
def fake() -> Iterator[str]:
    settings = AppSettings(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, redirect_prefix="http://127.0.0.1:8000/")
    app = create_app(settings, webhook_retries=2, webhook_retry_delay=0.05, bulk_step_delay=0.02)
    with ServerThread(app) as server:
        yield server.url


@pytest.fixture
def client(fake: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=fake, timeout=10) as http:
        yield http


def new_shop(client: httpx.Client, **fields: Any) -> str:
    domain = f"shop-{next(_numbers)}-{time.monotonic_ns() % 10**6}.myshopify.com"
    response = client.post("/_fake/shops", json={"domain": domain, "name": "Harbor Goods", "seed": 7} | fields)
    assert response.status_code == 201, response.text
    return domain


def authorize_params(**overrides: str) -> dict[str, str]:
    return {"client_id": CLIENT_ID, "scope": SCOPES, "redirect_uri": REDIRECT, "state": "nonce-123"} | overrides


def approve(client: httpx.Client, domain: str, **overrides: str) -> dict[str, str]:
    """Click Install; return the callback's query parameters."""
    response = client.post(f"/shops/{domain}/admin/oauth/authorize", data=authorize_params(**overrides))
    assert response.status_code == 302, response.text
    location = response.headers["location"]
    assert location.startswith(REDIRECT + "?")
    return dict(parse_qsl(urlsplit(location).query))


def exchange(client: httpx.Client, domain: str, **body: str) -> httpx.Response:
    payload = {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET} | body
    return client.post(f"/shops/{domain}/admin/oauth/access_token", json=payload)


def install(client: httpx.Client, domain: str, scope: str = SCOPES) -> dict[str, Any]:
    callback = approve(client, domain, scope=scope)
    response = exchange(client, domain, code=callback["code"], expiring="1")
    assert response.status_code == 200, response.text
    return response.json()


def gql(client: httpx.Client, domain: str, token: str, query: str, **variables: Any) -> httpx.Response:
    return client.post(
        f"/shops/{domain}/admin/api/2025-10/graphql.json",
        json={"query": query, "variables": variables},
        headers={"X-Shopify-Access-Token": token},
    )


def subscribe(client: httpx.Client, domain: str, token: str, topic: str, uri: str) -> dict[str, Any]:
    response = gql(
        client,
        domain,
        token,
        """mutation($topic: WebhookSubscriptionTopic!, $uri: String!) {
          webhookSubscriptionCreate(topic: $topic, webhookSubscription: {uri: $uri, format: JSON}) {
            webhookSubscription { id topic uri } userErrors { field message } } }""",
        topic=topic,
        uri=uri,
    )
    return response.json()["data"]["webhookSubscriptionCreate"]


def flush(client: httpx.Client) -> None:
    client.post("/_fake/webhooks/flush").raise_for_status()


def shopify_hmac(body: bytes) -> str:
    return base64.b64encode(hmac.new(CLIENT_SECRET.encode(), body, hashlib.sha256).digest()).decode()


# -- OAuth -----------------------------------------------------------------------------------


def test_install_page_shows_the_shop_and_scopes_with_a_form_posting_back(client: httpx.Client) -> None:
    domain = new_shop(client)

    response = client.get(f"/shops/{domain}/admin/oauth/authorize", params=authorize_params())

    assert response.status_code == 200
    assert "Install app" in response.text and "Harbor Goods" in response.text
    assert "read_orders" in response.text and "read_inventory" in response.text
    assert f'method="post" action="/shops/{domain}/admin/oauth/authorize"' in response.text
    assert "<script" not in response.text


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"client_id": "someone-else"}, "client_id is not valid"),
        ({"redirect_uri": "https://evil.example/callback"}, "redirect_uri is not whitelisted"),
    ],
    ids=["unknown_client_case", "foreign_redirect_case"],
)
def test_authorize_refuses_unknown_clients_and_foreign_redirects(
    client: httpx.Client, override: dict[str, str], message: str
) -> None:
    domain = new_shop(client)

    page = client.get(f"/shops/{domain}/admin/oauth/authorize", params=authorize_params(**override))
    post = client.post(f"/shops/{domain}/admin/oauth/authorize", data=authorize_params(**override))

    assert page.status_code == 400 and message in page.text
    assert post.status_code == 400 and "location" not in post.headers


def test_install_redirect_is_signed_with_the_client_secret(client: httpx.Client) -> None:
    domain = new_shop(client)

    callback = approve(client, domain)

    assert set(callback) == {"code", "hmac", "host", "shop", "state", "timestamp"}
    assert callback["shop"] == domain and callback["state"] == "nonce-123"
    host = callback["host"]
    assert base64.b64decode(host + "=" * (-len(host) % 4)).decode() == f"{domain}/admin"
    assert abs(int(callback["timestamp"]) - time.time()) < 5
    message = "&".join(f"{k}={v}" for k, v in sorted(callback.items()) if k != "hmac")
    expected = hmac.new(CLIENT_SECRET.encode(), message.encode(), hashlib.sha256).hexdigest()
    assert hmac.compare_digest(callback["hmac"], expected)


def test_code_exchange_issues_expiring_offline_tokens_once(client: httpx.Client) -> None:
    domain = new_shop(client)
    code = approve(client, domain)["code"]

    first = exchange(client, domain, code=code, expiring="1")
    again = exchange(client, domain, code=code, expiring="1")

    body = first.json()
    assert first.status_code == 200
    assert set(body) == {"access_token", "scope", "expires_in", "refresh_token", "refresh_token_expires_in"}
    assert body["scope"] == SCOPES and body["expires_in"] == 3600
    assert body["refresh_token_expires_in"] == 7_776_000
    assert again.status_code == 400
    assert again.json() == {
        "error": "invalid_request",
        "error_description": "The authorization code was not found or was already used",
    }


def test_non_expiring_tokens_and_wrong_secrets_are_refused(client: httpx.Client) -> None:
    domain = new_shop(client)
    code = approve(client, domain)["code"]

    non_expiring = exchange(client, domain, code=code)
    wrong_secret = exchange(client, domain, code=code, expiring="1", client_secret="nope")
    still_usable = exchange(client, domain, code=code, expiring="1")

    assert non_expiring.status_code == 400
    assert "Non-expiring offline access tokens are no longer issued" in non_expiring.json()["error_description"]
    assert wrong_secret.status_code == 401 and wrong_secret.json()["error"] == "invalid_client"
    assert still_usable.status_code == 200


def test_codes_expire_after_sixty_seconds(client: httpx.Client) -> None:
    domain = new_shop(client)
    code = approve(client, domain)["code"]

    client.post("/_fake/clock/advance", json={"seconds": 61}).raise_for_status()
    response = exchange(client, domain, code=code, expiring="1")

    assert response.status_code == 400


def test_refresh_keeps_the_previous_refresh_token_until_the_new_access_token_is_used(
    client: httpx.Client,
) -> None:
    domain = new_shop(client)
    tokens = install(client, domain)
    query = "{ shop { name } }"

    refreshed = exchange(client, domain, grant_type="refresh_token", refresh_token=tokens["refresh_token"])
    retried = exchange(client, domain, grant_type="refresh_token", refresh_token=tokens["refresh_token"])
    used = gql(client, domain, retried.json()["access_token"], query)
    after_use = exchange(client, domain, grant_type="refresh_token", refresh_token=tokens["refresh_token"])

    assert refreshed.status_code == 200 and retried.status_code == 200
    assert refreshed.json()["access_token"] != tokens["access_token"]
    assert refreshed.json()["refresh_token"] != tokens["refresh_token"]
    assert used.status_code == 200
    assert after_use.status_code == 400 and after_use.json()["error"] == "invalid_grant"


def test_narrowed_grant_is_reported_and_enforced(client: httpx.Client) -> None:
    domain = new_shop(client, orders=3)
    client.post(f"/_fake/shops/{domain}/grant", json={"scopes": ["read_inventory"]}).raise_for_status()

    tokens = install(client, domain)
    response = gql(client, domain, tokens["access_token"], "{ orders(first: 5) { edges { node { id } } } }")

    assert tokens["scope"] == "read_inventory"
    body = response.json()
    assert response.status_code == 200 and body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "ACCESS_DENIED"
    assert "read_orders" in body["errors"][0]["message"]


# -- GraphQL Admin -----------------------------------------------------------------------------


def test_graphql_answers_401_for_missing_unknown_and_expired_tokens(client: httpx.Client) -> None:
    domain = new_shop(client)
    token = install(client, domain)["access_token"]
    invalid = {"errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"}

    missing = client.post(f"/shops/{domain}/admin/api/2025-10/graphql.json", json={"query": "{ shop { id } }"})
    unknown = gql(client, domain, "shpat_unknown", "{ shop { id } }")
    live = gql(client, domain, token, "{ shop { id } }")
    client.post(f"/_fake/shops/{domain}/tokens/expire").raise_for_status()
    expired = gql(client, domain, token, "{ shop { id } }")

    assert (missing.status_code, missing.json()) == (401, invalid)
    assert (unknown.status_code, unknown.json()) == (401, invalid)
    assert live.status_code == 200
    assert (expired.status_code, expired.json()) == (401, invalid)


def test_shop_query_uses_shopify_ids_and_shapes(client: httpx.Client) -> None:
    domain = new_shop(client, currency="EUR", timezone="Europe/Paris")
    token = install(client, domain)["access_token"]

    response = gql(
        client, domain, token,
        "{ shop { id name email currencyCode ianaTimezone myshopifyDomain plan { displayName } } }",
    )

    shop = response.json()["data"]["shop"]
    assert shop["id"].startswith("gid://shopify/Shop/")
    assert (shop["currencyCode"], shop["ianaTimezone"], shop["myshopifyDomain"]) == ("EUR", "Europe/Paris", domain)
    assert shop["plan"] == {"displayName": "Basic"}


ORDERS = """query($after: String, $since: String) {
  orders(first: 10, after: $after, query: $since, sortKey: UPDATED_AT) {
    edges { cursor node {
      id legacyResourceId name createdAt updatedAt processedAt cancelledAt displayFinancialStatus currencyCode
      totalPriceSet { shopMoney { amount currencyCode } }
      customer { firstName } shippingAddress { city }
      lineItems(first: 3) { edges { node {
        id name sku quantity originalUnitPriceSet { shopMoney { amount } } variant { id legacyResourceId }
      } } }
    } }
    pageInfo { hasNextPage endCursor }
  }
}"""


def test_orders_page_by_updated_at_and_filter_with_search_syntax(client: httpx.Client) -> None:
    domain = new_shop(client, orders=50, days=30)
    token = install(client, domain)["access_token"]

    nodes: list[dict[str, Any]] = []
    after = None
    while True:
        page = gql(client, domain, token, ORDERS, after=after).json()["data"]["orders"]
        nodes += [edge["node"] for edge in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    since = nodes[39]["updatedAt"]
    recent = gql(client, domain, token, ORDERS, since=f"updated_at:>'{since}'").json()["data"]["orders"]

    assert len(nodes) == 50 and len({node["id"] for node in nodes}) == 50
    assert [node["updatedAt"] for node in nodes] == sorted(node["updatedAt"] for node in nodes)
    order = nodes[0]
    assert order["id"] == f"gid://shopify/Order/{order['legacyResourceId']}"
    assert order["name"].startswith("#") and order["createdAt"].endswith("Z")
    assert isinstance(order["totalPriceSet"]["shopMoney"]["amount"], str)
    line = order["lineItems"]["edges"][0]["node"]
    assert line["id"].startswith("gid://shopify/LineItem/")
    assert line["variant"]["id"] == f"gid://shopify/ProductVariant/{line['variant']['legacyResourceId']}"
    assert sum(
        float(edge["node"]["originalUnitPriceSet"]["shopMoney"]["amount"]) * edge["node"]["quantity"]
        for edge in order["lineItems"]["edges"]
    ) == pytest.approx(float(order["totalPriceSet"]["shopMoney"]["amount"]))
    assert all(edge["node"]["updatedAt"] > since for edge in recent["edges"])
    assert 1 <= len(recent["edges"]) <= 10


def test_orders_older_than_sixty_days_need_read_all_orders(client: httpx.Client) -> None:
    domain = new_shop(client, orders=120, days=90)
    limited = install(client, domain)["access_token"]
    everything = install(client, domain, scope="read_orders,read_all_orders")["access_token"]
    query = "{ orders(first: 250) { edges { node { createdAt } } } }"

    recent = gql(client, domain, limited, query).json()["data"]["orders"]["edges"]
    complete = gql(client, domain, everything, query).json()["data"]["orders"]["edges"]

    assert len(complete) == 120
    assert 60 <= len(recent) < 120


def test_inventory_items_show_available_quantities(client: httpx.Client) -> None:
    domain = new_shop(client)
    token = install(client, domain)["access_token"]
    client.post(f"/_fake/shops/{domain}/inventory", json={"sku": "CEM", "available": 4}).raise_for_status()

    response = gql(
        client, domain, token,
        """{ inventoryItems(first: 50) { edges { node { id legacyResourceId sku variant { id legacyResourceId }
             inventoryLevels(first: 5) { edges { node { location { id }
               quantities(names: ["available"]) { name quantity } } } } } } pageInfo { hasNextPage } } }""",
    )

    items = {edge["node"]["sku"]: edge["node"] for edge in response.json()["data"]["inventoryItems"]["edges"]}
    level = items["CEM"]["inventoryLevels"]["edges"][0]["node"]
    assert level["quantities"] == [{"name": "available", "quantity": 4}]
    assert level["location"]["id"].startswith("gid://shopify/Location/")
    assert items["CEM"]["id"] == f"gid://shopify/InventoryItem/{items['CEM']['legacyResourceId']}"


def test_costs_are_reported_and_an_empty_bucket_throttles(client: httpx.Client) -> None:
    domain = new_shop(client, orders=300, days=30)
    token = install(client, domain)["access_token"]
    query = "{ orders(first: 250) { edges { node { id } } } }"

    # Four such queries take 1,008 of the 1,000 points; the fifth is throttled unless the
    # calls are slow enough for the bucket to refill (100 points a second): keep asking,
    # as a client would, until one is.
    answers = [gql(client, domain, token, query)]
    while "errors" not in answers[-1].json() and len(answers) < 12:
        answers.append(gql(client, domain, token, query))

    first = answers[0].json()["extensions"]["cost"]
    assert first["requestedQueryCost"] == 252 and first["actualQueryCost"] == 252
    assert first["throttleStatus"]["maximumAvailable"] == 1000.0
    assert first["throttleStatus"]["restoreRate"] == 100.0
    assert 748 <= first["throttleStatus"]["currentlyAvailable"] <= 760
    throttled = answers[-1]
    assert throttled.status_code == 200
    assert throttled.json()["errors"] == [
        {
            "message": "Throttled",
            "extensions": {"code": "THROTTLED", "documentation": "https://shopify.dev/api/usage/rate-limits"},
        }
    ]
    assert throttled.json()["extensions"]["cost"]["throttleStatus"]["currentlyAvailable"] < 252
    assert "data" not in throttled.json()


def test_unused_estimate_is_refunded(client: httpx.Client) -> None:
    domain = new_shop(client, orders=3, days=5)
    token = install(client, domain)["access_token"]

    cost = gql(client, domain, token, "{ orders(first: 100) { edges { node { id } } } }").json()["extensions"]["cost"]

    assert (cost["requestedQueryCost"], cost["actualQueryCost"]) == (102, 5)
    assert cost["throttleStatus"]["currentlyAvailable"] >= 995


def test_queries_over_the_max_cost_or_without_first_are_refused(client: httpx.Client) -> None:
    domain = new_shop(client)
    token = install(client, domain)["access_token"]

    too_big = gql(client, domain, token, "{ orders(first: 250) { edges { node { lineItems(first: 10) { edges { node { id } } } } } } }")
    unbounded = gql(client, domain, token, "{ orders { edges { node { id } } } }")

    assert too_big.json()["errors"][0]["extensions"]["code"] == "MAX_COST_EXCEEDED"
    assert unbounded.json()["errors"][0]["message"] == "you must provide one of first or last"


def test_call_log_shows_the_pace_of_calls_per_shop(client: httpx.Client) -> None:
    domain = new_shop(client)
    token = install(client, domain)["access_token"]

    for _ in range(3):
        gql(client, domain, token, "{ shop { id } }")
    gql(client, domain, "shpat_wrong", "{ shop { id } }")
    log = client.get(f"/_fake/shops/{domain}/calls").json()

    assert [call["status"] for call in log["calls"]] == [200, 200, 200, 401]
    assert log["max_per_second"] == 4
    assert all(b["at"] >= a["at"] for a, b in itertools.pairwise(log["calls"]))


# -- Webhooks --------------------------------------------------------------------------------


def test_placed_orders_send_signed_webhooks_to_subscribers(
    client: httpx.Client, receiver: tuple[Receiver, str]
) -> None:
    recorder, base = receiver
    domain = new_shop(client)
    token = install(client, domain)["access_token"]
    created = subscribe(client, domain, token, "ORDERS_CREATE", f"{base}/orders-{domain}")
    subscribe(client, domain, token, "INVENTORY_LEVELS_UPDATE", f"{base}/stock-{domain}")

    order = client.post(f"/_fake/shops/{domain}/orders", json={"lines": [{"sku": "CEM", "quantity": 2}]}).json()
    flush(client)

    assert created["userErrors"] == [] and created["webhookSubscription"]["topic"] == "ORDERS_CREATE"
    [(headers, body)] = recorder.received(f"/orders-{domain}")
    assert hmac.compare_digest(headers["x-shopify-hmac-sha256"], shopify_hmac(body))
    assert headers["x-shopify-topic"] == "orders/create"
    assert headers["x-shopify-shop-domain"] == domain
    assert headers["x-shopify-api-version"] == "2025-10"
    assert headers["x-shopify-webhook-id"] and headers["x-shopify-event-id"] and headers["x-shopify-triggered-at"]
    payload = json.loads(body)
    assert payload["id"] == order["id"] and payload["admin_graphql_api_id"] == order["admin_graphql_api_id"]
    assert payload["line_items"][0]["sku"] == "CEM" and payload["line_items"][0]["quantity"] == 2
    assert payload["total_price"] == "36.00"
    [(stock_headers, stock_body)] = recorder.received(f"/stock-{domain}")
    level = json.loads(stock_body)
    assert stock_headers["x-shopify-topic"] == "inventory_levels/update"
    assert level["admin_graphql_api_id"] == (
        f"gid://shopify/InventoryLevel/{level['location_id']}?inventory_item_id={level['inventory_item_id']}"
    )


def test_duplicate_and_plain_http_subscriptions_are_refused(client: httpx.Client, receiver: tuple[Receiver, str]) -> None:
    _, base = receiver
    domain = new_shop(client)
    token = install(client, domain)["access_token"]

    subscribe(client, domain, token, "ORDERS_UPDATED", f"{base}/x")
    duplicate = subscribe(client, domain, token, "ORDERS_UPDATED", f"{base}/x")
    remote_http = subscribe(client, domain, token, "ORDERS_UPDATED", "http://example.com/hook")

    assert duplicate["userErrors"][0]["message"] == "Address for this topic has already been taken"
    assert remote_http["userErrors"][0]["message"] == "Address protocol http:// is not supported"


def test_failed_deliveries_are_retried_with_the_same_webhook_id(
    client: httpx.Client, receiver: tuple[Receiver, str]
) -> None:
    recorder, base = receiver
    domain = new_shop(client, orders=1, days=1)
    token = install(client, domain)["access_token"]
    path = f"/updated-{domain}"
    subscribe(client, domain, token, "ORDERS_UPDATED", base + path)
    recorder.statuses[path] = [500, 302]
    [edge] = gql(client, domain, token, "{ orders(first: 1) { edges { node { legacyResourceId } } } }").json()[
        "data"]["orders"]["edges"]

    updated = client.post(
        f"/_fake/shops/{domain}/orders/{edge['node']['legacyResourceId']}", json={"fulfillment_status": "fulfilled"}
    )
    flush(client)
    attempts = client.get("/_fake/webhooks/deliveries", params={"shop": domain, "topic": "orders/updated"}).json()

    assert updated.json()["fulfillment_status"] == "fulfilled"
    assert [(a["attempt"], a["status"]) for a in attempts["deliveries"]] == [(1, 500), (2, 302), (3, 200)]
    ids = {headers["x-shopify-webhook-id"] for headers, _ in recorder.received(path)}
    bodies = {body for _, body in recorder.received(path)}
    assert len(ids) == 1 and len(bodies) == 1


def test_uninstall_sends_app_uninstalled_and_revokes_tokens(
    client: httpx.Client, receiver: tuple[Receiver, str]
) -> None:
    recorder, base = receiver
    domain = new_shop(client)
    tokens = install(client, domain)
    subscribe(client, domain, tokens["access_token"], "APP_UNINSTALLED", f"{base}/bye-{domain}")

    client.post(f"/_fake/shops/{domain}/uninstall").raise_for_status()
    flush(client)

    [(headers, body)] = recorder.received(f"/bye-{domain}")
    assert headers["x-shopify-topic"] == "app/uninstalled"
    assert json.loads(body)["myshopify_domain"] == domain
    assert gql(client, domain, tokens["access_token"], "{ shop { id } }").status_code == 401
    refresh = exchange(client, domain, grant_type="refresh_token", refresh_token=tokens["refresh_token"])
    assert refresh.status_code == 400
    assert client.get(f"/_fake/shops/{domain}").json()["subscriptions"] == []


def test_compliance_topics_go_to_the_apps_own_subscriptions(
    client: httpx.Client, receiver: tuple[Receiver, str]
) -> None:
    recorder, base = receiver
    domain = new_shop(client, orders=5, days=5)
    install(client, domain)
    path = f"/compliance-{domain}"
    topics = ["customers/data_request", "customers/redact", "shop/redact"]
    client.put("/_fake/app/webhooks", json={topic: [base + path] for topic in topics}).raise_for_status()
    email = client.post(f"/_fake/shops/{domain}/orders", json={}).json()["customer_email"]

    client.post(f"/_fake/shops/{domain}/customers/data_request", json={"email": email}).raise_for_status()
    client.post(f"/_fake/shops/{domain}/customers/redact", json={"email": email}).raise_for_status()
    early = client.post(f"/_fake/shops/{domain}/redact")
    client.post(f"/_fake/shops/{domain}/uninstall").raise_for_status()
    client.post(f"/_fake/shops/{domain}/redact").raise_for_status()
    flush(client)
    client.put("/_fake/app/webhooks", json={}).raise_for_status()

    assert early.status_code == 400
    received = {headers["x-shopify-topic"]: json.loads(body) for headers, body in recorder.received(path)}
    assert set(received) == set(topics)
    assert received["customers/redact"]["customer"]["email"] == email
    assert received["customers/data_request"]["orders_requested"]
    assert received["shop/redact"]["shop_domain"] == domain


# -- Bulk operations -------------------------------------------------------------------------

BULK = '''mutation { bulkOperationRunQuery(query: """{ orders { edges { node { id name
  lineItems { edges { node { id sku quantity } } } } } } }""") {
  bulkOperation { id status } userErrors { field message code } } }'''


def test_bulk_query_writes_jsonl_with_parent_ids_and_announces_the_end(
    client: httpx.Client, receiver: tuple[Receiver, str]
) -> None:
    recorder, base = receiver
    domain = new_shop(client, orders=40, days=30)
    token = install(client, domain)["access_token"]
    subscribe(client, domain, token, "BULK_OPERATIONS_FINISH", f"{base}/bulk-{domain}")

    started = gql(client, domain, token, BULK).json()["data"]["bulkOperationRunQuery"]
    second = gql(client, domain, token, BULK).json()["data"]["bulkOperationRunQuery"]
    flush(client)
    current = gql(client, domain, token, "{ currentBulkOperation { id status errorCode objectCount url } }").json()[
        "data"]["currentBulkOperation"]
    lines = [json.loads(line) for line in httpx.get(current["url"]).text.splitlines()]

    assert started["userErrors"] == [] and started["bulkOperation"]["status"] == "CREATED"
    assert second["bulkOperation"] is None and second["userErrors"][0]["code"] == "OPERATION_IN_PROGRESS"
    assert current["id"] == started["bulkOperation"]["id"] and current["status"] == "COMPLETED"
    assert int(current["objectCount"]) == len(lines)
    orders = [line for line in lines if "__parentId" not in line]
    items = [line for line in lines if "__parentId" in line]
    assert len(orders) == 40 and items
    assert {item["__parentId"] for item in items} <= {order["id"] for order in orders}
    assert all(item["id"].startswith("gid://shopify/LineItem/") for item in items)
    [(headers, body)] = recorder.received(f"/bulk-{domain}")
    assert headers["x-shopify-topic"] == "bulk_operations/finish"
    finish = json.loads(body)
    assert finish["admin_graphql_api_id"] == current["id"]
    assert (finish["status"], finish["type"], finish["error_code"]) == ("completed", "query", None)
    assert set(finish) == {"admin_graphql_api_id", "completed_at", "created_at", "error_code", "status", "type"}


def test_bulk_query_without_a_connection_is_refused(client: httpx.Client) -> None:
    domain = new_shop(client)
    token = install(client, domain)["access_token"]

    answer = gql(client, domain, token, 'mutation { bulkOperationRunQuery(query: "{ shop { id } }") { bulkOperation { id } userErrors { field message } } }')

    result = answer.json()["data"]["bulkOperationRunQuery"]
    assert result["bulkOperation"] is None
    assert result["userErrors"] == [{"field": ["query"], "message": "Bulk queries must contain at least one connection."}]


# -- Control API -----------------------------------------------------------------------------


def test_a_shop_with_twenty_thousand_orders_is_created_quickly(client: httpx.Client) -> None:
    started = time.monotonic()
    domain = new_shop(client, orders=20_000, days=90)
    elapsed = time.monotonic() - started

    shops = {shop["domain"]: shop for shop in client.get("/_fake/shops").json()["shops"]}
    assert shops[domain]["orders"] == 20_000
    assert elapsed < 5


def test_control_api_refuses_bad_input(client: httpx.Client) -> None:
    domain = new_shop(client)

    duplicate = client.post("/_fake/shops", json={"domain": domain, "name": "Again"})
    bad_domain = client.post("/_fake/shops", json={"domain": "example.com", "name": "Nope"})
    unknown_sku = client.post(f"/_fake/shops/{domain}/orders", json={"lines": [{"sku": "NOPE"}]})
    missing = client.get("/_fake/shops/missing.myshopify.com")

    assert duplicate.status_code == 400 and bad_domain.status_code == 400
    assert unknown_sku.status_code == 400 and "NOPE" in unknown_sku.json()["error"]
    assert missing.status_code == 404
