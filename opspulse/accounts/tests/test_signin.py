"""Sign-in, brute-force limits, remember-me, password reset and change, and two-factor."""

from __future__ import annotations

import re
import time

import pytest
from allauth.account.forms import default_token_generator
from allauth.mfa.models import Authenticator
from django.test import Client
from django.urls import reverse

from opspulse.accounts.models import AuditEvent, AuditKind
from tests.factories import UserFactory
from tests.support.accounts import PASSWORD, current_code, reauthenticate, reset_link, sign_in, signed_in, turn_on_totp

NEW_PASSWORD = "quiet meadow copper lantern"


@pytest.fixture
def maya(db):
    return UserFactory(email="maya@example.com")


def form_errors(response) -> str:
    """The error text of the sign-in form, without the CSRF token and echoed input."""
    return " ".join(str(error) for error in response.context["form"].non_field_errors())


def test_signing_in_with_email_and_password_goes_home_and_is_audited(client, maya):
    response = sign_in(client, email="MAYA@example.com", HTTP_USER_AGENT="Firefox/140", REMOTE_ADDR="203.0.113.9")

    assert response.url == reverse("home")
    assert signed_in(client)
    event = AuditEvent.objects.get(user=maya, kind=AuditKind.LOGIN)
    assert event.ip_address == "203.0.113.9"
    assert event.user_agent == "Firefox/140"


def test_a_wrong_password_and_an_unknown_address_get_the_same_answer(client, maya):
    wrong_password = sign_in(client, password="not the password")
    unknown_address = sign_in(client, email="nobody@example.com", password="not the password")

    assert wrong_password.status_code == unknown_address.status_code == 200
    assert form_errors(wrong_password) == form_errors(unknown_address)
    assert "not correct" in form_errors(wrong_password)
    assert not signed_in(client)


def test_a_failed_sign_in_is_audited_without_the_password(client, maya):
    sign_in(client, password="hunter2-but-longer")

    event = AuditEvent.objects.get(user=maya, kind=AuditKind.LOGIN_FAILED)
    assert "hunter2" not in str(event.details)


def test_unknown_addresses_take_about_as_long_as_wrong_passwords(client, maya, settings):
    """With the real hasher, an unknown address still costs one password hash."""
    from config import settings as configured

    settings.PASSWORD_HASHERS = configured.PASSWORD_HASHERS
    maya.set_password(PASSWORD)
    maya.save()

    def duration(email: str) -> float:
        started = time.perf_counter()
        sign_in(Client(REMOTE_ADDR=f"198.51.100.{len(email)}"), email=email, password="not the password")
        return time.perf_counter() - started

    known = min(duration("maya@example.com") for _ in range(3))
    unknown = min(duration("nobody-at-all@example.com") for _ in range(3))

    assert 0.5 < unknown / known < 2


def test_failed_sign_ins_for_one_address_are_limited(client, maya):
    for n in range(5):
        sign_in(Client(REMOTE_ADDR=f"198.51.100.{n}"), password="not the password")

    # From yet another address, even the right password is refused for a while.
    response = sign_in(client, REMOTE_ADDR="198.51.100.77")

    assert "Too many failed login attempts" in form_errors(response)
    assert not signed_in(client)


def test_failed_sign_ins_from_one_client_address_are_limited(client, maya):
    for n in range(10):
        sign_in(client, email=f"guess{n}@example.com", password="not the password")

    response = sign_in(client)

    assert "Too many failed login attempts" in form_errors(response)
    assert not signed_in(client)
    other_client = Client(REMOTE_ADDR="198.51.100.200")
    assert sign_in(other_client).url == reverse("home")


def test_without_remember_me_the_session_ends_with_the_browser(client, maya):
    sign_in(client)

    assert client.session.get_expire_at_browser_close()


def test_remember_me_keeps_the_session_for_two_weeks(client, maya):
    sign_in(client, remember=True)

    assert not client.session.get_expire_at_browser_close()
    assert client.session.get_expiry_age() == 14 * 24 * 3600


def test_password_reset_mails_a_link_that_sets_a_new_password_once(client, maya, mailoutbox):
    response = client.post(reverse("account_reset_password"), {"email": "maya@example.com"})
    assert response.url == reverse("account_reset_password_done")
    link = reset_link(mailoutbox[-1])

    form = client.get(link, follow=True)
    client.post(form.redirect_chain[-1][0], {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD})

    maya.refresh_from_db()
    assert maya.check_password(NEW_PASSWORD)
    assert AuditEvent.objects.filter(user=maya, kind=AuditKind.PASSWORD_RESET).exists()
    # The link is spent: it no longer offers a form.
    again = Client().get(link, follow=True)
    assert b'name="password1"' not in again.content
    assert not signed_in(client)  # a reset does not sign in (two-factor still applies)


def test_a_password_reset_link_expires_after_an_hour(client, maya, mailoutbox, monkeypatch):
    client.post(reverse("account_reset_password"), {"email": "maya@example.com"})
    link = reset_link(mailoutbox[-1])
    in_an_hour_and_a_minute = default_token_generator._now() + __import__("datetime").timedelta(minutes=61)
    monkeypatch.setattr(type(default_token_generator), "_now", lambda self: in_an_hour_and_a_minute)

    response = client.get(link, follow=True)

    assert response.context["token_fail"]
    assert b'name="password1"' not in response.content


def test_a_password_change_voids_an_earlier_reset_link(client, maya, mailoutbox):
    client.post(reverse("account_reset_password"), {"email": "maya@example.com"})
    link = reset_link(mailoutbox[-1])

    maya.set_password(NEW_PASSWORD)
    maya.save()

    response = client.get(link, follow=True)
    assert b'name="password1"' not in response.content


def test_a_reset_for_an_unknown_address_looks_the_same(client, maya, mailoutbox):
    response = client.post(reverse("account_reset_password"), {"email": "nobody@example.com"})

    assert response.url == reverse("account_reset_password_done")
    assert "/accounts/password/reset/key/" not in mailoutbox[-1].body


def test_password_reset_requests_are_limited_per_address(client, maya, mailoutbox):
    answers = [
        Client(REMOTE_ADDR=f"198.51.100.{n}").post(reverse("account_reset_password"), {"email": "maya@example.com"})
        for n in range(7)
    ]

    assert [answer.status_code for answer in answers] == [302] * 5 + [429] * 2
    assert len(mailoutbox) == 5


def test_changing_the_password_needs_the_current_one_and_signs_out_other_sessions(client, maya):
    sign_in(client)
    laptop = Client()
    sign_in(laptop)

    refused = client.post(
        reverse("account_change_password"),
        {"oldpassword": "not it", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
    )
    assert refused.status_code == 200
    client.post(
        reverse("account_change_password"),
        {"oldpassword": PASSWORD, "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
    )

    maya.refresh_from_db()
    assert maya.check_password(NEW_PASSWORD)
    assert client.get(reverse("home")).status_code == 200  # this session stays signed in
    assert laptop.get(reverse("home")).status_code == 302  # the other one is signed out
    assert AuditEvent.objects.filter(user=maya, kind=AuditKind.PASSWORD_CHANGED).exists()


def test_changing_the_email_asks_for_the_password_first_and_again_after_five_minutes(
    client, maya, monkeypatch, mailoutbox
):
    sign_in(client)
    change = {"action_add": "", "email": "maya@new.example.com"}

    assert client.post(reverse("account_email"), change).url.startswith(reverse("account_reauthenticate"))
    assert mailoutbox == []
    reauthenticate(client)
    client.post(reverse("account_email"), change)
    assert mailoutbox[-1].to == ["maya@new.example.com"]

    later = time.time() + 301
    monkeypatch.setattr(time, "time", lambda: later)
    another = {"action_add": "", "email": "maya@another.example.com"}
    assert client.post(reverse("account_email"), another).url.startswith(reverse("account_reauthenticate"))


def test_changing_the_email_confirms_the_new_address_before_using_it(client, maya, mailoutbox):
    sign_in(client)
    reauthenticate(client)

    client.post(reverse("account_email"), {"action_add": "", "email": "maya@new.example.com"})

    maya.refresh_from_db()
    assert maya.email == "maya@example.com"
    assert mailoutbox[-1].to == ["maya@new.example.com"]
    link = re.search(r"https?://[^/\s]+(/accounts/confirm-email/[^\s]+/)", mailoutbox[-1].body).group(1)
    client.post(link)
    maya.refresh_from_db()
    assert maya.email == "maya@new.example.com"
    assert AuditEvent.objects.filter(user=maya, kind=AuditKind.EMAIL_CHANGED).exists()


def test_a_user_sees_their_sessions_and_can_end_the_others(client, maya):
    sign_in(client, HTTP_USER_AGENT="Mozilla/5.0 (Macintosh) Firefox/140.0")
    phone = Client(HTTP_USER_AGENT="Mozilla/5.0 (iPhone) Safari/605.1")
    sign_in(phone)

    page = client.get(reverse("usersessions_list"))
    assert b"iPhone" in page.content
    client.post(reverse("usersessions_list"))

    assert phone.get(reverse("home")).status_code == 302
    assert client.get(reverse("home")).status_code == 200
    assert AuditEvent.objects.filter(user=maya, kind=AuditKind.SESSION_ENDED).count() == 1


def test_a_user_can_sign_out_one_other_session_and_keep_the_rest(maya):
    from allauth.usersessions.models import UserSession

    from opspulse.lib.broadcast import session_hash

    client = Client(HTTP_USER_AGENT="Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) Firefox/140.0")
    sign_in(client)
    phone = Client(HTTP_USER_AGENT="Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) Safari/605.1")
    tablet = Client()
    sign_in(phone)
    sign_in(tablet)
    phone_session = UserSession.objects.get(session_key=phone.session.session_key)

    page = client.get(reverse("usersessions_list")).content.decode()
    assert "Mobile Safari on iOS" in page and "Firefox on Mac OS X" in page
    response = client.post(reverse("session-end"), {"session": session_hash(phone_session.session_key)})

    assert response.url == reverse("usersessions_list")
    assert phone.get(reverse("home")).status_code == 302
    assert tablet.get(reverse("home")).status_code == 200
    assert client.get(reverse("home")).status_code == 200


def test_another_users_session_cannot_be_ended(client, maya):
    from opspulse.lib.broadcast import session_hash

    other = UserFactory(email="omar@example.com")
    omar = Client()
    sign_in(omar, email=other.email)
    sign_in(client)

    response = client.post(reverse("session-end"), {"session": session_hash(omar.session.session_key)})

    assert response.status_code == 404
    assert omar.get(reverse("home")).status_code == 200


# -- two-factor


@pytest.mark.django_db(transaction=True)
def test_turning_on_two_factor_stores_the_key_encrypted(client, maya, mailoutbox):
    sign_in(client)

    secret = turn_on_totp(client)

    stored = Authenticator.objects.get(user=maya, type=Authenticator.Type.TOTP).data["secret"]
    assert secret not in stored
    assert AuditEvent.objects.filter(user=maya, kind=AuditKind.MFA_ENABLED).exists()


def test_with_two_factor_on_sign_in_needs_the_code(client, maya):
    sign_in(client)
    secret = turn_on_totp(client)
    client.post(reverse("account_logout"))

    response = sign_in(client)
    assert response.url == reverse("mfa_authenticate")
    assert not signed_in(client)
    assert client.post(reverse("mfa_authenticate"), {"code": "000000"}).status_code == 200
    assert not signed_in(client)

    client.post(reverse("mfa_authenticate"), {"code": current_code(secret, offset=1)})
    assert signed_in(client)


def test_a_password_reset_does_not_bypass_two_factor(client, maya, mailoutbox):
    sign_in(client)
    turn_on_totp(client)
    client.post(reverse("account_logout"))

    client.post(reverse("account_reset_password"), {"email": "maya@example.com"})
    form = client.get(reset_link(mailoutbox[-1]), follow=True)
    client.post(form.redirect_chain[-1][0], {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD})
    response = sign_in(client, password=NEW_PASSWORD)

    assert response.url == reverse("mfa_authenticate")
    assert not signed_in(client)


def test_a_recovery_code_signs_in_once(client, maya):
    sign_in(client)
    turn_on_totp(client)
    codes = client.get(reverse("mfa_view_recovery_codes")).context["unused_codes"]
    assert len(codes) == 10
    client.post(reverse("account_logout"))

    sign_in(client)
    client.post(reverse("mfa_authenticate"), {"code": codes[0]})
    assert signed_in(client)
    client.post(reverse("account_logout"))

    sign_in(client)
    client.post(reverse("mfa_authenticate"), {"code": codes[0]})
    assert not signed_in(client)


def test_a_password_change_sends_a_security_notice(client, maya, mailoutbox):
    sign_in(client)

    client.post(
        reverse("account_change_password"),
        {"oldpassword": PASSWORD, "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
    )

    notice = mailoutbox[-1]
    assert notice.to == ["maya@example.com"]
    assert "password" in notice.subject.lower()
    assert notice.alternatives and notice.alternatives[0][1] == "text/html"
    assert NEW_PASSWORD not in notice.body


def test_a_sessions_activity_is_recorded_at_most_once_a_minute(client, maya, monkeypatch):
    from allauth.usersessions.models import UserSession

    from opspulse.accounts import middleware

    clock = [1000.0]
    monkeypatch.setattr(middleware.time, "monotonic", lambda: clock[0])
    sign_in(client)
    session = UserSession.objects.get(session_key=client.session.session_key)
    client.get(reverse("home"))
    seen = UserSession.objects.get(pk=session.pk).last_seen_at

    clock[0] += 30
    client.get(reverse("home"))
    assert UserSession.objects.get(pk=session.pk).last_seen_at == seen

    clock[0] += middleware.TRACK_SECONDS
    client.get(reverse("home"))
    assert UserSession.objects.get(pk=session.pk).last_seen_at > seen
