from datetime import datetime, time
from zoneinfo import ZoneInfo

import django.utils.timezone
from django.db import migrations, models
from django.db.models import Min


def fill_history_starts(apps, schema_editor):
    """A store's history starts when it was connected, or where its finished import's
    period began; a store never imported (a demo store, whose past orders were created
    in OpsPulse) at the start of the local day of its first order."""
    Store = apps.get_model("stores", "Store")
    Backfill = apps.get_model("commerce", "Backfill")
    Order = apps.get_model("commerce", "Order")
    # Past its orders phase, an import has brought in every order of its period.
    imported = dict(Backfill.objects.filter(phase__in=["stock", "done"]).values_list("store_id", "since"))
    importing = set(Backfill.objects.values_list("store_id", flat=True))
    first_orders = dict(
        Order.objects.values("store_id").annotate(first=Min("placed_at")).values_list("store_id", "first")
    )
    for store in Store.objects.all():
        starts = [store.created_at]
        if store.pk in imported:
            starts.append(imported[store.pk])
        elif store.pk not in importing and store.pk in first_orders:
            local = first_orders[store.pk].astimezone(ZoneInfo(store.timezone))
            starts.append(datetime.combine(local.date(), time(), tzinfo=local.tzinfo))
        Store.objects.filter(pk=store.pk).update(history_starts_at=min(starts))


class Migration(migrations.Migration):

    dependencies = [
        ("stores", "0004_store_disconnected_and_deleted"),
        ("commerce", "0008_order_is_test"),
    ]

    operations = [
        migrations.AddField(
            model_name="store",
            name="history_starts_at",
            field=models.DateTimeField(default=django.utils.timezone.now),
        ),
        migrations.RunPython(fill_history_starts, migrations.RunPython.noop),
    ]
