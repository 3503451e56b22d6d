from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    # The index is built without locking the table against the webhooks being stored meanwhile.
    atomic = False

    dependencies = [
        ("ingest", "0003_delivery_store_latest_idx"),
    ]

    operations = [
        migrations.AddField(
            model_name="webhookdelivery",
            name="scrubbed_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        AddIndexConcurrently(
            model_name="webhookdelivery",
            index=models.Index(
                condition=models.Q(status="failed"), fields=["store", "-processed_at"], name="delivery_failed_idx"
            ),
        ),
    ]
