"""A store's settings page: who may disconnect or delete a store, and deleting one with its data."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db.models import Model
from django.urls import reverse
from django.utils import timezone

from opspulse.accounts.models import AuditEvent, AuditKind, Membership, Role
from opspulse.alerts.models import (
    Alert,
    AlertChannel,
    AlertEvent,
    AlertNotification,
    ChannelDelivery,
    ChannelKind,
    DeliveryAttempt,
)
from opspulse.commerce.models import Cart, InventoryLevel, LineItem, Order
from opspulse.ingest.models import DeliveryStatus, WebhookDelivery
from opspulse.live.models import WallboardLink
from opspulse.live.share import create_wallboard_link, link_for_token
from opspulse.metrics.models import Metric, ProductDay
from opspulse.platforms import registry
from opspulse.platforms.models import Backfill, SyncHealth
from opspulse.platforms.shopify.models import ApiCallSlot
from opspulse.privacy.models import CustomerDataRequest
from opspulse.sim import payloads
from opspulse.stores.actions import purge_store_rows
from opspulse.stores.models import Integration, IntegrationStatus, Store
from tests.factories import AlertEventFactory, AlertFactory
from tests.support.jobs import run_worker_until_idle
from tests.support.stores import client_for
from tests.support.webhooks import MUG, TEE, post_shopify, post_woo, shopify_order

pytestmark = pytest.mark.django_db(transaction=True)



@pytest.fixture
def admin(personas):
    from opspulse.accounts.models import User

    dora = User.objects.create_user("dora@example.com", "dora-password-1")
    Membership.objects.create(account=personas["account"], user=dora, role=Role.ADMIN)
    return dora


def fill(store: Store, user) -> str:
    """Give the store a row in every table that holds store data; return its wallboard link's token."""
    now = timezone.now()
    registry.handler_for("shopify", "orders/create")(store, shopify_order(5001, at=now - timedelta(minutes=5)))
    registry.handler_for("shopify", "inventory_levels/update")(
        store, payloads.shopify_inventory_level(inventory_item_id=9001, location_id=1, available=3, updated_at=now)
    )
    registry.handler_for("shopify", "carts/create")(
        store, payloads.shopify_cart(token=f"cart-{store.pk}", items=[TEE, MUG], created_at=now, updated_at=now)
    )
    WebhookDelivery.objects.create(
        store=store, platform=store.platform, topic="orders/create", delivery_key=f"key-{store.pk}",
        received_at=now, body=b"{}",
    )
    event = AlertEventFactory(alert=AlertFactory(store=store))
    AlertNotification.objects.create(event=event, user=user, account=store.account)
    channel = AlertChannel(account=store.account, store=store, kind=ChannelKind.WEBHOOK, name="Ops room")
    channel.url = "https://hooks.example.com/ops"
    channel.secret = "channel-secret"
    channel.save()
    delivery = ChannelDelivery.objects.create(event=event, channel=channel)
    DeliveryAttempt.objects.create(delivery=delivery, started_at=now)
    _, link_token = create_wallboard_link(store=store, created_by=user, label="Warehouse TV")
    Backfill.objects.create(store=store, since=now - timedelta(days=60))
    SyncHealth.objects.create(store=store)
    ApiCallSlot.objects.create(store=store, next_at=now)
    CustomerDataRequest.objects.create(store=store, external_id=f"request-{store.pk}", export={})
    return link_token


# Every table with store data, and how its rows of a store are found.
STORE_ROWS: dict[type[Model], str] = {
    Integration: "store",
    ApiCallSlot: "store",
    CustomerDataRequest: "store",
    Order: "store",
    LineItem: "order__store",
    InventoryLevel: "store",
    Cart: "store",
    Backfill: "store",
    SyncHealth: "store",
    Metric: "store",
    ProductDay: "store",
    WebhookDelivery: "store",
    Alert: "store",
    AlertEvent: "store",
    AlertNotification: "event__store",
    AlertChannel: "store",
    ChannelDelivery: "event__store",
    DeliveryAttempt: "delivery__event__store",
    WallboardLink: "store",
}


MODELS = {model.__name__: model for model in STORE_ROWS}


def rows_of(store_id: int) -> dict[str, int]:
    return {
        model.__name__: model._base_manager.filter(**{path: store_id}).count() for model, path in STORE_ROWS.items()
    }


def run_maintenance_jobs() -> None:
    from procrastinate.contrib.django import app

    with app.replace_connector(app.connector.get_worker_connector()) as worker_app:
        worker_app.run_worker(queues=["maintenance"], wait=False, install_signal_handlers=False, listen_notify=False)


def test_every_table_with_store_data_is_covered_here():
    """A new table that refers to stores must be listed, so deleting a store is checked to empty it."""
    referring = {relation.related_model for relation in Store._meta.related_objects}

    assert referring <= set(STORE_ROWS)


def test_a_member_can_neither_see_the_settings_nor_disconnect_or_delete_and_an_outsider_gets_404(
    personas, shopify_store
):
    member, outsider = client_for(personas["bob"]), client_for(personas["charlie"])
    settings_url = reverse("store-settings", args=[shopify_store.public_id])
    disconnect_url = reverse("store-disconnect", args=[shopify_store.public_id])
    delete_url = reverse("store-delete", args=[shopify_store.public_id])

    answers = [
        member.get(settings_url).status_code,
        member.post(disconnect_url).status_code,
        member.post(delete_url, {"confirm_name": shopify_store.name}).status_code,
        outsider.get(settings_url).status_code,
        outsider.post(disconnect_url).status_code,
        outsider.post(delete_url, {"confirm_name": shopify_store.name}).status_code,
    ]

    assert answers == [403, 403, 403, 404, 404, 404]
    store = Store.objects.get(pk=shopify_store.pk)
    assert (store.disconnected_at, store.deleted_at) == (None, None)
    assert Integration.objects.get(store=store).webhook_secret
    assert not AuditEvent.objects.filter(kind__in=[AuditKind.STORE_DISCONNECTED, AuditKind.STORE_DELETED]).exists()


def test_the_dashboard_links_admins_to_the_store_settings(personas, admin, shopify_store):
    dashboard = reverse("dashboard", args=[shopify_store.public_id])

    admin_page = client_for(admin).get(dashboard).content.decode()
    member_page = client_for(personas["bob"]).get(dashboard).content.decode()

    assert reverse("store-settings", args=[shopify_store.public_id]) in admin_page
    assert "data-store-settings-link" not in member_page


def test_a_webhook_accepted_just_before_the_disconnect_is_not_processed_after_it(web, admin, shopify_store):
    accepted = post_shopify(web.url, shopify_store, "orders/create", shopify_order(5001))

    client_for(admin).post(reverse("store-disconnect", args=[shopify_store.public_id]))
    run_worker_until_idle()

    assert accepted.status_code == 200
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.error) == (DeliveryStatus.IGNORED, "the store was disconnected")
    assert not Order.objects.exists()


def test_a_disconnected_woocommerce_store_refuses_its_webhooks_and_says_what_to_remove_there(web, admin, woo_store):
    response = client_for(admin).post(reverse("store-disconnect", args=[woo_store.public_id]), follow=True)
    now = timezone.now()
    order = payloads.woo_order(7001, items=[TEE], date_created=now, date_modified=now)
    refused = post_woo(web.url, woo_store, "order.created", order)

    assert "Delete OpsPulse&#x27;s webhooks in WooCommerce" in response.content.decode()
    assert refused.status_code == 401
    assert not WebhookDelivery.objects.exists()
    integration = Integration.objects.get(store=woo_store)
    assert (integration.status, integration.webhook_secret_encrypted) == (IntegrationStatus.INACTIVE, "")


def test_deleting_with_a_name_that_is_not_the_stores_keeps_everything(personas, admin, shopify_store):
    fill(shopify_store, personas["alice"])
    before = rows_of(shopify_store.pk)

    response = client_for(admin).post(
        reverse("store-delete", args=[shopify_store.public_id]), {"confirm_name": shopify_store.name.lower()}
    )

    assert response.status_code == 400
    assert "That is not the store&#x27;s name" in response.content.decode()
    assert "Nothing was deleted" in response.content.decode()
    assert Store.objects.get(pk=shopify_store.pk).deleted_at is None
    assert rows_of(shopify_store.pk) == before
    assert client_for(admin).get(reverse("dashboard", args=[shopify_store.public_id])).status_code == 200
    assert not AuditEvent.objects.filter(kind=AuditKind.STORE_DELETED).exists()


def test_deleting_a_store_hides_it_at_once_then_removes_every_row_of_it(personas, admin, shopify_store, woo_store):
    link_token = fill(shopify_store, personas["alice"])
    other_link_token = fill(woo_store, personas["alice"])
    assert all(rows_of(shopify_store.pk).values()), rows_of(shopify_store.pk)
    others_before = rows_of(woo_store.pk)
    owner = client_for(personas["alice"])

    response = client_for(admin).post(
        reverse("store-delete", args=[shopify_store.public_id]), {"confirm_name": shopify_store.name}
    )

    # Gone from every page before its rows are removed.
    assert response.status_code == 302 and response.url == reverse("home")
    assert owner.get(reverse("dashboard", args=[shopify_store.public_id])).status_code == 404
    assert owner.get(reverse("store-settings", args=[shopify_store.public_id])).status_code == 404
    home = owner.get(reverse("home")).content.decode()
    assert shopify_store.name not in home and woo_store.name in home
    assert link_for_token(link_token) is None and link_for_token(other_link_token) is not None
    integration = Integration.objects.get(store=shopify_store)
    assert (integration.status, integration.webhook_secret) == (IntegrationStatus.INACTIVE, "")
    assert not Alert.objects.filter(store=shopify_store, is_active=True).exists()

    run_maintenance_jobs()

    assert not Store.objects.filter(pk=shopify_store.pk).exists()
    assert set(rows_of(shopify_store.pk).values()) == {0}
    assert rows_of(woo_store.pk) == others_before
    # The account's record of it stays.
    event = AuditEvent.objects.get(kind=AuditKind.STORE_DELETED)
    assert (event.account_id, event.user, event.details["store_id"]) == (
        personas["account"].pk, admin, str(shopify_store.public_id)
    )


def test_a_big_stores_rows_go_a_batch_at_a_time_and_the_store_row_last(personas, shopify_store):
    for number in range(5):
        registry.handler_for("shopify", "orders/create")(shopify_store, shopify_order(6001 + number))
    Store.objects.filter(pk=shopify_store.pk).update(deleted_at=timezone.now())

    def rows_left() -> int:
        return sum(count for name, count in rows_of(shopify_store.pk).items() if STORE_ROWS[MODELS[name]] == "store")

    left = [rows_left()]
    while not purge_store_rows(store_id=shopify_store.pk, batch_size=2):
        assert Store.objects.filter(pk=shopify_store.pk).exists()
        left.append(rows_left())

    assert left[0] > 10 and left[-1] == 0
    assert all(0 < before - after <= 2 for before, after in zip(left, left[1:], strict=False))
    assert not Store.objects.filter(pk=shopify_store.pk).exists()
    assert LineItem.objects.count() == 0


def test_the_daily_maintenance_finishes_a_deletion_whose_job_gave_up(personas, shopify_store, woo_store):
    from opspulse.stores.tasks import resume_store_deletions

    fill(shopify_store, personas["alice"])
    # Deleted, but its removal job is gone (it failed ten times, say).
    Store.objects.filter(pk=shopify_store.pk).update(deleted_at=timezone.now())

    assert resume_store_deletions() == 1  # as the daily maintenance job does
    run_maintenance_jobs()

    assert not Store.objects.filter(pk=shopify_store.pk).exists()
    assert set(rows_of(shopify_store.pk).values()) == {0}
    assert Store.objects.filter(pk=woo_store.pk).exists() and resume_store_deletions() == 0


def test_a_shop_can_be_connected_again_while_its_deleted_stores_rows_are_being_removed(personas, shopify_store):
    from opspulse.stores.actions import delete_store

    delete_store(store=shopify_store, actor=personas["alice"])
    again = Store.objects.create(
        account=personas["account"], platform=shopify_store.platform, domain=shopify_store.domain, name="Again"
    )

    assert again.pk != shopify_store.pk
    assert Store.objects.filter(domain=shopify_store.domain).count() == 2
