"""Shopify's own state. What every provider keeps alike is in opspulse.platforms.models."""

from __future__ import annotations

from django.db import models


class ApiCallSlot(models.Model):
    """When a store's next call to Shopify's API may start.

    Every web and worker process reserves its call here (opspulse.platforms.shopify.client),
    so the calls to one store stay spaced out across all of them. The table keeps the
    name it had in the stores app.
    """

    store = models.OneToOneField("stores.Store", on_delete=models.CASCADE, primary_key=True, related_name="+")
    next_at = models.DateTimeField()

    class Meta:
        db_table = "stores_apicallslot"
