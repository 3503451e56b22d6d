"""A store's settings page: disconnecting it, or deleting it with its data.

Both reach the store's platform (its webhook subscriptions) through the registry, and
disconnecting stops its import (opspulse.platforms.actions), so they are served from
this layer rather than by the stores app.
"""

from __future__ import annotations

from uuid import UUID

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from opspulse.platforms import registry
from opspulse.platforms import actions as platforms
from opspulse.stores import actions
from opspulse.stores.forms import DeleteStoreForm
from opspulse.stores.models import Store
from opspulse.stores.selectors import get_store_for_admin


@never_cache
@login_required
@require_GET
def store_settings(request: HttpRequest, public_id: UUID) -> HttpResponse:
    store = get_store_for_admin(request.user, public_id)
    return _render_settings(request, store, delete_form=DeleteStoreForm(store=store))


@login_required
@require_POST
def disconnect_store(request: HttpRequest, public_id: UUID) -> HttpResponse:
    store = get_store_for_admin(request.user, public_id)
    if store.disconnected_at is not None:
        messages.info(request, f"{store.name} is already disconnected.")
        return redirect("store-settings", store.public_id)
    problem = registry.disconnect_at_platform(store)
    platforms.disconnect_store(
        store=store, actor=request.user, request=request,
        reason="(not everything could be removed at the platform)" if problem else "",
    )
    if problem:
        messages.warning(
            request, f"{store.name} is disconnected: OpsPulse deleted its credentials and stopped syncing. {problem}"
        )
    else:
        messages.success(
            request, f"{store.name} is disconnected. Its history stays here, and it can be reconnected at any time."
        )
    return redirect("dashboard", store.public_id)


@login_required
@require_POST
def delete_store(request: HttpRequest, public_id: UUID) -> HttpResponse:
    store = get_store_for_admin(request.user, public_id)
    form = DeleteStoreForm(request.POST, store=store)
    if not form.is_valid():
        return _render_settings(request, store, delete_form=form, status=400)
    problem = "" if store.disconnected_at is not None else registry.disconnect_at_platform(store)
    actions.delete_store(store=store, actor=request.user, request=request)
    deleted = f"{store.name} and all its data were deleted."
    messages.success(request, f"{deleted} {problem}" if problem else deleted)
    return redirect("home")


def _render_settings(request: HttpRequest, store: Store, *, delete_form: DeleteStoreForm, status: int = 200):
    return render(request, "stores/settings.html", {"store": store, "delete_form": delete_form}, status=status)
