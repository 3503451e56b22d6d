"""Alert pages of a store: rules (members read, admins change), history, channels; the
account-wide channels of an account (admins); and each member's own email preferences.

Every store page names the store by its public id; a rule, event or channel is named in the
query or form and looked up among that store's own, after the role check. The account-wide
channels page shows the current account (or the one a store's page links to), and its
changes name the account by its public id, like the account pages.
"""

from __future__ import annotations

from urllib.parse import urlencode
from uuid import UUID

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.dateparse import parse_datetime
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from opspulse.accounts.models import Account, Role
from opspulse.accounts.selectors import get_account_for_user, get_current_account, stores_of_account
from opspulse.alerts import actions, selectors
from opspulse.alerts.delivery import preference_for
from opspulse.alerts.forms import DESCRIPTIONS, ChannelForm, PreferenceForm, RuleForm, describe
from opspulse.alerts.models import AlertType
from opspulse.stores.models import Store
from opspulse.stores.selectors import get_store_for_admin, get_store_for_user, user_can_manage_store


def _rule_rows(store: Store) -> list[dict]:
    return [
        {"rule": rule, "summary": describe(rule.type, rule.config, store.currency)}
        for rule in selectors.rules_of_store(store)
    ]


def _render_rule_form(
    request: HttpRequest, store: Store, form: RuleForm, *, rule, rule_type: str, type_label: str
) -> HttpResponse:
    return render(
        request,
        "alerts/rule_form.html",
        {"store": store, "form": form, "rule": rule, "rule_type": rule_type,
         "type_label": type_label, "description": DESCRIPTIONS[rule_type]},
        status=400 if form.is_bound else 200,
    )


@never_cache
@login_required
@require_GET
def rules(request: HttpRequest, public_id: UUID) -> HttpResponse:
    store = get_store_for_user(request.user, public_id)
    return render(
        request,
        "alerts/rules.html",
        {
            "store": store,
            "rows": _rule_rows(store),
            "can_manage": user_can_manage_store(request.user, store),
            "types": [(value, label, DESCRIPTIONS[value]) for value, label in AlertType.choices],
        },
    )


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def create_rule(request: HttpRequest, public_id: UUID) -> HttpResponse:
    store = get_store_for_admin(request.user, public_id)
    rule_type = request.POST.get("type") or request.GET.get("type", "")
    if rule_type not in AlertType.values:
        return redirect("alert-rules", store.public_id)
    if request.method == "POST":
        form = RuleForm(request.POST, rule_type=rule_type, store=store)
        if form.is_valid():
            actions.create_rule(store=store, type=rule_type, config=form.config())
            messages.success(request, f"{AlertType(rule_type).label} rule added.")
            return redirect("alert-rules", store.public_id)
    else:
        form = RuleForm(initial=RuleForm.initial_for(rule_type), rule_type=rule_type, store=store)
    return _render_rule_form(
        request, store, form, rule=None, rule_type=rule_type, type_label=AlertType(rule_type).label
    )


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def edit_rule(request: HttpRequest, public_id: UUID) -> HttpResponse:
    store = get_store_for_admin(request.user, public_id)
    rule = selectors.get_rule(store, request.POST.get("rule") or request.GET.get("rule"))
    if request.method == "POST":
        form = RuleForm(request.POST, rule_type=rule.type, store=store)
        if form.is_valid():
            actions.update_rule(rule=rule, config=form.config())
            messages.success(request, f"{rule.get_type_display()} rule saved.")
            return redirect("alert-rules", store.public_id)
    else:
        form = RuleForm(initial=RuleForm.initial_for(rule.type, rule.config), rule_type=rule.type, store=store)
    return _render_rule_form(
        request, store, form, rule=rule, rule_type=rule.type, type_label=rule.get_type_display()
    )


@login_required
@require_POST
def toggle_rule(request: HttpRequest, public_id: UUID) -> HttpResponse:
    store = get_store_for_admin(request.user, public_id)
    rule = selectors.get_rule(store, request.POST.get("rule"))
    active = request.POST.get("active") == "1"
    actions.set_rule_active(rule=rule, active=active)
    messages.success(request, f"{rule.get_type_display()} rule {'resumed' if active else 'paused'}.")
    return redirect("alert-rules", store.public_id)


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def delete_rule(request: HttpRequest, public_id: UUID) -> HttpResponse:
    store = get_store_for_admin(request.user, public_id)
    rule = selectors.get_rule(store, request.POST.get("rule") or request.GET.get("rule"))
    if request.method == "POST":
        actions.delete_rule(rule=rule)
        messages.success(request, f"{rule.get_type_display()} rule deleted.")
        return redirect("alert-rules", store.public_id)
    return render(
        request,
        "alerts/rule_delete.html",
        {"store": store, "rule": rule, "summary": describe(rule.type, rule.config, store.currency),
         "event_count": rule.events.count()},
    )


@never_cache
@login_required
@require_GET
def history(request: HttpRequest, public_id: UUID) -> HttpResponse:
    """A page of the store's alerts, newest first (`before`: older than that event)."""
    store = get_store_for_user(request.user, public_id)
    open_only = request.GET.get("show") == "open"
    before = request.GET.get("before")
    page = selectors.history_of_store(store, open_only=open_only, before=before)
    query = {"show": "open"} if open_only else {}
    return render(
        request,
        "alerts/history.html",
        {
            "store": store,
            "events": page.events,
            "open_only": open_only,
            "paged": bool(before),
            "newest_url": "?" + urlencode(query),
            "older_url": "?" + urlencode({**query, "before": page.older}) if page.older else None,
            # Acknowledging them all covers what the first page shows and older alerts, never
            # one that fired after it was drawn.
            "acknowledge_all_until": page.events[0].fired_at.isoformat()
            if not before and any(event.acknowledged_at is None for event in page.events)
            else None,
            "can_manage": user_can_manage_store(request.user, store),
        },
    )


@login_required
@require_POST
def acknowledge(request: HttpRequest, public_id: UUID) -> HttpResponse:
    store = get_store_for_user(request.user, public_id)
    event = selectors.get_event(store, request.POST.get("event"))
    if actions.acknowledge_event(event=event, user=request.user):
        messages.success(request, "Alert acknowledged.")
    else:
        messages.info(request, "Someone acknowledged this alert already.")
    url = reverse("alert-history", args=[store.public_id])
    return redirect(url + ("?show=open" if request.POST.get("show") == "open" else ""))


@login_required
@require_POST
def acknowledge_all(request: HttpRequest, public_id: UUID) -> HttpResponse:
    store = get_store_for_user(request.user, public_id)
    try:
        until = parse_datetime(request.POST.get("until") or "")
    except ValueError:  # well formed, but no such time
        until = None
    url = reverse("alert-history", args=[store.public_id])
    if until is None or until.tzinfo is None:
        messages.error(request, "Nothing was acknowledged: reload the alert history and try again.")
        return redirect(url)
    count = actions.acknowledge_all(store=store, user=request.user, fired_until=until)
    if count:
        messages.success(request, f"{count} alert{'s' if count != 1 else ''} acknowledged.")
    else:
        messages.info(request, "Every alert was acknowledged already.")
    return redirect(url + ("?show=open" if request.POST.get("show") == "open" else ""))


# Webhook channels: a store's own on the store's page; account-wide ones (every store of the
# account) on the account's page, which names the account in the URL of every change.


def _add_channel(
    request: HttpRequest, *, account: Account, store: Store | None = None
) -> tuple[ChannelForm, str | None]:
    """Add the channel the posted form describes; return the form to show next and the new
    channel's secret (None if the form was refused)."""
    form = ChannelForm(request.POST)
    if not form.is_valid():
        return form, None
    channel = actions.create_channel(
        account=account, store=store, actor=request.user, request=request, **form.cleaned_data
    )
    return ChannelForm(), channel.secret


def _form_status(form: ChannelForm) -> int:
    return 400 if form.is_bound and form.errors else 200


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def channels(request: HttpRequest, public_id: UUID) -> HttpResponse:
    store = get_store_for_admin(request.user, public_id)
    form, new_secret = ChannelForm(), None
    if request.method == "POST":
        form, new_secret = _add_channel(request, account=store.account, store=store)
    return render(
        request,
        "alerts/channels.html",
        {
            "store": store, "form": form, "new_secret": new_secret,
            "channels": selectors.channels_of_store(store),
            "account_channels": selectors.account_wide_channels(store.account),
        },
        status=_form_status(form),
    )


@login_required
@require_POST
def remove_channel(request: HttpRequest, public_id: UUID) -> HttpResponse:
    store = get_store_for_admin(request.user, public_id)
    channel = selectors.get_channel(store, request.POST.get("channel"))
    actions.delete_channel(channel=channel, actor=request.user, request=request)
    messages.success(request, f"Channel {channel.name} removed.")
    return redirect("alert-channels", store.public_id)


def _account_channels_url(account: Account) -> str:
    return reverse("alert-account-channels") + "?" + urlencode({"account": account.public_id})


def _render_account_channels(
    request: HttpRequest, account: Account, form: ChannelForm, *, new_secret: str | None = None
) -> HttpResponse:
    return render(
        request,
        "alerts/account_channels.html",
        {
            "account": account, "form": form, "new_secret": new_secret,
            "channels": selectors.account_wide_channels_with_attempts(account),
            "stores": stores_of_account(account),
            "display_timezone": preference_for(request.user.pk, account.pk).timezone,
        },
        status=_form_status(form),
    )


@never_cache
@login_required
@require_GET
def account_channels(request: HttpRequest) -> HttpResponse:
    """The account-wide channels of the current account, or of the account a store's page links to."""
    chosen = request.GET.get("account")
    if chosen:
        account = get_account_for_user(request.user, chosen, at_least=Role.ADMIN)
    else:
        account = get_current_account(request, at_least=Role.ADMIN)
    return _render_account_channels(request, account, ChannelForm())


@never_cache
@login_required
@require_POST
def add_account_channel(request: HttpRequest, public_id: UUID) -> HttpResponse:
    account = get_account_for_user(request.user, public_id, at_least=Role.ADMIN)
    form, new_secret = _add_channel(request, account=account)
    return _render_account_channels(request, account, form, new_secret=new_secret)


@login_required
@require_POST
def remove_account_channel(request: HttpRequest, public_id: UUID) -> HttpResponse:
    account = get_account_for_user(request.user, public_id, at_least=Role.ADMIN)
    channel = selectors.get_account_wide_channel(account, request.POST.get("channel"))
    actions.delete_channel(channel=channel, actor=request.user, request=request)
    messages.success(request, f"Channel {channel.name} removed.")
    return redirect(_account_channels_url(account))


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def preferences(request: HttpRequest) -> HttpResponse:
    account = get_current_account(request, at_least=Role.MEMBER)
    preference = preference_for(request.user.pk, account.pk)
    if request.method == "POST":
        form = PreferenceForm(request.POST)
        if form.is_valid():
            actions.save_preference(user=request.user, account=account, values=form.cleaned_data)
            messages.success(request, "Alert email settings saved.")
            return redirect("alert-preferences")
    else:
        form = PreferenceForm(
            initial={
                "email_enabled": preference.email_enabled, "daily_digest": preference.daily_digest,
                "digest_hour": preference.digest_hour, "timezone": preference.timezone,
                "quiet_start": preference.quiet_start, "quiet_end": preference.quiet_end,
            }
        )
    return render(request, "alerts/preferences.html", {"account": account, "form": form},
                  status=400 if form.is_bound else 200)

