"""The alert jobs on the real queue, and the live notice on the dashboard of the alert's store."""

from __future__ import annotations

import json
from datetime import datetime, time, timedelta

import pytest
from channels.db import database_sync_to_async
from django.core import mail
from django.urls import reverse
from django.utils import timezone
from procrastinate.contrib.django.models import ProcrastinateJob

from opspulse.alerts import actions as alert_actions
from opspulse.alerts import tasks
from opspulse.alerts.models import (
    Alert,
    AlertEvent,
    AlertNotification,
    AlertPreference,
    AlertType,
    DeliveryKind,
    ChannelDeliveryStatus,
)
from opspulse.commerce import actions
from opspulse.stores.models import IntegrationStatus
from tests.factories import MembershipFactory, StoreFactory, UserFactory
from tests.support.alerts import Receiver, big_order
from tests.support.jobs import run_alert_jobs
from tests.support.live import connect_and_read_panels, dashboard_socket, socket_headers
from tests.support.stores import client_for


# Their receivers listen on 127.0.0.1.
pytestmark = pytest.mark.usefixtures("private_receivers")


@pytest.mark.django_db(transaction=True)
def test_a_fired_alert_is_mailed_and_posted_once_by_the_alert_jobs():
    store = StoreFactory(currency="USD")
    MembershipFactory(account=store.account, user=UserFactory(email="owner@example.com"))
    Alert.objects.create(store=store, type=AlertType.HIGH_VALUE_ORDER, config={"threshold": "500.00"})
    receiver = Receiver([])
    try:
        alert_actions.create_channel(account=store.account, store=store, kind="slack", name="Ops", url=receiver.url)

        actions.record_order(store=store, data=big_order("1"))
        actions.record_order(store=store, data=big_order("1"))  # a replay: nothing new
        run_alert_jobs()
    finally:
        receiver.close()

    event = AlertEvent.objects.get()
    assert [message.to for message in mail.outbox] == [["owner@example.com"]]
    assert len(receiver.requests) == 1 and b"#1" in receiver.requests[0][1]
    assert event.channel_deliveries.get().status == ChannelDeliveryStatus.DELIVERED
    assert AlertNotification.objects.get().sent_at is not None


def test_the_periodic_job_evaluates_time_based_rules(shopify_store):
    Alert.objects.create(store=shopify_store, type=AlertType.SYNC_TROUBLE,
                         config={"integration_error": True, "webhook_hours": 0})
    shopify_store.integration.status = IntegrationStatus.ERROR
    shopify_store.integration.save()

    tasks.evaluate(timestamp=0)
    tasks.evaluate(timestamp=60)

    assert AlertEvent.objects.get().message == "Sync trouble on Alice-Apparel: the Shopify connection has an error"


def test_held_mail_is_queued_once_its_member_may_receive_it(shopify_store, personas):
    rule = Alert.objects.create(store=shopify_store, type=AlertType.LOW_STOCK, config={"threshold": 5})
    event = AlertEvent.objects.create(alert=rule, store=shopify_store, subject="s", message="Low stock")
    alert_actions.dispatch_event(event.pk)

    queued = tasks.release_held_mail()
    tasks.release_held_mail()

    assert queued == 2
    assert ProcrastinateJob.objects.filter(task_name="opspulse.alerts.send_alert_mail").count() == 2


@pytest.mark.anyio
@pytest.mark.django_db(transaction=True)
async def test_a_stores_dashboard_shows_only_that_stores_alerts_on_the_page_and_live(live_listener):
    store = await database_sync_to_async(StoreFactory)(name="Northwind", currency="USD")
    other = await database_sync_to_async(StoreFactory)(name="Southwind", account=store.account, currency="USD")
    owner = await database_sync_to_async(MembershipFactory)(account=store.account)
    client = await database_sync_to_async(client_for)(owner.user)
    for rules_store in (store, other):
        await database_sync_to_async(Alert.objects.create)(
            store=rules_store, type=AlertType.HIGH_VALUE_ORDER, config={"threshold": "500.00"}
        )
    await database_sync_to_async(actions.record_order)(store=other, data=big_order("10"))
    await database_sync_to_async(actions.record_order)(store=store, data=big_order("11"))

    page = (await database_sync_to_async(client.get)(reverse("dashboard", args=[store.public_id]))).content.decode()
    assert "High-value order #11" in page and "High-value order #10" not in page
    assert '1<span class="sr-only"> not acknowledged' in page

    socket = dashboard_socket(store, socket_headers(client))
    await connect_and_read_panels(socket)
    # Another store's alert first: this dashboard is not told of it, so the first panel it
    # gets is the one for its own store's next alert.
    await database_sync_to_async(actions.record_order)(store=other, data=big_order("20"))
    await database_sync_to_async(actions.record_order)(store=store, data=big_order("21"))
    html = ""
    while 'id="alerts"' not in html:
        html = await socket.receive_text(timeout=5)

    assert "High-value order #21: $900.00" in html and "High-value order #11" in html
    assert "High-value order #20" not in html and "High-value order #10" not in html
    assert "Southwind" not in html and '2<span class="sr-only"> not acknowledged' in html
    assert "Latest alert: High-value order #21" in html
    await socket.disconnect()


@pytest.mark.anyio
@pytest.mark.django_db(transaction=True)
async def test_an_acknowledged_alert_shows_as_acknowledged_on_the_open_dashboards(live_listener):
    store = await database_sync_to_async(StoreFactory)(name="Northwind", currency="USD")
    owner = await database_sync_to_async(MembershipFactory)(account=store.account)
    client = await database_sync_to_async(client_for)(owner.user)
    await database_sync_to_async(Alert.objects.create)(
        store=store, type=AlertType.HIGH_VALUE_ORDER, config={"threshold": "500.00"}
    )
    await database_sync_to_async(actions.record_order)(store=store, data=big_order("78"))
    socket = dashboard_socket(store, socket_headers(client))
    assert 'data-alert-state="new"' in await connect_and_read_panels(socket)

    event = await database_sync_to_async(AlertEvent.objects.get)(store=store)
    await database_sync_to_async(alert_actions.acknowledge_event)(event=event, user=owner.user)
    html = ""
    while 'id="alerts"' not in html:
        html = await socket.receive_text(timeout=5)

    assert 'data-alert-state="acknowledged"' in html and "not acknowledged" not in html
    await socket.disconnect()


def low_stock(available: int, minute: int) -> actions.StockData:
    return actions.StockData(item_external_id="77", location_external_id="9", available=available,
                             updated_at=timezone.now().replace(microsecond=0) + timedelta(seconds=minute))


def posted(receiver: Receiver) -> list[tuple[str, datetime | None]]:
    """The type of each post the receiver got, with the resolution time it carried."""
    return [(body["type"], body["event"]["resolved_at"] and datetime.fromisoformat(body["event"]["resolved_at"]))
            for body in (json.loads(raw) for _, raw in receiver.requests)]


@pytest.mark.django_db(transaction=True)
def test_a_resolved_alert_is_posted_again_as_resolved_to_the_webhooks_that_got_it():
    store = StoreFactory()
    Alert.objects.create(store=store, type=AlertType.LOW_STOCK, config={"threshold": 5})
    first, later = Receiver([]), Receiver([])
    try:
        alert_actions.create_channel(account=store.account, kind="webhook", name="Ops", url=first.url)
        actions.apply_stock_change(store=store, data=low_stock(3, 1))
        run_alert_jobs()
        # A webhook added while the alert is open never heard of it: its end is not news there.
        alert_actions.create_channel(account=store.account, store=store, kind="webhook", name="New", url=later.url)

        actions.apply_stock_change(store=store, data=low_stock(40, 2))
        run_alert_jobs()
        run_alert_jobs()
    finally:
        first.close()
        later.close()

    event = AlertEvent.objects.get()
    assert posted(first) == [("alert.fired", None), ("alert.resolved", event.resolved_at)]
    assert later.requests == []
    assert event.channel_deliveries.filter(kind=DeliveryKind.RESOLVED).get().status == ChannelDeliveryStatus.DELIVERED


@pytest.mark.django_db(transaction=True)
def test_members_mailed_an_alert_are_mailed_once_more_when_it_resolves():
    store = StoreFactory()
    MembershipFactory(account=store.account, user=UserFactory(email="owner@example.com"))
    Alert.objects.create(store=store, type=AlertType.LOW_STOCK, config={"threshold": 5})
    actions.apply_stock_change(store=store, data=low_stock(3, 1))
    run_alert_jobs()
    # A member who joins while the alert is open was never told of it: its end is not news to them.
    MembershipFactory(account=store.account, user=UserFactory(email="newcomer@example.com"))

    actions.apply_stock_change(store=store, data=low_stock(40, 2))
    run_alert_jobs()
    tasks.dispatch_resolution(event_id=AlertEvent.objects.get().pk)  # twice: nothing more
    run_alert_jobs()

    assert [(message.to, message.subject.startswith("[OpsPulse] Resolved: Low stock:")) for message in mail.outbox] == [
        (["owner@example.com"], False),
        (["owner@example.com"], True),
    ]
    resolved = mail.outbox[1]
    assert "An alert of" in resolved.body and "resolved" in resolved.body
    assert AlertNotification.objects.filter(kind=DeliveryKind.RESOLVED, sent_at__isnull=False).count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_mail_held_until_after_the_alert_resolved_says_so_and_is_the_only_one():
    store = StoreFactory()
    owner = UserFactory(email="owner@example.com")
    MembershipFactory(account=store.account, user=owner)
    # Quiet all day long, for this test: the mail of the alert waits.
    AlertPreference.objects.create(user=owner, account=store.account, timezone="UTC",
                                   quiet_start=time(0, 0), quiet_end=time(23, 59, 59))
    Alert.objects.create(store=store, type=AlertType.LOW_STOCK, config={"threshold": 5})
    actions.apply_stock_change(store=store, data=low_stock(3, 1))
    run_alert_jobs()
    actions.apply_stock_change(store=store, data=low_stock(40, 2))
    run_alert_jobs()
    assert mail.outbox == []

    AlertPreference.objects.update(quiet_start=None, quiet_end=None)
    tasks.release_held_mail()
    run_alert_jobs()

    [message] = mail.outbox
    assert message.subject.startswith("[OpsPulse] Low stock:")
    assert "resolved" in message.body
    assert not AlertNotification.objects.filter(kind=DeliveryKind.RESOLVED).exists()


@pytest.mark.django_db(transaction=True)
def test_an_alert_opened_and_resolved_in_one_batch_is_posted_fired_then_resolved():
    store = StoreFactory()
    Alert.objects.create(store=store, type=AlertType.LOW_STOCK, config={"threshold": 5})
    receiver = Receiver([])
    try:
        alert_actions.create_channel(account=store.account, store=store, kind="slack", name="Ops", url=receiver.url)
        actions.apply_records(store=store, records=[low_stock(2, 1), low_stock(30, 2)])
        run_alert_jobs()
    finally:
        receiver.close()

    texts = [json.loads(body)["text"] for _, body in receiver.requests]
    assert len(texts) == 2
    assert texts[0].startswith("Low stock:") and texts[1].startswith("Resolved: Low stock:")


@pytest.mark.django_db(transaction=True)
def test_the_minute_job_posts_a_resolution_that_a_stopped_process_left_unqueued():
    store = StoreFactory()
    Alert.objects.create(store=store, type=AlertType.LOW_STOCK, config={"threshold": 5})
    receiver = Receiver([])
    try:
        alert_actions.create_channel(account=store.account, store=store, kind="webhook", name="Ops", url=receiver.url)
        actions.apply_stock_change(store=store, data=low_stock(3, 1))
        run_alert_jobs()
        # Resolved two minutes ago by a process that stopped before queueing the posts.
        AlertEvent.objects.update(resolved_at=timezone.now() - timedelta(minutes=2))

        tasks.evaluate(timestamp=int(timezone.now().timestamp()))
        run_alert_jobs()
        tasks.evaluate(timestamp=int(timezone.now().timestamp()))
        run_alert_jobs()
    finally:
        receiver.close()

    assert [kind for kind, _ in posted(receiver)] == ["alert.fired", "alert.resolved"]
