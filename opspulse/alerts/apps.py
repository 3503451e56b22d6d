from django.apps import AppConfig


class AlertsConfig(AppConfig):
    name = "opspulse.alerts"
    label = "alerts"
