"""Signing in through allauth's forms, password reset links, and two-factor codes."""

from __future__ import annotations

import re
import time

from allauth.mfa.totp.internal import auth as totp
from django.contrib.auth import SESSION_KEY
from django.urls import reverse

PASSWORD = "correct horse battery staple"


def sign_in(client, email="maya@example.com", password=PASSWORD, *, remember=False, **meta):
    data = {"login": email, "password": password} | ({"remember": "on"} if remember else {})
    return client.post(reverse("account_login"), data, **meta)


def signed_in(client) -> bool:
    return SESSION_KEY in client.session


def reset_link(mail) -> str:
    return re.search(r"https?://[^/\s]+(/accounts/password/reset/key/[^\s]+/)", mail.body).group(1)


def reauthenticate(client, password=PASSWORD):
    response = client.post(reverse("account_reauthenticate"), {"password": password})
    assert response.status_code == 302


def current_code(secret: str, offset: int = 0) -> str:
    counter = int(time.time()) // 30 + offset
    return totp.format_hotp_value(totp.hotp_value(secret, counter))


def turn_on_totp(client) -> str:
    reauthenticate(client)
    client.get(reverse("mfa_activate_totp"))
    secret = client.session[totp.SECRET_SESSION_KEY]
    response = client.post(reverse("mfa_activate_totp"), {"code": current_code(secret)})
    assert response.status_code == 302
    return secret
