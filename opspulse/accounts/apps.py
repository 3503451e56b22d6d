from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "opspulse.accounts"
    label = "accounts"

    def ready(self) -> None:
        from opspulse.accounts import audit

        audit.connect()
        register_encrypted_fields()


def register_encrypted_fields() -> None:
    """The two-factor secrets allauth keeps in an authenticator's data, encrypted by
    opspulse.accounts.adapter.MFAAdapter: the TOTP key, and the recovery codes' seed (and
    the codes themselves for recovery codes brought over from elsewhere)."""
    from allauth.mfa.models import Authenticator

    from opspulse.accounts.adapter import MFAAdapter
    from opspulse.lib import encrypted_fields

    def recovery_values(row) -> list[str]:
        return [row.data.get("seed", ""), *row.data.get("migrated_codes", [])]

    def write_recovery_values(row, values: list[str]) -> None:
        if row.data.get("seed"):
            row.data["seed"] = values[0]
        if "migrated_codes" in row.data:
            row.data["migrated_codes"] = values[1:]

    def write_secret(row, values: list[str]) -> None:
        row.data["secret"] = values[0]

    encrypted_fields.register(
        encrypted_fields.EncryptedField(
            name="mfa.Authenticator.totp_secret",
            rows=lambda: Authenticator.objects.filter(type=Authenticator.Type.TOTP),
            read=lambda row: [row.data.get("secret", "")],
            write=write_secret,
            associated_data=lambda row: MFAAdapter.associated_data,
            update_fields=("data",),
        ),
        encrypted_fields.EncryptedField(
            name="mfa.Authenticator.recovery_codes",
            rows=lambda: Authenticator.objects.filter(type=Authenticator.Type.RECOVERY_CODES),
            read=recovery_values,
            write=write_recovery_values,
            associated_data=lambda row: MFAAdapter.associated_data,
            update_fields=("data",),
        ),
    )
