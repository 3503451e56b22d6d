from django.apps import AppConfig


class LiveConfig(AppConfig):
    name = "opspulse.live"
    label = "live"
