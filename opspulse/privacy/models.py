from __future__ import annotations

import uuid

from django.db import models


class CustomerDataRequest(models.Model):
    """A customer's request, made through the merchant, for the data OpsPulse holds about them.

    Shopify sends it as customers/data_request; the export is built when it arrives and
    the store's admins download it for the merchant to pass on.
    """

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    store = models.ForeignKey("stores.Store", on_delete=models.CASCADE, related_name="data_requests")
    # Shopify's data_request id: a duplicate delivery finds the request already recorded.
    external_id = models.CharField(max_length=64)
    customer_external_id = models.CharField(max_length=64, blank=True)
    customer_email = models.CharField(max_length=254, blank=True)
    export = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        # The table was created when the model was part of opspulse.stores.
        db_table = "stores_customerdatarequest"
        constraints = [
            models.UniqueConstraint(fields=["store", "external_id"], name="data_request_store_external_unique")
        ]

    def __str__(self) -> str:
        return f"Data request {self.external_id} for store {self.store_id}"
