from django.apps import AppConfig


class IngestConfig(AppConfig):
    name = "opspulse.ingest"
    label = "ingest"

    def ready(self) -> None:
        from opspulse.alerts import conditions
        from opspulse.ingest import privacy as ingest_privacy
        from opspulse.ingest import selectors
        from opspulse.privacy import holders

        # Stored webhook bodies carry customers: privacy requests find and erase them here.
        holders.register(ingest_privacy.customer_webhooks)
        holders.register_refusal_listener(ingest_privacy.ignore_request)
        # Alerts' sync check looks at the deliveries through ingest's own reads.
        conditions.read_webhooks_with(
            last_received_at=selectors.last_webhook_at, retryable_count=selectors.retryable_count
        )
