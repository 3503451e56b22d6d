"""REST-style resources as the fake's webhooks carry them (PROTOCOLS.md §1).

Orders, inventory levels and carts come from the simulator's builders in
`opspulse.sim.payloads`, so OpsPulse's parsers see exactly the shapes its fixtures
hold; the Shop resource and the compliance payloads are built here.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from opspulse.sim import payloads
from opspulse.sim.fake_shopify.state import BulkOperation, Customer, Order, Shop, Variant


def local(shop: Shop, moment: datetime) -> datetime:
    """Return the moment in the shop's time zone, as Shopify's REST timestamps show it."""
    return moment.astimezone(ZoneInfo(shop.timezone))


def utc_z(moment: datetime) -> str:
    """Return a UTC timestamp as GraphQL's DateTime shows it: "2025-10-14T14:12:33Z"."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def order_resource(shop: Shop, order: Order) -> dict[str, Any]:
    resource = payloads.shopify_order(
        order.id,
        number=order.number,
        created_at=local(shop, order.created_at),
        updated_at=local(shop, order.updated_at),
        items=order.lines,
        currency=shop.currency,
        financial_status=order.financial_status,
        fulfillment_status=order.fulfillment_status,
        cancelled_at=local(shop, order.cancelled_at) if order.cancelled_at else None,
        first_name=order.customer.first_name,
        last_name=order.customer.last_name,
        city=order.customer.city,
        email=order.customer.email,
    )
    # The builder derives a customer id from the email; the webhook must carry the id
    # the fake's GraphQL API returns for the same customer.
    customer = resource["customer"]
    customer["id"] = order.customer.id
    customer["admin_graphql_api_id"] = f"gid://shopify/Customer/{order.customer.id}"
    customer["default_address"]["customer_id"] = order.customer.id
    return resource


def inventory_level_resource(shop: Shop, variant: Variant) -> dict[str, Any]:
    return payloads.shopify_inventory_level(
        inventory_item_id=variant.inventory_item_id,
        location_id=shop.location_id,
        available=variant.available,
        updated_at=local(shop, variant.updated_at),
    )


def cart_resource(
    shop: Shop, *, token: str, lines: list[payloads.LineSpec], at: datetime
) -> dict[str, Any]:
    return payloads.shopify_cart(
        token=token, items=lines, created_at=at, updated_at=at, currency=shop.currency
    )


def shop_resource(shop: Shop) -> dict[str, Any]:
    """Return the Shop resource, which app/uninstalled carries."""
    created = local(shop, shop.created_at).isoformat(timespec="seconds")
    offset = local(shop, shop.created_at).strftime("%z")
    return {
        "id": shop.id,
        "name": shop.name,
        "email": shop.email,
        "domain": shop.domain,
        "province": None,
        "country": None,
        "address1": None,
        "zip": None,
        "city": None,
        "source": None,
        "phone": None,
        "latitude": None,
        "longitude": None,
        "primary_locale": "en",
        "address2": None,
        "created_at": created,
        "updated_at": created,
        "country_code": None,
        "country_name": None,
        "currency": shop.currency,
        "customer_email": shop.email,
        "timezone": f"(GMT{offset[:3]}:{offset[3:]}) {shop.timezone}",
        "iana_timezone": shop.timezone,
        "shop_owner": shop.name,
        "money_format": "{{amount}}",
        "money_with_currency_format": f"{{{{amount}}}} {shop.currency}",
        "weight_unit": "kg",
        "province_code": None,
        "taxes_included": False,
        "tax_shipping": None,
        "county_taxes": True,
        "plan_display_name": shop.plan,
        "plan_name": shop.plan.lower().replace(" ", "_"),
        "has_discounts": False,
        "has_gift_cards": False,
        "myshopify_domain": shop.domain,
        "google_apps_domain": None,
        "google_apps_login_enabled": None,
        "money_in_emails_format": "{{amount}}",
        "money_with_currency_in_emails_format": f"{{{{amount}}}} {shop.currency}",
        "eligible_for_payments": True,
        "requires_extra_payments_agreement": False,
        "password_enabled": False,
        "has_storefront": True,
        "finances": True,
        "primary_location_id": shop.location_id,
        "checkout_api_supported": True,
        "multi_location_enabled": True,
        "setup_required": False,
        "pre_launch_enabled": False,
        "enabled_presentment_currencies": [shop.currency],
        "transactional_sms_disabled": False,
        "marketing_sms_consent_enabled_at_checkout": False,
    }


def customers_data_request(
    shop: Shop, customer: Customer, orders: list[Order], request_id: int
) -> dict[str, Any]:
    return {
        "shop_id": shop.id,
        "shop_domain": shop.domain,
        "orders_requested": [order.id for order in orders],
        "customer": {"id": customer.id, "email": customer.email, "phone": None},
        "data_request": {"id": request_id},
    }


def customers_redact(shop: Shop, customer: Customer, orders: list[Order]) -> dict[str, Any]:
    return {
        "shop_id": shop.id,
        "shop_domain": shop.domain,
        "customer": {"id": customer.id, "email": customer.email, "phone": None},
        "orders_to_redact": [order.id for order in orders],
    }


def shop_redact(shop: Shop) -> dict[str, Any]:
    return {"shop_id": shop.id, "shop_domain": shop.domain}


def bulk_operation_finish(operation: BulkOperation) -> dict[str, Any]:
    return {
        "admin_graphql_api_id": f"gid://shopify/BulkOperation/{operation.id}",
        "completed_at": utc_z(operation.completed_at) if operation.completed_at else None,
        "created_at": utc_z(operation.created_at),
        "error_code": operation.error_code.lower() if operation.error_code else None,
        "status": operation.status.lower(),
        "type": "query",
    }
