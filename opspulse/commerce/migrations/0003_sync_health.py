import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("commerce", "0002_backfill"),
        ("stores", "0002_shopify_app_tokens"),
    ]

    operations = [
        migrations.CreateModel(
            name="SyncHealth",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("orders_watermark", models.DateTimeField(blank=True, null=True)),
                ("last_reconciled_at", models.DateTimeField(blank=True, null=True)),
                ("last_corrected", models.PositiveIntegerField(default=0)),
                ("total_corrected", models.PositiveIntegerField(default=0)),
                ("subscriptions_checked_at", models.DateTimeField(blank=True, null=True)),
                ("last_error", models.TextField(blank=True)),
                (
                    "store",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE, related_name="sync_health", to="stores.store"
                    ),
                ),
            ],
        ),
    ]
