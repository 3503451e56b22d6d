from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "opspulse.accounts"
    label = "accounts"

    def ready(self) -> None:
        from opspulse.accounts import audit

        audit.connect()
