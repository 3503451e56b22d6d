from __future__ import annotations

from uuid import UUID

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from opspulse.accounts.audit import record_event
from opspulse.accounts.models import AuditKind
from opspulse.privacy import selectors
from opspulse.stores.selectors import get_store_for_admin


@never_cache
@login_required
@require_GET
def data_requests(request: HttpRequest, public_id: UUID) -> HttpResponse:
    store = get_store_for_admin(request.user, public_id)
    return render(
        request,
        "privacy/data_requests.html",
        {
            "store": store,
            "data_requests": selectors.data_requests_of(store),
            "export_retention_days": settings.PRIVACY_EXPORT_RETENTION_DAYS,
        },
    )


@never_cache
@login_required
@require_GET
def download_data_request(request: HttpRequest, public_id: UUID) -> HttpResponse:
    """Return a data request's export as a JSON file.

    The request is named in the query, and looked up among the store's own.
    """
    store = get_store_for_admin(request.user, public_id)
    data_request = selectors.get_data_request(store, request.GET.get("id", ""))
    record_event(
        AuditKind.DATA_EXPORT_DOWNLOADED, user=request.user, request=request, account=store.account,
        store=store.name, store_id=str(store.public_id), data_request=data_request.external_id,
        data_request_id=str(data_request.public_id),
    )
    response = JsonResponse(data_request.export, json_dumps_params={"indent": 2})
    response["Content-Disposition"] = f'attachment; filename="data-request-{data_request.external_id}.json"'
    return response
