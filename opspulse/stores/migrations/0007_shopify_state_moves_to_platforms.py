"""ApiCallSlot moves to the Shopify app (opspulse.platforms.shopify), table and all:
state only, no SQL."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("stores", "0006_data_requests_move_to_privacy"),
        ("shopify", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="ApiCallSlot")],
        ),
    ]
