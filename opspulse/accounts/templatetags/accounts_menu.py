"""The header's account switcher, on every page of a signed-in user."""

from __future__ import annotations

from django import template

from opspulse.accounts.models import Role
from opspulse.accounts.selectors import header_accounts

register = template.Library()

# After switching, pages about "the current account" show the new one; others go home.
_STAY_ON = {"account-team": Role.MEMBER, "account-audit": Role.OWNER, "account-settings": Role.OWNER}


@register.inclusion_tag("accounts/includes/account_switcher.html", takes_context=True)
def account_menu(context) -> dict:
    request = context.get("request")
    if request is None or not request.user.is_authenticated:
        return {"accounts": []}
    accounts, current = header_accounts(request)
    match = getattr(request, "resolver_match", None)
    needed = _STAY_ON.get(getattr(match, "url_name", None))
    entries = [
        {
            "account": account,
            "is_current": account == current,
            "next": request.path if needed is not None and (needed == Role.MEMBER or account.role == Role.OWNER) else "",
        }
        for account in accounts
    ]
    return {
        "accounts": accounts,
        "entries": entries,
        "current": current,
        "is_owner": current is not None and current.role == Role.OWNER,
        "csrf_token": context.get("csrf_token"),
    }
