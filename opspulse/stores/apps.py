from django.apps import AppConfig


class StoresConfig(AppConfig):
    name = "opspulse.stores"
    label = "stores"

    def ready(self) -> None:
        from opspulse.lib import encrypted_fields
        from opspulse.stores.models import Integration

        encrypted_fields.register(*(
            encrypted_fields.column(
                f"stores.Integration.{field.removesuffix('_encrypted')}", Integration, field,
                lambda row, field=field: Integration.associated_data(row.store_id, field),
            )
            for field in Integration.ENCRYPTED_FIELDS
        ))
