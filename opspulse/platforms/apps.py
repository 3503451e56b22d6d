from django.apps import AppConfig


class PlatformsConfig(AppConfig):
    name = "opspulse.platforms"
    label = "platforms"
