"""The header's store switcher: the current account's stores, on every signed-in page."""

from __future__ import annotations

from django import template

from opspulse.accounts.selectors import header_accounts, stores_of_account

register = template.Library()


@register.inclusion_tag("live/overview/store_switcher.html", takes_context=True)
def store_switcher(context) -> dict:
    request = context.get("request")
    if request is None or not request.user.is_authenticated:
        return {"stores": []}
    _, account = header_accounts(request)
    if account is None:
        return {"stores": []}
    match = getattr(request, "resolver_match", None)
    current_id = str((getattr(match, "kwargs", None) or {}).get("public_id", ""))
    stores = list(stores_of_account(account))
    entries = [{"store": store, "is_current": str(store.public_id) == current_id} for store in stores]
    current = next((entry["store"] for entry in entries if entry["is_current"]), None)
    on_home = getattr(match, "url_name", None) == "home"
    return {"stores": stores, "entries": entries, "current": current, "on_home": on_home}
