from django.apps import AppConfig


class PrivacyConfig(AppConfig):
    name = "opspulse.privacy"
    label = "privacy"

    def ready(self) -> None:
        from opspulse.privacy import holders

        # The orders are privacy's to read (commerce sits below it); the apps above
        # privacy (ingest's webhook bodies) register their own holders.
        holders.register(holders.orders_of)
