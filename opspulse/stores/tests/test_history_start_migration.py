"""Stores that existed before OpsPulse kept a history start get a sensible one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

BEFORE = [("stores", "0004_store_disconnected_and_deleted")]
AFTER = [("stores", "0005_store_history_starts_at")]
COMMERCE_BEFORE = [("commerce", "0008_order_is_test")]
# The alert rules' version trigger needs a later store.
ALERTS_BEFORE = [("alerts", "0008_channel_url_encrypted")]
PARIS = ZoneInfo("Europe/Paris")


@pytest.mark.django_db(transaction=True)
def test_existing_stores_get_their_connection_or_their_finished_imports_start():
    executor = MigrationExecutor(connection)
    # Every app as it is now, but the stores before the history start, commerce before
    # its sync state moved to platforms (that move comes after the history start), and
    # alerts before the trigger on a later store.
    before = [
        node for node in executor.loader.graph.leaf_nodes() if node[0] not in ("stores", "commerce", "alerts")
    ] + BEFORE + COMMERCE_BEFORE + ALERTS_BEFORE
    executor.migrate(before)
    try:
        _fill_and_check(executor, before)
    finally:
        # The next tests find the schema as they expect it, whatever happened here.
        executor.loader.build_graph()
        executor.migrate(executor.loader.graph.leaf_nodes())


def _fill_and_check(executor: MigrationExecutor, before: list[tuple[str, str]]) -> None:
    apps = executor.loader.project_state(before).apps
    Account, Store = apps.get_model("accounts", "Account"), apps.get_model("stores", "Store")
    Backfill, Order = apps.get_model("commerce", "Backfill"), apps.get_model("commerce", "Order")
    account = Account.objects.create(name="Harbour & Pine")
    now = timezone.now()

    def store(name: str):
        return Store.objects.create(account=account, name=name, platform="shopify", domain=f"{name}.myshopify.com",
                                    timezone="Europe/Paris")

    def order(store, placed_at: datetime) -> None:
        Order.objects.create(store=store, external_id=str(placed_at.timestamp()), number="#1001", status="paid",
                             currency="EUR", total=10, placed_at=placed_at, platform_updated_at=placed_at)

    connected = store("connected")
    imported = store("imported")
    Backfill.objects.create(store=imported, status="done", phase="done", since=now - timedelta(days=60))
    importing = store("importing")
    Backfill.objects.create(store=importing, status="running", phase="orders", since=now - timedelta(days=60))
    order(importing, now - timedelta(days=59))
    # Past orders created in OpsPulse itself, as the demo's are.
    seeded = store("seeded")
    first_order = datetime(2026, 3, 29, 15, 0, tzinfo=PARIS)
    order(seeded, first_order)
    order(seeded, first_order + timedelta(days=3))

    executor.loader.build_graph()
    executor.migrate(AFTER)

    from opspulse.stores.models import Store as CurrentStore

    starts = dict(CurrentStore.objects.values_list("name", "history_starts_at"))
    assert starts["connected"] == connected.created_at
    assert starts["imported"] == now - timedelta(days=60)
    # Half imported: its orders before the connection are not the whole story yet.
    assert starts["importing"] == importing.created_at
    assert starts["seeded"] == datetime(2026, 3, 29, tzinfo=PARIS).astimezone(UTC)
