# The customer data requests move from opspulse.stores, keeping their table: only
# Django's state changes here (stores.0006 drops the model from stores' state).

import uuid

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    # The model's table is created by stores.0003; no later stores migration is needed.
    dependencies = [
        ("stores", "0003_customer_data_requests"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="CustomerDataRequest",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("public_id", models.UUIDField(default=uuid.uuid4, editable=False, unique=True)),
                        ("external_id", models.CharField(max_length=64)),
                        ("customer_external_id", models.CharField(blank=True, max_length=64)),
                        ("customer_email", models.CharField(blank=True, max_length=254)),
                        ("export", models.JSONField()),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                        (
                            "store",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="data_requests",
                                to="stores.store",
                            ),
                        ),
                    ],
                    options={
                        "db_table": "stores_customerdatarequest",
                        "constraints": [
                            models.UniqueConstraint(
                                fields=("store", "external_id"), name="data_request_store_external_unique"
                            )
                        ],
                    },
                ),
            ],
            database_operations=[],
        ),
    ]
