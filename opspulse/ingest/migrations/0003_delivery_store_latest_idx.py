import django.db.models.deletion
from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    # Built without locking the table against the webhooks being stored meanwhile.
    atomic = False

    dependencies = [
        ("ingest", "0002_delivery_next_attempt"),
        ("stores", "0002_shopify_app_tokens"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="webhookdelivery",
            index=models.Index(fields=["store", "-received_at"], name="delivery_store_latest_idx"),
        ),
        # The new index starts with the store: the foreign key's own index is redundant.
        migrations.AlterField(
            model_name="webhookdelivery",
            name="store",
            field=models.ForeignKey(
                db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name="deliveries",
                to="stores.store",
            ),
        ),
    ]
