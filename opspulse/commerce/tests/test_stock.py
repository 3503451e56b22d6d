"""Stock levels keep the newest count, and take names from wherever they come."""

from __future__ import annotations

from datetime import timedelta

from opspulse.commerce import actions
from opspulse.commerce.models import InventoryLevel
from tests.support.webhooks import T0


def test_older_update_does_not_change_the_count_but_names_the_item(shopify_store):
    actions.apply_stock_change(
        store=shopify_store, data=actions.StockData(item_external_id="77", available=3, updated_at=T0)
    )
    actions.apply_stock_change(
        store=shopify_store,
        data=actions.StockData(item_external_id="77", available=40, updated_at=T0 - timedelta(days=1),
                               title="Canvas tote", sku="TOTE-1"),
    )

    level = InventoryLevel.objects.get()
    assert (level.available, level.title, level.sku) == (3, "Canvas tote", "TOTE-1")
    assert level.display_name == "Canvas tote"
