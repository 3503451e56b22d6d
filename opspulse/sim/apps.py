from django.apps import AppConfig


class SimConfig(AppConfig):
    name = "opspulse.sim"
    label = "sim"
