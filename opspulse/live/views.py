from __future__ import annotations

from uuid import UUID

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.cache import never_cache

from opspulse.accounts.selectors import get_store_for_user, user_can_manage_store
from opspulse.commerce.models import Backfill, SyncHealth
from opspulse.ingest.models import WebhookDelivery
from opspulse.live import fragments


@never_cache
@login_required
def dashboard(request: HttpRequest, public_id: UUID) -> HttpResponse:
    store = get_store_for_user(request.user, public_id)
    panels = fragments.render_panels(store, fragments.PANEL_IDS, oob=False)
    return render(
        request,
        "live/dashboard.html",
        {
            "store": store,
            "can_manage_store": user_can_manage_store(request.user, store),
            "backfill": Backfill.objects.filter(store=store).first(),
            "sync": sync_status(store),
            "panels": {panel_id.replace("-", "_"): html for panel_id, html in panels.items()},
            "websocket_path": f"/ws/stores/{store.public_id}/",
            "snapshot_url": reverse("dashboard-panels", args=[store.public_id]),
        },
    )


@never_cache
@login_required
def panels(request: HttpRequest, public_id: UUID) -> HttpResponse:
    """Return every panel as out-of-band fragments: the page's fallback while its socket is down."""
    store = get_store_for_user(request.user, public_id)
    rendered = fragments.render_panels(store, fragments.PANEL_IDS, oob=True)
    return HttpResponse("".join(rendered.values()), content_type="text/html; charset=utf-8")


@never_cache
@login_required
def backfill_progress(request: HttpRequest, public_id: UUID) -> HttpResponse:
    """The history import's progress bar, polled by the dashboard while the import runs."""
    store = get_store_for_user(request.user, public_id)
    backfill = Backfill.objects.filter(store=store).first()
    return render(request, "live/includes/backfill_progress.html", {"store": store, "backfill": backfill})


def sync_status(store) -> dict | None:
    """For a store connected through the Shopify app: its last webhook and reconciliation."""
    integration = getattr(store, "integration", None)
    if integration is None or not integration.app_installed:
        return None
    last_webhook = (
        WebhookDelivery.objects.filter(store=store).order_by("-received_at").values_list("received_at", flat=True).first()
    )
    return {"last_webhook": last_webhook, "health": SyncHealth.objects.filter(store=store).first()}
