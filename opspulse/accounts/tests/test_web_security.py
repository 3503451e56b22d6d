"""Headers, cookies and CSRF on every page, and pages that run without inline code."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse

from tests.factories import MembershipFactory, StoreFactory, UserFactory

PASSWORD = "correct horse battery staple"
INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")[^>]*>", re.IGNORECASE)
EVENT_HANDLER = re.compile(r"<[^>]+\son[a-z]+\s*=", re.IGNORECASE)
STYLE_ATTRIBUTE = re.compile(r"<[^>]+\sstyle\s*=", re.IGNORECASE)


@pytest.fixture
def member_client(db):
    user = UserFactory(email="maya@example.com")
    store = StoreFactory(account=MembershipFactory(user=user).account)
    client = Client()
    client.post(reverse("account_login"), {"login": "maya@example.com", "password": PASSWORD})
    client.post(reverse("account_reauthenticate"), {"password": PASSWORD})
    client.store = store
    return client


def test_pages_carry_a_strict_content_security_policy_and_the_other_security_headers(client, db):
    response = client.get(reverse("account_login"))

    policy = response.headers["Content-Security-Policy"]
    for directive in (
        "default-src 'self'", "script-src 'self'", "style-src 'self'", "object-src 'none'",
        "frame-ancestors 'none'", "base-uri 'none'", "form-action 'self'",
    ):
        assert directive in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert response.headers["Cross-Origin-Opener-Policy"] == "same-origin"


def test_session_and_csrf_cookies_are_http_only_and_same_site(member_client):
    session_cookie = member_client.cookies["sessionid"]
    csrf_cookie = member_client.cookies["csrftoken"]

    assert session_cookie["httponly"] and session_cookie["samesite"] == "Lax"
    assert csrf_cookie["httponly"]


def test_forms_without_a_csrf_token_are_refused(db):
    UserFactory(email="maya@example.com")
    strict = Client(enforce_csrf_checks=True)

    response = strict.post(reverse("account_login"), {"login": "maya@example.com", "password": PASSWORD})

    assert response.status_code == 403
    assert "sessionid" not in strict.cookies


@pytest.mark.parametrize(
    "url_name",
    [
        "home", "dashboard", "account_email", "account_change_password", "mfa_index", "mfa_activate_totp",
        "usersessions_list", "account_logout", "account_reauthenticate",
    ],
)
def test_signed_in_pages_have_no_inline_scripts_handlers_or_styles(member_client, url_name):
    args = [member_client.store.public_id] if url_name == "dashboard" else []

    response = member_client.get(reverse(url_name, args=args))

    assert response.status_code == 200
    html = response.content.decode()
    assert INLINE_SCRIPT.findall(html) == []
    assert EVENT_HANDLER.findall(html) == []
    assert STYLE_ATTRIBUTE.findall(html) == []


@pytest.mark.parametrize(
    "url_name", ["account_login", "account_signup", "account_reset_password", "account_email_verification_sent"]
)
def test_public_pages_have_no_inline_scripts_handlers_or_styles(client, db, url_name):
    response = client.get(reverse(url_name))

    assert response.status_code == 200
    html = response.content.decode()
    assert INLINE_SCRIPT.findall(html) == []
    assert EVENT_HANDLER.findall(html) == []
    assert STYLE_ATTRIBUTE.findall(html) == []


def test_the_admin_signs_in_through_the_same_rate_limited_two_factor_sign_in(client, db):
    response = client.get("/admin/login/?next=/admin/")

    assert response.status_code == 302
    assert response.url.startswith(reverse("account_login"))


def test_the_admin_is_closed_to_merchants(member_client):
    response = member_client.get("/admin/", follow=True)

    assert response.status_code == 403
    assert b"Site administration" not in response.content


def test_the_development_mailbox_answers_only_with_debug_on(client, db, settings, tmp_path):
    """Without DEBUG (production, or DEBUG=0) the mails' sign-in and reset links stay unlisted."""
    settings.EMAIL_FILE_PATH = tmp_path
    settings.DEBUG = True
    shown = client.get("/dev/mail/", REMOTE_ADDR="127.0.0.1")
    settings.DEBUG = False
    hidden = client.get("/dev/mail/", REMOTE_ADDR="127.0.0.1")

    assert shown.status_code == 200
    assert hidden.status_code == 404


@pytest.mark.parametrize("address", ["192.168.1.20", "10.0.0.7", "203.0.113.9", "fe80::1"])
def test_the_development_mailbox_is_hidden_from_other_machines(client, db, settings, tmp_path, address):
    """A development server bound to 0.0.0.0 would show every reset link to the office
    network; a forged X-Forwarded-For naming 127.0.0.1 does not help."""
    settings.EMAIL_FILE_PATH = tmp_path
    settings.DEBUG = True

    local = client.get("/dev/mail/", REMOTE_ADDR="127.0.0.1")
    remote = client.get("/dev/mail/", REMOTE_ADDR=address, HTTP_X_FORWARDED_FOR="127.0.0.1")

    assert (local.status_code, remote.status_code) == (200, 404)
