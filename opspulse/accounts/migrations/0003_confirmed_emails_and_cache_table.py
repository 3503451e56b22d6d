"""Sign-in moves to django-allauth, which requires a confirmed email address.

Users from before it signed in with their address already, so it counts as confirmed.
The shared cache table (rate-limit counters) is made here too, so every database that
is migrated has it.
"""

from django.core.management import call_command
from django.db import migrations


def confirm_existing_addresses(apps, schema_editor):
    User = apps.get_model("accounts", "User")
    EmailAddress = apps.get_model("account", "EmailAddress")
    known = set(EmailAddress.objects.values_list("user_id", flat=True))
    EmailAddress.objects.bulk_create(
        [
            EmailAddress(user_id=user_id, email=email.lower(), verified=True, primary=True)
            for user_id, email in User.objects.values_list("pk", "email")
            if user_id not in known
        ]
    )


def create_cache_table(apps, schema_editor):
    call_command("createcachetable", database=schema_editor.connection.alias, verbosity=0)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0002_audit_event"),
        ("account", "0009_emailaddress_unique_primary_email"),
    ]

    operations = [
        migrations.RunPython(confirm_existing_addresses, migrations.RunPython.noop),
        migrations.RunPython(create_cache_table, migrations.RunPython.noop),
    ]
