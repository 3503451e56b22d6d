from django.apps import AppConfig


class AlertsConfig(AppConfig):
    name = "opspulse.alerts"
    label = "alerts"

    def ready(self) -> None:
        from opspulse.alerts.models import AlertChannel
        from opspulse.lib import encrypted_fields

        encrypted_fields.register(*(
            encrypted_fields.column(
                f"alerts.AlertChannel.{field}", AlertChannel, f"{field}_encrypted",
                lambda row, field=field: row.associated_data(field),
            )
            for field in ("secret", "url")
        ))
