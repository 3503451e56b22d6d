from django.apps import AppConfig


class MetricsConfig(AppConfig):
    name = "opspulse.metrics"
    label = "metrics"
