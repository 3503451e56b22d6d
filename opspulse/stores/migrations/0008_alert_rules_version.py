from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('stores', '0007_shopify_state_moves_to_platforms'),
    ]

    operations = [
        migrations.AddField(
            model_name='store',
            name='alert_rules_version',
            field=models.PositiveIntegerField(default=0, editable=False),
        ),
    ]
