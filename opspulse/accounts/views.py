from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from opspulse.accounts.selectors import stores_for_user
from opspulse.lib.mailbox import stored_mails


@login_required
def home(request: HttpRequest) -> HttpResponse:
    return render(request, "accounts/home.html", {"stores": stores_for_user(request.user)})


def dev_mailbox(request: HttpRequest) -> HttpResponse:
    """The mails OpsPulse sent, for development only (the route exists only with DEBUG)."""
    if not settings.DEBUG:
        raise Http404
    return render(request, "accounts/dev_mailbox.html", {"mails": stored_mails()})
