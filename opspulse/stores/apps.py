from django.apps import AppConfig


class StoresConfig(AppConfig):
    name = "opspulse.stores"
    label = "stores"
