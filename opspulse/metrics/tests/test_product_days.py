"""The products' days of orders stored before they existed are filled in by the migration
exactly as the worker keeps them."""

from __future__ import annotations

import importlib
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection

from opspulse.commerce import actions
from opspulse.commerce.models import OrderStatus
from opspulse.metrics.models import ProductDay
from tests.factories import StoreFactory

pytestmark = pytest.mark.django_db

migration = importlib.import_module("opspulse.metrics.migrations.0002_product_day")


def product_days() -> list[tuple]:
    rows = ProductDay.objects.filter(units__gt=0).values_list("store_id", "day", "product_key", "units", "revenue")
    return sorted(rows)


def test_the_migration_fills_in_the_days_the_worker_would_have_kept():
    sydney = StoreFactory(timezone="Australia/Sydney", domain="sydney.myshopify.com")
    new_york = StoreFactory(timezone="America/New_York", domain="new-york.myshopify.com")
    # Sydney: 00:30 on the 3rd and 12:30 on the 2nd; New York: 08:30 on the 2nd and 21:30
    # on the 1st, the evening before its clocks went back.
    placed = datetime(2025, 11, 2, 13, 30, tzinfo=UTC)
    for store in (sydney, new_york):
        actions.apply_records(store=store, records=[
            actions.OrderData(
                external_id=str(number), number=f"#{number}", status=status, currency="USD",
                total=Decimal("30.00"), placed_at=placed + timedelta(hours=hours), updated_at=placed,
                line_items=[
                    actions.LineItemData(external_id="1", product_external_id="7", title="Mug", quantity=2,
                                         price=Decimal("12.50")),
                    actions.LineItemData(external_id="2", title="Gift wrap", quantity=1, price=Decimal("5.00")),
                ],
            )
            for number, status, hours in (
                (1, OrderStatus.PAID, 0), (2, OrderStatus.PAID, -12), (3, OrderStatus.CANCELLED, 0)
            )
        ])
    kept = product_days()
    assert len(kept) == 8  # two products on two local days in two stores

    ProductDay.objects.all().delete()
    with connection.cursor() as cursor:
        cursor.execute(migration.FILL)

    assert product_days() == kept
