"""Forms for alert rules, email preferences and webhook channels.

A rule form shows only its type's settings and turns them into the rule's `config`
(see opspulse.alerts.models.Alert).
"""

from __future__ import annotations

import zoneinfo
from datetime import time
from decimal import Decimal
from typing import Any

from django import forms
from django.conf import settings

from opspulse.alerts.models import RECENT_ORDER_MINUTES, AlertType, ChannelKind
from opspulse.lib import http
from opspulse.lib.formatting import format_money

INPUT_CLASS = (
    "block w-full rounded-md border border-slate-300 bg-white px-3 py-2 text-sm text-slate-900 shadow-sm"
    " focus:border-indigo-500 focus:outline-none focus:ring-1 focus:ring-indigo-500"
    " dark:border-slate-600 dark:bg-slate-900 dark:text-slate-100"
)
CHECK_CLASS = "h-4 w-4 rounded border-slate-300 text-indigo-600 focus:ring-indigo-500 dark:border-slate-600 dark:bg-slate-900"


def style_inputs(form: forms.Form) -> None:
    for field in form.fields.values():
        widget = field.widget
        is_check = isinstance(widget, (forms.CheckboxInput, forms.CheckboxSelectMultiple))
        widget.attrs["class"] = CHECK_CLASS if is_check else INPUT_CLASS


WEEKDAYS = [(0, "Mon"), (1, "Tue"), (2, "Wed"), (3, "Thu"), (4, "Fri"), (5, "Sat"), (6, "Sun")]

# The settings each rule type shows, in order.
FIELDS_BY_TYPE: dict[str, tuple[str, ...]] = {
    AlertType.HIGH_VALUE_ORDER: ("amount", "window_minutes"),
    AlertType.LOW_STOCK: ("stock_threshold", "sku", "location"),
    AlertType.NO_ORDERS: ("hours", "weekdays", "opens_at", "closes_at"),
    AlertType.REVENUE_DROP: ("percent", "minimum"),
    AlertType.SYNC_TROUBLE: ("integration_error", "webhook_hours", "failed_deliveries"),
}

DESCRIPTIONS = {
    AlertType.HIGH_VALUE_ORDER: "An order at or above an amount.",
    AlertType.LOW_STOCK: "An item at or below a stock level. Fires once, resolves when restocked.",
    AlertType.NO_ORDERS: "No order for a number of hours while the store is open.",
    AlertType.REVENUE_DROP: "Today's revenue down against yesterday by the same time.",
    AlertType.SYNC_TROUBLE: "The store's connection fails, webhooks stop arriving or cannot be processed.",
}


class RuleForm(forms.Form):
    amount = forms.DecimalField(
        label="Order total at least", min_value=Decimal("0.01"), max_digits=14, decimal_places=2,
    )
    window_minutes = forms.IntegerField(
        label="Only orders placed in the last (minutes)", min_value=1, max_value=7 * 24 * 60, required=False,
        help_text=(
            f"An order that reaches OpsPulse later (a delayed webhook, an imported one) does not fire. "
            f"Empty: {RECENT_ORDER_MINUTES}."
        ),
    )
    stock_threshold = forms.IntegerField(
        label="Stock at or below", min_value=0, max_value=1_000_000,
        help_text="Fires once when an item reaches this level, and resolves when it is restocked above it.",
    )
    sku = forms.CharField(label="Only this SKU", max_length=100, required=False, help_text="Leave empty for every item.")
    location = forms.CharField(
        label="Only this location id", max_length=64, required=False, help_text="Leave empty for every location.",
    )
    hours = forms.IntegerField(
        label="Hours without an order", min_value=1, max_value=168,
        help_text="Counted in opening hours only.",
    )
    weekdays = forms.TypedMultipleChoiceField(
        label="Open on", choices=WEEKDAYS, coerce=int, widget=forms.CheckboxSelectMultiple,
    )
    opens_at = forms.TimeField(label="Opens at", widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"))
    closes_at = forms.TimeField(label="Closes at", widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"))
    percent = forms.IntegerField(
        label="Revenue down by at least (%)", min_value=1, max_value=100,
    )
    minimum = forms.DecimalField(
        label="Only when yesterday's revenue by this time was at least", min_value=Decimal("0"), max_digits=14,
        decimal_places=2, required=False, help_text="Avoids alerts on quiet early hours. Leave empty for any amount.",
    )
    integration_error = forms.BooleanField(label="When the store's connection reports an error", required=False)
    webhook_hours = forms.IntegerField(
        label="When no webhook arrives for (hours)", min_value=0, max_value=168, required=False,
        help_text="0 or empty: not watched.",
    )
    failed_deliveries = forms.BooleanField(
        label="When webhooks cannot be processed", required=False,
        help_text="Until they are retried from the dashboard and processed.",
    )

    def __init__(self, *args: Any, rule_type: str, store, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.rule_type = AlertType(rule_type)
        self.store = store
        for name in list(self.fields):
            if name not in FIELDS_BY_TYPE[self.rule_type]:
                del self.fields[name]
        if "amount" in self.fields:
            self.fields["amount"].label = f"Order total at least ({store.currency})"
        if "minimum" in self.fields:
            self.fields["minimum"].label = (
                f"Only when yesterday's revenue by this time was at least ({store.currency})"
            )
        if "opens_at" in self.fields:
            self.fields["hours"].help_text = f"Counted in opening hours only, in the store's time ({store.timezone})."
        style_inputs(self)

    @classmethod
    def initial_for(cls, rule_type: str, config: dict[str, Any] | None = None) -> dict[str, Any]:
        config = config or {}
        if rule_type == AlertType.HIGH_VALUE_ORDER:
            return {"amount": config.get("threshold", "500.00"),
                    "window_minutes": config.get("window_minutes", RECENT_ORDER_MINUTES)}
        if rule_type == AlertType.LOW_STOCK:
            return {"stock_threshold": config.get("threshold", 5), "sku": config.get("sku", ""),
                    "location": config.get("location", "")}
        if rule_type == AlertType.NO_ORDERS:
            return {"hours": config.get("hours", 3), "weekdays": config.get("weekdays", [0, 1, 2, 3, 4]),
                    "opens_at": config.get("start", "09:00"), "closes_at": config.get("end", "18:00")}
        if rule_type == AlertType.REVENUE_DROP:
            return {"percent": config.get("percent", 30), "minimum": config.get("minimum") or None}
        return {"integration_error": config.get("integration_error", True),
                "webhook_hours": config.get("webhook_hours", 6),
                "failed_deliveries": config.get("failed_deliveries", True)}

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if self.rule_type == AlertType.NO_ORDERS:
            opens, closes = data.get("opens_at"), data.get("closes_at")
            if opens is not None and closes is not None and opens >= closes:
                self.add_error("closes_at", "Closing time must be after opening time (same day).")
        if self.rule_type == AlertType.SYNC_TROUBLE:
            if not any(data.get(name) for name in ("integration_error", "webhook_hours", "failed_deliveries")):
                raise forms.ValidationError(
                    "Choose at least one thing to watch: connection errors, missing webhooks or failed webhooks."
                )
        return data

    def config(self) -> dict[str, Any]:
        data = self.cleaned_data
        if self.rule_type == AlertType.HIGH_VALUE_ORDER:
            return {"threshold": str(data["amount"].quantize(Decimal("0.01"))),
                    "window_minutes": data.get("window_minutes") or RECENT_ORDER_MINUTES}
        if self.rule_type == AlertType.LOW_STOCK:
            return {"threshold": data["stock_threshold"], "sku": data["sku"].strip(), "location": data["location"].strip()}
        if self.rule_type == AlertType.NO_ORDERS:
            return {"hours": data["hours"], "weekdays": sorted(data["weekdays"]),
                    "start": _hhmm(data["opens_at"]), "end": _hhmm(data["closes_at"])}
        if self.rule_type == AlertType.REVENUE_DROP:
            minimum = data.get("minimum")
            return {"percent": data["percent"], "minimum": str(minimum.quantize(Decimal("0.01"))) if minimum is not None else ""}
        return {"integration_error": bool(data.get("integration_error")),
                "webhook_hours": data.get("webhook_hours") or 0,
                "failed_deliveries": bool(data.get("failed_deliveries"))}


def _hhmm(value: time) -> str:
    return value.strftime("%H:%M")


def _money(amount: Any, currency: str) -> str:
    try:
        return format_money(Decimal(str(amount)), currency)
    except (ArithmeticError, ValueError):
        return f"{amount if amount is not None else '?'} {currency}"


def describe(rule_type: str, config: dict[str, Any], currency: str) -> str:
    """One line saying what a rule watches, for lists and mails."""
    if rule_type == AlertType.HIGH_VALUE_ORDER:
        window = config.get("window_minutes", RECENT_ORDER_MINUTES)
        return f"Orders of {_money(config.get('threshold'), currency)} or more, placed in the last {window} min"
    if rule_type == AlertType.LOW_STOCK:
        scope = []
        if config.get("sku"):
            scope.append(f"SKU {config['sku']}")
        if config.get("location"):
            scope.append(f"location {config['location']}")
        return f"Stock at or below {config.get('threshold', 5)}" + (f" ({', '.join(scope)})" if scope else " (every item)")
    if rule_type == AlertType.NO_ORDERS:
        days = [label for number, label in WEEKDAYS if number in config.get("weekdays", [])]
        return (
            f"No order for {config.get('hours', '?')} h, open {', '.join(days) or 'no day'} "
            f"{config.get('start', '?')}–{config.get('end', '?')}"
        )
    if rule_type == AlertType.REVENUE_DROP:
        minimum = f", once yesterday reached {_money(config['minimum'], currency)}" if config.get("minimum") else ""
        return f"Revenue down {config.get('percent', '?')}% or more on yesterday by this time{minimum}"
    watched = []
    if config.get("integration_error"):
        watched.append("connection errors")
    if config.get("webhook_hours"):
        watched.append(f"no webhook for {config['webhook_hours']} h")
    if config.get("failed_deliveries", True):
        watched.append("failed webhooks")
    if len(watched) > 2:
        watched = [", ".join(watched[:-1]), watched[-1]]
    return "Sync: " + (" and ".join(watched) or "nothing watched")


TIMEZONES = sorted(zoneinfo.available_timezones())


class PreferenceForm(forms.Form):
    email_enabled = forms.BooleanField(label="Email me this account's alerts", required=False)
    daily_digest = forms.BooleanField(
        label="One daily digest instead of a mail per alert", required=False,
    )
    digest_hour = forms.TypedChoiceField(
        label="Send the digest at", choices=[(hour, f"{hour:02d}:00") for hour in range(24)], coerce=int,
    )
    timezone = forms.ChoiceField(label="My timezone", choices=[(name, name) for name in TIMEZONES])
    quiet_start = forms.TimeField(
        label="Quiet hours from", required=False, widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
    )
    quiet_end = forms.TimeField(
        label="until", required=False, widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        start, end = data.get("quiet_start"), data.get("quiet_end")
        if (start is None) != (end is None):
            raise forms.ValidationError("Give both ends of the quiet hours, or neither.")
        if start is not None and start == end:
            self.add_error("quiet_end", "Quiet hours must end at another time than they start.")
        return data

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        style_inputs(self)


class ChannelForm(forms.Form):
    kind = forms.ChoiceField(label="Kind", choices=ChannelKind.choices)
    name = forms.CharField(label="Name", max_length=100)
    url = forms.URLField(label="URL", max_length=500, assume_scheme="https")

    def clean_url(self) -> str:
        url = self.cleaned_data["url"]
        if settings.PRODUCTION and not url.startswith("https://"):
            raise forms.ValidationError("Use an https:// URL.")
        try:
            http.check_url(url)
        except http.BlockedAddress as exc:
            raise forms.ValidationError(f"OpsPulse cannot post there: {exc}.") from None
        return url

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        style_inputs(self)

