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


DELETE_FIELD = """
  {alias}: webhookSubscriptionDelete(id: ${alias}) {{
    deletedWebhookSubscriptionId
    userErrors {{ field message }}
  }}"""


def remove_subscriptions(client: ShopifyClient) -> list[str]:
    """Delete the shop's subscriptions to OpsPulse's address, in one call; return their topics.

    App-specific subscriptions (shopify.app.toml) are not the shop's and stay until the
    app is uninstalled; OpsPulse refuses their webhooks for a disconnected store.
    """
    uri = webhook_uri()
    edges = client.query(LIST_SUBSCRIPTIONS).data["webhookSubscriptions"]["edges"]
    ours = [edge["node"] for edge in edges if edge["node"].get("uri") == uri]
    if not ours:
        return []
    aliases = {f"delete{number}": node for number, node in enumerate(ours)}
    arguments = ", ".join(f"${alias}: ID!" for alias in aliases)
    fields = "".join(DELETE_FIELD.format(alias=alias) for alias in aliases)
    data = client.query(
        f"mutation DeleteWebhookSubscriptions({arguments}) {{{fields}\n}}",
        {alias: node["id"] for alias, node in aliases.items()},
    ).data
    problems = [
        f"{TOPICS.get(node['topic'], node['topic'])}: "
        + "; ".join(error["message"] for error in data[alias]["userErrors"])
        for alias, node in aliases.items()
        if data[alias]["userErrors"]
    ]
    if problems:
        raise ShopifyError("Shopify kept webhook subscriptions (" + ", ".join(problems) + ")")
    return [TOPICS.get(node["topic"], node["topic"]) for node in ours]
