"""ApiCallSlot moves here from the stores app, table and all: state only, no SQL."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("stores", "0002_shopify_app_tokens"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="ApiCallSlot",
                    fields=[
                        (
                            "store",
                            models.OneToOneField(
                                on_delete=django.db.models.deletion.CASCADE,
                                primary_key=True,
                                related_name="+",
                                serialize=False,
                                to="stores.store",
                            ),
                        ),
                        ("next_at", models.DateTimeField()),
                    ],
                    options={"db_table": "stores_apicallslot"},
                ),
            ],
        ),
    ]
