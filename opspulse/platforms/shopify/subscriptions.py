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

CREATE_SUBSCRIPTION = """
mutation CreateWebhookSubscription($topic: WebhookSubscriptionTopic!, $uri: String!) {
  webhookSubscriptionCreate(topic: $topic, webhookSubscription: {uri: $uri, format: JSON}) {
    webhookSubscription { id topic uri }
    userErrors { field message }
  }
}
"""


def webhook_uri() -> str:
    return settings.PUBLIC_URL + "/webhooks/shopify"


def ensure_subscriptions(client: ShopifyClient) -> list[str]:
    """Create the subscriptions the shop lacks; return the topics created."""
    uri = webhook_uri()
    edges = client.query(LIST_SUBSCRIPTIONS).data["webhookSubscriptions"]["edges"]
    present = {edge["node"]["topic"] for edge in edges if edge["node"].get("uri") == uri}
    created = []
    for topic in TOPICS:
        if topic in present:
            continue
        result = client.query(CREATE_SUBSCRIPTION, {"topic": topic, "uri": uri}).data["webhookSubscriptionCreate"]
        if result["userErrors"]:
            messages = "; ".join(error["message"] for error in result["userErrors"])
            raise ShopifyError(f"Shopify refused the {TOPICS[topic]} subscription: {messages}")
        created.append(topic)
    return created
