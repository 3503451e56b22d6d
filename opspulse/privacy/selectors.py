"""Reads of a store's customer data requests, for its admins."""

from __future__ import annotations

from uuid import UUID

from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import Http404

from opspulse.privacy.models import CustomerDataRequest
from opspulse.stores.models import Store


def data_requests_of(store: Store) -> QuerySet[CustomerDataRequest]:
    """Return the store's data requests, newest first."""
    return store.data_requests.order_by("-created_at", "-pk")


def get_data_request(store: Store, public_id: UUID | str) -> CustomerDataRequest:
    """Return the store's data request with `public_id`, else raise Http404 (another store's too)."""
    try:
        return store.data_requests.get(public_id=public_id)
    except (CustomerDataRequest.DoesNotExist, ValidationError):
        raise Http404("No such data request") from None
