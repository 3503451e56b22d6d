from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    # Built without locking writes to the table: it may be large already.
    atomic = False

    dependencies = [
        ("commerce", "0006_dashboard_read_indexes"),
        ("stores", "0003_customer_data_requests"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="cart",
            index=models.Index(fields=["store", "platform_created_at"], name="cart_store_created_idx"),
        ),
    ]
