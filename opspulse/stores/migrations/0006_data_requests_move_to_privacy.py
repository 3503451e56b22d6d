# The customer data requests move to opspulse.privacy, keeping their table: only
# Django's state changes here (privacy.0001 adds the model to privacy's state).

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("stores", "0005_store_history_starts_at"),
        ("privacy", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="CustomerDataRequest")],
            database_operations=[],
        ),
    ]
