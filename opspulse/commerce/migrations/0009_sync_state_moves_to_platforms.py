"""Backfill and SyncHealth move to the platforms app, tables and all: state only, no SQL."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("commerce", "0008_order_is_test"),
        ("platforms", "0001_initial"),
        # It reads the imports from here.
        ("stores", "0005_store_history_starts_at"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.DeleteModel(name="Backfill"),
                migrations.DeleteModel(name="SyncHealth"),
            ],
        ),
    ]
