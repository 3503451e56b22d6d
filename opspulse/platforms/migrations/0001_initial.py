"""The sync state moves here from the commerce app, tables and all: state only, no SQL."""

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("commerce", "0008_order_is_test"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="Backfill",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                            ),
                        ),
                        (
                            "status",
                            models.CharField(
                                choices=[("running", "Running"), ("done", "Done"), ("failed", "Failed")],
                                default="running",
                                max_length=10,
                            ),
                        ),
                        ("phase", models.CharField(default="orders", max_length=20)),
                        ("cursor", models.TextField(blank=True)),
                        ("orders_done", models.PositiveIntegerField(default=0)),
                        ("orders_total", models.PositiveIntegerField(blank=True, null=True)),
                        ("items_done", models.PositiveIntegerField(default=0)),
                        ("items_total", models.PositiveIntegerField(blank=True, null=True)),
                        ("since", models.DateTimeField()),
                        ("started_at", models.DateTimeField(default=django.utils.timezone.now)),
                        ("finished_at", models.DateTimeField(blank=True, null=True)),
                        ("error", models.TextField(blank=True)),
                        (
                            "store",
                            models.OneToOneField(
                                on_delete=django.db.models.deletion.CASCADE, related_name="backfill", to="stores.store"
                            ),
                        ),
                    ],
                    options={"db_table": "commerce_backfill"},
                ),
                migrations.CreateModel(
                    name="SyncHealth",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                            ),
                        ),
                        ("orders_watermark", models.DateTimeField(blank=True, null=True)),
                        ("last_reconciled_at", models.DateTimeField(blank=True, null=True)),
                        ("last_corrected", models.PositiveIntegerField(default=0)),
                        ("total_corrected", models.PositiveIntegerField(default=0)),
                        ("subscriptions_checked_at", models.DateTimeField(blank=True, null=True)),
                        ("last_error", models.TextField(blank=True)),
                        (
                            "store",
                            models.OneToOneField(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="sync_health",
                                to="stores.store",
                            ),
                        ),
                    ],
                    options={"db_table": "commerce_synchealth"},
                ),
            ],
        ),
    ]
