from __future__ import annotations

import time
from datetime import date, timedelta
from uuid import UUID

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from opspulse.accounts.forms import AccountNameForm
from opspulse.accounts.models import Role, role_at_least
from opspulse.accounts.selectors import (
    current_account,
    invitations_for_user,
    stores_of_account,
)
from opspulse.ingest import actions as ingest
from opspulse.ingest import selectors as ingest_selectors
from opspulse.live import fragments, overview
from opspulse.live.panels import ALERTS_ID, PANEL_IDS, TOTALS_ID, tile_id
from opspulse.metrics import selectors as metric_selectors
from opspulse.platforms.models import Backfill, SyncHealth
from opspulse.stores.selectors import get_store_for_user, user_can_manage_store


@never_cache
@login_required
def home(request: HttpRequest) -> HttpResponse:
    # Before the first read: the overview's socket uses it to tell whether the page is still current.
    rendered_at = time.time()
    account = current_account(request)
    invitations = list(invitations_for_user(request.user))
    if account is None:
        return render(request, "accounts/no_account.html", {"form": AccountNameForm(), "invitations": invitations})
    stores = list(stores_of_account(account))
    # One live tile per store, the per-currency totals and the stores' latest alerts; the
    # overview's socket keeps them current.
    rendered = overview.render_overview(
        stores, oob=False, tz=overview.viewer_timezone(request.user.pk, account.pk)
    )
    return render(
        request,
        "accounts/home.html",
        {
            "account": account,
            "stores": stores,
            "can_manage_stores": role_at_least(account.role, Role.ADMIN),
            "invitations": invitations,
            "overview_tiles": [rendered[tile_id(store)] for store in stores],
            "overview_totals": rendered[TOTALS_ID],
            "overview_alerts": rendered[ALERTS_ID],
            "overview_websocket_path": f"/ws/overview/?rendered_at={rendered_at:.3f}",
        },
    )


@never_cache
@login_required
def dashboard(request: HttpRequest, public_id: UUID) -> HttpResponse:
    # Before the first read: the socket uses it to tell whether the page is still current.
    rendered_at = time.time()
    store = get_store_for_user(request.user, public_id)
    can_manage_store = user_can_manage_store(request.user, store)
    panels = fragments.render_panels(store, PANEL_IDS, oob=False)
    daily, _ = _daily_chart(store, request.GET)
    return render(
        request,
        "live/dashboard.html",
        {
            "store": store,
            "can_manage_store": can_manage_store,
            "backfill": Backfill.objects.filter(store=store).first(),
            "sync": sync_status(store),
            "failed_deliveries": failed_deliveries(store, with_details=can_manage_store),
            "panels": {panel_id.replace("-", "_"): html for panel_id, html in panels.items()},
            "daily_chart": daily,
            "websocket_path": f"/ws/stores/{store.public_id}/?rendered_at={rendered_at:.3f}",
            "snapshot_url": reverse("dashboard-panels", args=[store.public_id]),
        },
    )


@never_cache
@login_required
def panels(request: HttpRequest, public_id: UUID) -> HttpResponse:
    """Return every panel as out-of-band fragments: the page's fallback while its socket is down."""
    store = get_store_for_user(request.user, public_id)
    rendered = fragments.render_panels(store, PANEL_IDS, oob=True)
    return HttpResponse("".join(rendered.values()), content_type="text/html; charset=utf-8")


# No store has sales before this; it also keeps the period before a range within the calendar.
EARLIEST_DAY = date(2000, 1, 1)


class DailyRangeForm(forms.Form):
    """The daily charts' range: the last 7, 30 or 90 days, or two local dates."""

    days = forms.TypedChoiceField(
        choices=[(days, f"{days} days") for days in fragments.DAILY_PRESETS], coerce=int, required=False
    )
    start = forms.DateField(required=False)
    end = forms.DateField(required=False)

    def __init__(self, *args, today: date, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.today = today

    def clean(self) -> dict:
        data = super().clean()
        if self.errors:
            return data
        if data.get("days"):
            data["first"] = self.today - timedelta(days=data["days"] - 1)
            data["last"] = self.today
            return data
        start, end = data.get("start"), data.get("end")
        if start is None and end is None:
            raise forms.ValidationError("Choose a number of days or a start and an end date.")
        if start is None or end is None:
            raise forms.ValidationError("A custom range needs both a start and an end date.")
        if start > end:
            raise forms.ValidationError("The start date is after the end date.")
        if end > self.today:
            raise forms.ValidationError("The range cannot end after today (store time).")
        if start < EARLIEST_DAY:
            raise forms.ValidationError(f"The range cannot start before {EARLIEST_DAY:%B %-d, %Y}.")
        if (end - start).days >= metric_selectors.MAX_RANGE_DAYS:
            raise forms.ValidationError(f"A range can span at most {metric_selectors.MAX_RANGE_DAYS} days.")
        data["first"], data["last"] = start, end
        return data


def _daily_chart(store, params) -> tuple[str, bool]:
    """The daily chart for the range in `params` (the last 7 days without one); and
    whether the range given was valid."""
    today = metric_selectors.local_day(store).start.date()
    default = {"first": today - timedelta(days=fragments.DAILY_PRESETS[0] - 1), "last": today,
               "preset": fragments.DAILY_PRESETS[0]}
    if not any(params.get(name) for name in ("days", "start", "end")):
        return fragments.render_daily_chart(store, **default), True
    form = DailyRangeForm(params, today=today)
    if not form.is_valid():
        errors = [error for errors in form.errors.values() for error in errors]
        return fragments.render_daily_chart(store, **default, errors=errors), False
    data = form.cleaned_data
    return fragments.render_daily_chart(store, first=data["first"], last=data["last"], preset=data.get("days")), True


@never_cache
@login_required
def daily_chart(request: HttpRequest, public_id: UUID) -> HttpResponse:
    """The daily chart panel for a range (`days`=7|30|90, or `start` and `end`), read from the day buckets."""
    store = get_store_for_user(request.user, public_id)
    html, valid = _daily_chart(store, request.GET)
    # 422 keeps the message in the panel: the page swaps it in (see app.js).
    return HttpResponse(html, status=200 if valid else 422, content_type="text/html; charset=utf-8")


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
    if integration is None or not integration.app_installed or store.disconnected_at is not None:
        return None
    return {"last_webhook": ingest_selectors.last_webhook_at(store.pk), "health": SyncHealth.objects.filter(store=store).first()}


# The failed deliveries an admin sees listed; the count covers them all.
FAILED_DELIVERIES_SHOWN = 20


def failed_deliveries(store, *, with_details: bool) -> dict | None:
    """The store's failed deliveries that can be retried: their count, and for admins the
    latest ones' topic, time and reason (never their body)."""
    failed = ingest_selectors.retryable_deliveries().filter(store=store)
    count = failed.count()
    if not count:
        return None
    latest = (
        list(
            failed.order_by("-processed_at", "-pk").values("delivery_key", "topic", "received_at", "processed_at",
                                                           "attempts", "error")[:FAILED_DELIVERIES_SHOWN]
        )
        if with_details
        else []
    )
    return {"count": count, "latest": latest}


@never_cache
@login_required
@require_POST
def retry_deliveries(request: HttpRequest, public_id: UUID) -> HttpResponse:
    """An owner's or admin's retry of one failed delivery (`delivery`: its key) or of all of them."""
    store = get_store_for_user(request.user, public_id)
    if not user_can_manage_store(request.user, store):
        raise PermissionDenied("Retrying deliveries needs the admin role")
    key = request.POST.get("delivery", "")
    retried = ingest.retry_failed_deliveries(store_ids=[store.pk], delivery_keys=[key] if key else None)
    if retried:
        messages.success(request, f"{retried} failed webhook{'s' if retried != 1 else ''} queued again.")
    else:
        messages.info(request, "No failed webhook to retry: it was retried already.")
    return redirect("dashboard", public_id=store.public_id)
