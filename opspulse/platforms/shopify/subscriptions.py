"""The webhook subscriptions a connected shop needs, made through the Admin API.

Shopify prefers app-specific subscriptions declared in shopify.app.toml (deployed with
the app); a shop without them gets shop-specific ones here, at install and again by a
periodic check, since Shopify deletes a subscription after 8 failed deliveries in a row.
Compliance topics are declared only in the TOML: the API refuses them.
"""

from __future__ import annotations

from django.conf import settings

from opspulse.platforms.shopify.client import ShopifyClient, ShopifyError

# GraphQL topic enum → the X-Shopify-Topic header OpsPulse receives for it.
TOPICS = {
    "ORDERS_CREATE": "orders/create",
    "ORDERS_UPDATED": "orders/updated",
    "INVENTORY_LEVELS_UPDATE": "inventory_levels/update",
    "CARTS_CREATE": "carts/create",
    "APP_UNINSTALLED": "app/uninstalled",
    "BULK_OPERATIONS_FINISH": "bulk_operations/finish",
}

LIST_SUBSCRIPTIONS = """
query WebhookSubscriptions {
  webhookSubscriptions(first: 100) { edges { node { id topic uri } } }
}
"""

CREATE_FIELD = """
  {alias}: webhookSubscriptionCreate(topic: {topic}, webhookSubscription: {{uri: $uri, format: JSON}}) {{
    webhookSubscription {{ id topic uri }}
    userErrors {{ field message }}
  }}"""


def webhook_uri() -> str:
    return settings.PUBLIC_URL + "/webhooks/shopify"


def ensure_subscriptions(client: ShopifyClient) -> list[str]:
    """Create the subscriptions the shop lacks, in one call; return the topics created."""
    uri = webhook_uri()
    edges = client.query(LIST_SUBSCRIPTIONS).data["webhookSubscriptions"]["edges"]
    present = {edge["node"]["topic"] for edge in edges if edge["node"].get("uri") == uri}
    missing = [topic for topic in TOPICS if topic not in present]
    if not missing:
        return []
    # One document with a mutation per topic (aliased): one call of the store's 2 a second.
    fields = "".join(CREATE_FIELD.format(alias=topic.lower(), topic=topic) for topic in missing)
    data = client.query(f"mutation CreateWebhookSubscriptions($uri: String!) {{{fields}\n}}", {"uri": uri}).data
    problems = [
        f"{TOPICS[topic]}: " + "; ".join(error["message"] for error in data[topic.lower()]["userErrors"])
        for topic in missing
        if data[topic.lower()]["userErrors"]
    ]
    if problems:
        raise ShopifyError("Shopify refused webhook subscriptions (" + ", ".join(problems) + ")")
    return missing
