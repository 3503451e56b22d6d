from django.apps import AppConfig


class IngestConfig(AppConfig):
    name = "opspulse.ingest"
    label = "ingest"
