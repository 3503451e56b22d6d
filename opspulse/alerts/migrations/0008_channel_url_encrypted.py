"""Alert channel URLs are encrypted at rest like their signing secrets."""

from django.db import migrations, models

from opspulse.lib import crypto


def associated_data(channel) -> str:
    return f"alerts.alertchannel:{channel.public_id}:url"


def encrypt_urls(apps, schema_editor):
    AlertChannel = apps.get_model("alerts", "AlertChannel")
    for channel in AlertChannel.objects.only("pk", "public_id", "url").iterator():
        channel.url_encrypted = crypto.encrypt(channel.url, associated_data=associated_data(channel))
        channel.save(update_fields=["url_encrypted"])


def decrypt_urls(apps, schema_editor):
    AlertChannel = apps.get_model("alerts", "AlertChannel")
    for channel in AlertChannel.objects.only("pk", "public_id", "url_encrypted").iterator():
        channel.url = crypto.decrypt(channel.url_encrypted, associated_data=associated_data(channel))
        channel.save(update_fields=["url"])


class Migration(migrations.Migration):
    dependencies = [("alerts", "0007_resolution_mail")]

    operations = [
        migrations.AddField("alertchannel", "url_encrypted", models.TextField(default=""), preserve_default=False),
        migrations.AlterField("alertchannel", "url", models.URLField(max_length=500, default="")),
        migrations.RunPython(encrypt_urls, decrypt_urls),
        migrations.RemoveField("alertchannel", "url"),
    ]
