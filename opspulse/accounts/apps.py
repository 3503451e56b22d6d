from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "opspulse.accounts"
    label = "accounts"
