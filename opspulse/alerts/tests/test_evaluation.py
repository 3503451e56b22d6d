"""Each alert type fires exactly once per episode and resolves as specified."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.utils import timezone

from opspulse.alerts import actions as alert_actions
from opspulse.alerts.models import Alert, AlertEvent, AlertType
from opspulse.commerce import actions
from opspulse.ingest.models import WebhookDelivery
from opspulse.stores.models import IntegrationStatus
from tests.factories import OrderFactory
from tests.support.webhooks import T0

# A Monday, 14:00 in Paris (the test stores' timezone).
MONDAY_2PM = datetime(2026, 11, 30, 13, 0, tzinfo=UTC)


def stock(available: int, minutes: int, *, item: str = "77", location: str = "9", sku: str = "") -> actions.StockData:
    return actions.StockData(item_external_id=item, location_external_id=location, available=available,
                             updated_at=T0 + timedelta(minutes=minutes), sku=sku)


def rule(store, alert_type: AlertType, config: dict, *, created_hours_before: float = 48) -> Alert:
    alert = Alert.objects.create(store=store, type=alert_type, config=config)
    Alert.objects.filter(pk=alert.pk).update(created_at=MONDAY_2PM - timedelta(hours=created_hours_before))
    alert.refresh_from_db()
    return alert


def events(alert: Alert) -> list[tuple[str, bool]]:
    return [(event.message, event.resolved_at is not None) for event in alert.events.order_by("pk")]


# Low stock: evaluated on each stock change, in the drain job.


def test_low_stock_fires_once_while_low_and_resolves_when_restocked(shopify_store):
    low = rule(shopify_store, AlertType.LOW_STOCK, {"threshold": 5})

    actions.apply_stock_change(store=shopify_store, data=stock(3, 1))
    actions.apply_stock_change(store=shopify_store, data=stock(2, 2))
    assert events(low) == [("Low stock: Inventory item 77 has 3 left", False)]

    actions.apply_stock_change(store=shopify_store, data=stock(40, 3))

    assert events(low) == [("Low stock: Inventory item 77 has 3 left", True)]


def test_low_stock_going_low_and_restocked_in_one_batch_is_recorded_resolved(shopify_store):
    low = rule(shopify_store, AlertType.LOW_STOCK, {"threshold": 5})

    actions.apply_records(store=shopify_store, records=[stock(20, 0), stock(1, 1), stock(30, 2), stock(4, 3)])

    assert events(low) == [
        ("Low stock: Inventory item 77 has 1 left", True),
        ("Low stock: Inventory item 77 has 4 left", False),
    ]


def test_low_stock_for_one_sku_ignores_other_items(shopify_store):
    low = rule(shopify_store, AlertType.LOW_STOCK, {"threshold": 5, "sku": "TEE-BLK-M", "location": ""})

    actions.apply_stock_change(store=shopify_store, data=stock(1, 1, item="1", sku="MUG-01"))
    actions.apply_stock_change(store=shopify_store, data=stock(2, 1, item="2", sku="tee-blk-m"))

    assert events(low) == [("Low stock: SKU tee-blk-m has 2 left", False)]


def test_low_stock_for_one_location_ignores_other_locations(shopify_store):
    low = rule(shopify_store, AlertType.LOW_STOCK, {"threshold": 5, "sku": "", "location": "9"})

    actions.apply_stock_change(store=shopify_store, data=stock(1, 1, location="8"))
    actions.apply_stock_change(store=shopify_store, data=stock(1, 1, location="9"))

    assert AlertEvent.objects.get().data["location"] == "9"


def test_a_paused_rule_does_not_fire(shopify_store):
    low = rule(shopify_store, AlertType.LOW_STOCK, {"threshold": 5})
    alert_actions.set_rule_active(rule=low, active=False)

    actions.apply_stock_change(store=shopify_store, data=stock(0, 1))

    assert AlertEvent.objects.count() == 0


def test_a_high_value_order_in_another_currency_is_not_compared(shopify_store):
    rule(shopify_store, AlertType.HIGH_VALUE_ORDER, {"threshold": "100.00"})

    actions.record_order(store=shopify_store, data=actions.OrderData(
        external_id="1", number="#1", status="paid", currency="JPY", total=Decimal("90000"),
        placed_at=timezone.now(), updated_at=timezone.now(),
    ))

    assert AlertEvent.objects.count() == 0


# No orders for N hours during opening hours: the periodic job.

OPEN_WEEKDAYS = {"hours": 2, "weekdays": [0, 1, 2, 3, 4], "start": "09:00", "end": "18:00"}


def test_no_orders_fires_once_after_hours_of_opening_time_and_resolves_on_an_order(shopify_store):
    quiet = rule(shopify_store, AlertType.NO_ORDERS, OPEN_WEEKDAYS)
    # Last order Friday 17:00 Paris: Friday's last hour and Monday 09:00–14:00 are quiet.
    OrderFactory(store=shopify_store, placed_at=datetime(2026, 11, 27, 16, 0, tzinfo=UTC))

    alert_actions.evaluate_timed_rules(now=MONDAY_2PM)
    alert_actions.evaluate_timed_rules(now=MONDAY_2PM + timedelta(minutes=1))
    assert events(quiet) == [("No orders on Alice-Apparel for 2 hours of opening time", False)]

    OrderFactory(store=shopify_store, placed_at=MONDAY_2PM + timedelta(minutes=2))
    alert_actions.evaluate_timed_rules(now=MONDAY_2PM + timedelta(minutes=3))

    assert events(quiet) == [("No orders on Alice-Apparel for 2 hours of opening time", True)]


def test_a_disconnected_store_gets_no_no_orders_alert(shopify_store):
    quiet = rule(shopify_store, AlertType.NO_ORDERS, OPEN_WEEKDAYS)
    OrderFactory(store=shopify_store, placed_at=datetime(2026, 11, 27, 16, 0, tzinfo=UTC))
    shopify_store.disconnected_at = MONDAY_2PM - timedelta(days=3)
    shopify_store.save(update_fields=["disconnected_at"])

    alert_actions.evaluate_timed_rules(now=MONDAY_2PM)

    assert events(quiet) == []


def test_a_test_checkout_does_not_silence_the_no_orders_alert(shopify_store):
    """A merchant testing checkout is not a customer buying: the quiet spell goes on."""
    quiet = rule(shopify_store, AlertType.NO_ORDERS, OPEN_WEEKDAYS)
    OrderFactory(store=shopify_store, placed_at=datetime(2026, 11, 27, 16, 0, tzinfo=UTC))
    OrderFactory(store=shopify_store, placed_at=MONDAY_2PM - timedelta(minutes=30), is_test=True)

    alert_actions.evaluate_timed_rules(now=MONDAY_2PM)

    assert events(quiet) == [("No orders on Alice-Apparel for 2 hours of opening time", False)]


def test_no_orders_counts_only_opening_hours(shopify_store):
    quiet = rule(shopify_store, AlertType.NO_ORDERS, OPEN_WEEKDAYS)
    # Friday 17:30 Paris, then the weekend and Monday 09:00–10:00: 1.5 hours of opening time.
    OrderFactory(store=shopify_store, placed_at=datetime(2026, 11, 27, 16, 30, tzinfo=UTC))

    alert_actions.evaluate_timed_rules(now=datetime(2026, 11, 30, 9, 0, tzinfo=UTC))

    assert events(quiet) == []


def test_no_orders_stays_quiet_outside_opening_hours(shopify_store):
    quiet = rule(shopify_store, AlertType.NO_ORDERS, OPEN_WEEKDAYS)
    OrderFactory(store=shopify_store, placed_at=datetime(2026, 11, 27, 10, 0, tzinfo=UTC))

    alert_actions.evaluate_timed_rules(now=datetime(2026, 11, 29, 13, 0, tzinfo=UTC))  # Sunday

    assert events(quiet) == []


# Revenue down X% against yesterday by the same time.


def test_revenue_down_fires_once_and_resolves_when_revenue_catches_up(shopify_store):
    drop = rule(shopify_store, AlertType.REVENUE_DROP, {"percent": 50, "minimum": ""})
    yesterday = MONDAY_2PM - timedelta(days=1)
    OrderFactory(store=shopify_store, placed_at=yesterday - timedelta(hours=3), total=Decimal("1000.00"))
    OrderFactory(store=shopify_store, placed_at=yesterday + timedelta(hours=2), total=Decimal("5000.00"))  # later
    OrderFactory(store=shopify_store, placed_at=MONDAY_2PM - timedelta(hours=1), total=Decimal("200.00"))

    alert_actions.evaluate_timed_rules(now=MONDAY_2PM)
    alert_actions.evaluate_timed_rules(now=MONDAY_2PM + timedelta(minutes=5))
    assert events(drop) == [(
        "Revenue on Alice-Apparel is down 80% on yesterday by this time: €200.00 against €1,000.00", False
    )]

    OrderFactory(store=shopify_store, placed_at=MONDAY_2PM + timedelta(minutes=6), total=Decimal("700.00"))
    alert_actions.evaluate_timed_rules(now=MONDAY_2PM + timedelta(minutes=7))

    assert [resolved for _, resolved in events(drop)] == [True]


def test_revenue_down_waits_for_the_minimum_of_yesterday(shopify_store):
    drop = rule(shopify_store, AlertType.REVENUE_DROP, {"percent": 50, "minimum": "500.00"})
    OrderFactory(store=shopify_store, placed_at=MONDAY_2PM - timedelta(days=1, hours=1), total=Decimal("100.00"))

    alert_actions.evaluate_timed_rules(now=MONDAY_2PM)

    assert events(drop) == []


# Sync trouble: integration in error, or no webhook for N hours.


def test_sync_trouble_fires_once_on_an_integration_error_and_resolves_when_it_works_again(shopify_store):
    trouble = rule(shopify_store, AlertType.SYNC_TROUBLE, {"integration_error": True, "webhook_hours": 0})
    shopify_store.integration.status = IntegrationStatus.ERROR
    shopify_store.integration.last_error = "401 Unauthorized"
    shopify_store.integration.save()

    alert_actions.evaluate_timed_rules(now=MONDAY_2PM)
    alert_actions.evaluate_timed_rules(now=MONDAY_2PM + timedelta(minutes=1))
    assert events(trouble) == [
        ("Sync trouble on Alice-Apparel: the Shopify connection has an error: 401 Unauthorized", False)
    ]

    shopify_store.integration.status = IntegrationStatus.ACTIVE
    shopify_store.integration.save()
    alert_actions.evaluate_timed_rules(now=MONDAY_2PM + timedelta(minutes=2))

    assert [resolved for _, resolved in events(trouble)] == [True]


def test_sync_trouble_fires_when_no_webhook_arrived_for_hours_and_resolves_on_the_next(shopify_store):
    trouble = rule(shopify_store, AlertType.SYNC_TROUBLE, {"integration_error": False, "webhook_hours": 6})
    WebhookDelivery.objects.create(store=shopify_store, platform="shopify", topic="orders/create", delivery_key="a",
                                   received_at=MONDAY_2PM - timedelta(hours=7), body=b"{}")

    alert_actions.evaluate_timed_rules(now=MONDAY_2PM)
    alert_actions.evaluate_timed_rules(now=MONDAY_2PM + timedelta(minutes=1))
    assert events(trouble) == [("Sync trouble on Alice-Apparel: no webhook received for 6 hours", False)]

    WebhookDelivery.objects.create(store=shopify_store, platform="shopify", topic="orders/create", delivery_key="b",
                                   received_at=MONDAY_2PM + timedelta(minutes=2), body=b"{}")
    alert_actions.evaluate_timed_rules(now=MONDAY_2PM + timedelta(minutes=3))

    assert [resolved for _, resolved in events(trouble)] == [True]


def test_a_new_episode_fires_after_the_last_one_resolved(shopify_store):
    trouble = rule(shopify_store, AlertType.SYNC_TROUBLE, {"integration_error": True, "webhook_hours": 0})
    integration = shopify_store.integration
    for minute, status in enumerate([IntegrationStatus.ERROR, IntegrationStatus.ACTIVE, IntegrationStatus.ERROR]):
        integration.status = status
        integration.save()
        alert_actions.evaluate_timed_rules(now=MONDAY_2PM + timedelta(minutes=minute))

    assert [resolved for _, resolved in events(trouble)] == [True, False]


def test_an_open_episode_is_recorded_once_even_when_two_evaluations_race(shopify_store):
    trouble = rule(shopify_store, AlertType.SYNC_TROUBLE, {"integration_error": True, "webhook_hours": 0})
    shopify_store.integration.status = IntegrationStatus.ERROR
    shopify_store.integration.save()
    # What a second evaluation that read the same state would insert: the database refuses it.
    firing = alert_actions.Firing(trouble.pk, shopify_store.pk, "sync:other-run", "duplicate", {}, condition="sync")

    alert_actions.evaluate_timed_rules(now=MONDAY_2PM)
    inserted = alert_actions._insert_events([firing], {shopify_store.pk: shopify_store})

    assert inserted == []
    assert trouble.events.count() == 1


def test_pausing_a_rule_resolves_its_ongoing_alert(shopify_store):
    trouble = rule(shopify_store, AlertType.SYNC_TROUBLE, {"integration_error": True, "webhook_hours": 0})
    shopify_store.integration.status = IntegrationStatus.ERROR
    shopify_store.integration.save()
    alert_actions.evaluate_timed_rules(now=MONDAY_2PM)

    alert_actions.set_rule_active(rule=trouble, active=False)
    alert_actions.evaluate_timed_rules(now=MONDAY_2PM + timedelta(minutes=1))

    assert [resolved for _, resolved in events(trouble)] == [True]



def test_a_new_low_stock_rule_flags_the_items_already_low_at_once(shopify_store):
    actions.apply_records(store=shopify_store, records=[
        stock(2, 0, item="77"), stock(30, 0, item="78"), stock(0, 0, item="79", sku="MUG-01"),
    ])

    low = alert_actions.create_rule(store=shopify_store, type=AlertType.LOW_STOCK, config={"threshold": 5})

    assert sorted(events(low)) == [
        ("Low stock: Inventory item 77 has 2 left", False), ("Low stock: SKU MUG-01 has 0 left", False)
    ]
    # Saving it again judges the stock again: still one open episode per low item.
    alert_actions.update_rule(rule=low, config={"threshold": 1})
    assert [message for message, resolved in events(low) if not resolved] == ["Low stock: SKU MUG-01 has 0 left"]
