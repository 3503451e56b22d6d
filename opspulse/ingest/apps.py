from django.apps import AppConfig


class IngestConfig(AppConfig):
    name = "opspulse.ingest"
    label = "ingest"

    def ready(self) -> None:
        from opspulse.ingest import privacy as ingest_privacy
        from opspulse.privacy import holders

        # Stored webhook bodies carry customers: privacy requests find and erase them here.
        holders.register(ingest_privacy.customer_webhooks)
        holders.register_refusal_listener(ingest_privacy.ignore_request)
