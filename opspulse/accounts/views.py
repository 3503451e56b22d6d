from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from opspulse.accounts.selectors import stores_for_user
from opspulse.live.sessions import close_session_sockets


@login_required
def home(request: HttpRequest) -> HttpResponse:
    return render(request, "accounts/home.html", {"stores": stores_for_user(request.user)})


class LogoutView(auth_views.LogoutView):
    """Sign out, and close this session's open dashboards along with it."""

    def post(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        session_key = request.session.session_key
        response = super().post(request, *args, **kwargs)
        if session_key:
            close_session_sockets(session_key)
        return response
