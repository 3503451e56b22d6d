from django.apps import AppConfig


class AlertsConfig(AppConfig):
    name = "opspulse.alerts"
    label = "alerts"

    def ready(self) -> None:
        from opspulse.alerts.actions import AlertCheck
        from opspulse.alerts.models import AlertChannel
        from opspulse.commerce.actions import watch_batches
        from opspulse.lib import encrypted_fields

        encrypted_fields.register(*(
            encrypted_fields.column(
                f"alerts.AlertChannel.{field}", AlertChannel, f"{field}_encrypted",
                lambda row, field=field: row.associated_data(field),
            )
            for field in ("secret", "url")
        ))
        # Every batch of orders and stock commerce applies is checked against the rules.
        watch_batches(AlertCheck)
