"""Store and integration writes."""

from __future__ import annotations

from django.db import transaction

from opspulse.core import crypto
from opspulse.stores.models import Integration


def reencrypt_credentials(*, batch_size: int = 500) -> int:
    """Re-encrypt every integration credential not yet under the current key; return the count."""
    current = next(iter(crypto.key_ring()))
    changed = 0
    ids = list(Integration.objects.order_by("pk").values_list("pk", flat=True))
    for start in range(0, len(ids), batch_size):
        with transaction.atomic():
            for integration in Integration.objects.select_for_update().filter(pk__in=ids[start : start + batch_size]):
                fields = [
                    field
                    for field in Integration.ENCRYPTED_FIELDS
                    if getattr(integration, field) and crypto.current_kid(getattr(integration, field)) != current
                ]
                for field in fields:
                    integration._set(field, integration._get(field))
                if fields:
                    integration.save(update_fields=fields)
                    changed += 1
    return changed
