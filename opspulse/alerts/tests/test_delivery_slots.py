"""An account has at most ALERT_DELIVERIES_PER_ACCOUNT alert posts under way: the others
wait their turn outside the worker's slots, and keep counting their attempts."""

from __future__ import annotations

from datetime import timedelta

import psycopg
import pytest
from django.db import connection
from django.utils import timezone
from procrastinate.contrib.django.models import ProcrastinateJob

from opspulse.alerts import actions as alert_actions
from opspulse.alerts import tasks
from opspulse.alerts.models import Alert, AlertEvent, AlertType, ChannelDelivery, ChannelDeliveryStatus
from opspulse.commerce import actions
from opspulse.lib import db
from tests.factories import StoreFactory
from tests.support.alerts import Receiver, big_order
from tests.support.jobs import run_alert_jobs
from tests.support.processes import free_port

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("private_receivers")]


def queued_deliveries() -> list[ProcrastinateJob]:
    return list(ProcrastinateJob.objects.filter(task_name="opspulse.alerts.deliver_to_channel", status="todo"))


def make_due_now() -> None:
    with connection.cursor() as cursor:
        cursor.execute("UPDATE procrastinate_jobs SET scheduled_at = now() WHERE status = 'todo'")


def test_a_post_whose_account_has_every_slot_taken_waits_outside_the_workers_slots(settings):
    """Ten slow receivers of one account would otherwise take every alerts slot."""
    settings.ALERT_DELIVERIES_PER_ACCOUNT = 2
    store = StoreFactory(currency="USD")
    Alert.objects.create(store=store, type=AlertType.HIGH_VALUE_ORDER, config={"threshold": "500.00"})
    receiver = Receiver([])
    try:
        alert_actions.create_channel(account=store.account, store=store, kind="webhook", name="Ops", url=receiver.url)
        with psycopg.connect(db.conninfo(), autocommit=True) as other_worker:
            for slot in range(2):  # two posts of the account under way elsewhere
                other_worker.execute("SELECT pg_advisory_lock(%s, hashtext(%s))",
                                     [tasks.IN_FLIGHT_LOCK_CLASS, f"{store.account_id}:{slot}"])
            actions.record_order(store=store, data=big_order("1"))
            run_alert_jobs()

            [waiting] = queued_deliveries()
            assert receiver.requests == [] and ChannelDelivery.objects.get().attempts == 0
            assert waiting.scheduled_at > timezone.now() + timedelta(seconds=1)
        make_due_now()  # the other posts ended meanwhile
        run_alert_jobs()
    finally:
        receiver.close()

    assert len(receiver.requests) == 1
    assert ChannelDelivery.objects.get().status == ChannelDeliveryStatus.DELIVERED


def test_a_post_queued_again_still_stops_after_its_last_attempt():
    store = StoreFactory(currency="USD")
    Alert.objects.create(store=store, type=AlertType.HIGH_VALUE_ORDER, config={"threshold": "500.00"})
    alert_actions.create_channel(account=store.account, store=store, kind="webhook", name="Ops",
                                 url=f"http://127.0.0.1:{free_port()}/hook")
    actions.record_order(store=store, data=big_order("1"))
    deliveries, _ = alert_actions.dispatch_event(AlertEvent.objects.get().pk)
    # Four attempts made by earlier jobs of this delivery: the fresh job makes the fifth and last.
    ChannelDelivery.objects.update(attempts=tasks.WEBHOOK_ATTEMPTS - 1)
    tasks._defer_deliveries(deliveries)

    run_alert_jobs()

    delivery = ChannelDelivery.objects.get()
    assert delivery.status == ChannelDeliveryStatus.FAILED and delivery.attempts == tasks.WEBHOOK_ATTEMPTS
    assert queued_deliveries() == []
