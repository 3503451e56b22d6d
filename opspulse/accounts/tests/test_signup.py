"""Sign-up: an account owned by the new user, confirmed by email before any store data."""

from __future__ import annotations

import re

import pytest
from allauth.account.models import EmailAddress
from django.urls import reverse

from opspulse.accounts.models import Account, AuditEvent, AuditKind, Membership, Role, User

PASSPHRASE = "lantern orchard velvet quarry"


def sign_up(client, email="nadia@example.com", password=PASSPHRASE, account_name="Nadia's Nursery"):
    return client.post(
        reverse("account_signup"),
        {"email": email, "password1": password, "password2": password, "account_name": account_name},
    )


def confirmation_link(mail) -> str:
    return re.search(r"https?://[^/\s]+(/accounts/confirm-email/[^\s]+/)", mail.body).group(1)


@pytest.mark.django_db
def test_signing_up_creates_an_account_owned_by_the_new_user(client, mailoutbox):
    response = sign_up(client)

    assert response.status_code == 302
    user = User.objects.get(email="nadia@example.com")
    membership = Membership.objects.get(user=user)
    assert membership.role == Role.OWNER
    assert membership.account.name == "Nadia's Nursery"
    assert AuditEvent.objects.filter(user=user, kind=AuditKind.SIGNED_UP).exists()


@pytest.mark.django_db
def test_passwords_are_hashed_with_argon2id(client, settings, mailoutbox):
    from config import settings as configured

    settings.PASSWORD_HASHERS = configured.PASSWORD_HASHERS  # the tests' own hasher is a fast one

    sign_up(client)

    assert User.objects.get(email="nadia@example.com").password.startswith("argon2$argon2id$")


@pytest.mark.django_db
def test_signing_up_without_a_business_name_names_the_account_after_the_user(client, mailoutbox):
    sign_up(client, account_name="")

    assert Account.objects.get(memberships__user__email="nadia@example.com").name == "nadia's shops"


@pytest.mark.django_db
def test_sign_up_mails_a_confirmation_link_and_shows_no_store_data_before_it_is_followed(client, mailoutbox):
    response = sign_up(client)

    assert response.url == reverse("account_email_verification_sent")
    assert len(mailoutbox) == 1
    assert mailoutbox[0].to == ["nadia@example.com"]
    assert "/accounts/confirm-email/" in mailoutbox[0].body
    # Not signed in: home sends the visitor to sign in.
    assert client.get(reverse("home")).url.startswith(reverse("account_login"))
    # Signing in before confirming leads back to "check your email", not to the stores.
    response = client.post(reverse("account_login"), {"login": "nadia@example.com", "password": PASSPHRASE})
    assert response.status_code == 302
    assert response.url == reverse("account_email_verification_sent")
    assert client.get(reverse("home")).status_code == 302


@pytest.mark.django_db
def test_following_the_confirmation_link_lets_the_user_sign_in_and_reach_an_empty_home(client, mailoutbox):
    sign_up(client)
    link = confirmation_link(mailoutbox[0])

    client.post(link)
    response = client.post(reverse("account_login"), {"login": "nadia@example.com", "password": PASSPHRASE})

    assert EmailAddress.objects.get(email="nadia@example.com").verified
    assert response.url == reverse("home")
    home = client.get(reverse("home"))
    assert home.status_code == 200
    assert b"No stores yet" in home.content


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("password", "message"),
    [
        pytest.param("shrt1!", "too short", id="short_case"),
        pytest.param("password123", "too common", id="common_case"),
        pytest.param("38571946203", "entirely numeric", id="numeric_case"),
        pytest.param("abcabcabcabc", "repeated pattern", id="repeated_case"),
        pytest.param("qwertyuiop", "keyboard sequence", id="keyboard_case"),
        pytest.param("nadia@example.com", "too similar", id="similar_to_email_case"),
    ],
)
def test_weak_passwords_are_refused_with_a_clear_message(client, password, message):
    response = sign_up(client, password=password)

    assert response.status_code == 200
    assert message in response.content.decode()
    assert not User.objects.filter(email="nadia@example.com").exists()


@pytest.mark.django_db
def test_a_long_passphrase_is_accepted(client, mailoutbox):
    passphrase = (
        "the lighthouse keeper counted forty-two herons over the estuary while the kettle sang, "
        "and nobody in the harbour town remembered the colour of the old ferry"
    )
    assert len(passphrase) > 150

    response = sign_up(client, password=passphrase)

    assert response.status_code == 302
    assert User.objects.get(email="nadia@example.com").check_password(passphrase)


@pytest.mark.django_db
def test_an_absurdly_long_password_is_refused_before_it_is_hashed(client):
    response = sign_up(client, password="lantern orchard " * 100)

    assert response.status_code == 200
    assert "too long" in response.content.decode()


@pytest.mark.django_db
def test_signing_up_with_a_taken_address_looks_the_same_and_mails_its_owner(client, mailoutbox):
    User.objects.create_user("nadia@example.com", "an-older-passphrase-1")

    response = sign_up(client, email="NADIA@example.com")

    # The same answer as a fresh sign-up; the owner of the address learns of the attempt.
    assert response.status_code == 302
    assert response.url == reverse("account_email_verification_sent")
    assert User.objects.filter(email__iexact="nadia@example.com").count() == 1
    assert mailoutbox[-1].to == ["nadia@example.com"]
    assert Membership.objects.filter(user__email="nadia@example.com").count() == 0


@pytest.mark.django_db
def test_sign_up_is_rate_limited_per_client_address(client, mailoutbox):
    answers = [sign_up(client, email=f"visitor{n}@example.com").status_code for n in range(12)]

    assert answers[:10] == [302] * 10
    assert answers[10:] == [429, 429]
    assert User.objects.filter(email__startswith="visitor").count() == 10


@pytest.mark.django_db
def test_signing_up_to_accept_an_invitation_makes_no_account_of_ones_own(client, mailoutbox):
    from datetime import timedelta

    from django.utils import timezone

    from opspulse.accounts.models import Invitation

    team = Account.objects.create(name="Harbor Goods")
    Invitation.objects.create(
        account=team, email="Nadia@example.com", role=Role.MEMBER, token_hash="0" * 64,
        expires_at=timezone.now() + timedelta(days=7),
    )

    sign_up(client)

    assert User.objects.filter(email="nadia@example.com").exists()
    assert not Membership.objects.filter(user__email="nadia@example.com").exists()


@pytest.mark.django_db
def test_the_confirmation_mail_has_a_text_and_an_html_version_with_the_same_link(client, mailoutbox):
    sign_up(client)

    mail = mailoutbox[0]
    html, mimetype = mail.alternatives[0]
    link = confirmation_link(mail)
    assert mimetype == "text/html"
    assert link in html
    assert "3 days" in mail.body and "3 days" in html
    assert PASSPHRASE not in mail.body and PASSPHRASE not in html
