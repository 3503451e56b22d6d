import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0004_invitations_and_member_ids'),
        ('alerts', '0004_dashboard_read_indexes'),
        ('stores', '0003_customer_data_requests'),
    ]

    operations = [
        # Existing channels belong to their store's account before the column becomes required.
        migrations.AddField(
            model_name='alertchannel',
            name='account',
            field=models.ForeignKey(null=True, on_delete=django.db.models.deletion.CASCADE, related_name='alert_channels', to='accounts.account'),
        ),
        migrations.RunSQL(
            "UPDATE alerts_alertchannel AS channel SET account_id = store.account_id"
            " FROM stores_store AS store WHERE store.id = channel.store_id AND channel.account_id IS NULL",
            migrations.RunSQL.noop,
        ),
        migrations.AlterField(
            model_name='alertchannel',
            name='account',
            field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='alert_channels', to='accounts.account'),
        ),
        # Without a store, a channel gets the alerts of every store of its account.
        migrations.AlterField(
            model_name='alertchannel',
            name='store',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='alert_channels', to='stores.store'),
        ),
    ]
