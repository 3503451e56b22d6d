from django.apps import AppConfig


class CommerceConfig(AppConfig):
    name = "opspulse.commerce"
    label = "commerce"
