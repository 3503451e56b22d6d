from __future__ import annotations

import hashlib
import re
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from opspulse.accounts.models import AuditEvent, AuditKind, Invitation, Membership, Role
from tests.factories import UserFactory

LINK = re.compile(r"http://testserver(/invitations/[A-Za-z0-9_\-]+/)")


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def alice_client(personas):
    return signed_in(personas["alice"])


@pytest.fixture
def invite(alice_client, personas, mailoutbox, django_capture_on_commit_callbacks):
    """Have alice invite an address; return the path of the link in the mail."""

    def invite(email: str, role: str = Role.MEMBER) -> str:
        with django_capture_on_commit_callbacks(execute=True):
            response = alice_client.post(
                reverse("account-invite", args=[personas["account"].public_id]), {"email": email, "role": role}
            )
        assert response.status_code == 302, response.content.decode()
        return LINK.search(mailoutbox[-1].body).group(1)

    return invite


def test_owner_invites_by_email_and_the_mail_has_a_text_and_an_html_part(
    alice_client, personas, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = alice_client.post(
            reverse("account-invite", args=[personas["account"].public_id]), {"email": "dave@example.com", "role": "admin"}
        )

    assert response.status_code == 302
    assert len(mailoutbox) == 1
    mail = mailoutbox[0]
    assert mail.to == ["dave@example.com"]
    assert "Alice's Apparel" in mail.subject
    assert "alice@example.com" in mail.subject
    path = LINK.search(mail.body).group(1)
    (html, mimetype), = mail.alternatives
    assert mimetype == "text/html"
    assert f"http://testserver{path}" in html
    assert "Alice&#x27;s Apparel" in html
    assert "Alice's Apparel" in mail.body  # the text part is not HTML-escaped
    assert " as an admin." in mail.body


def test_invitation_stores_only_the_hash_of_its_token(invite, personas):
    path = invite("dave@example.com")
    token = path.split("/")[2]

    invitation = Invitation.objects.get()
    assert len(token) >= 43  # 32 random bytes, base64
    assert invitation.token_hash == hashlib.sha256(token.encode()).hexdigest()
    stored = [str(value) for value in Invitation.objects.values_list(flat=False).get()]
    assert not any(token in value for value in stored)
    assert invitation.expires_at - invitation.created_at == timedelta(days=7)
    assert invitation.invited_by == personas["alice"]


def test_inviting_is_recorded_without_the_token(invite, personas):
    path = invite("dave@example.com", Role.ADMIN)
    token = path.split("/")[2]

    event = AuditEvent.objects.get(kind=AuditKind.MEMBER_INVITED)
    assert event.account == personas["account"]
    assert event.actor == personas["alice"]
    assert event.details == {"email": "dave@example.com", "role": "admin"}
    assert token not in str(event.details) and token not in event.user_agent


def test_invited_user_accepts_and_joins_with_the_role(invite, personas):
    path = invite("dave@example.com", Role.ADMIN)
    dave = UserFactory(email="dave@example.com")
    client = signed_in(dave)

    page = client.get(path)
    response = client.post(path)

    assert page.status_code == 200
    assert b"Accept and join Alice&#x27;s Apparel" in page.content
    assert response.status_code == 302
    assert response.url == reverse("home")
    membership = Membership.objects.get(user=dave, account=personas["account"])
    assert membership.role == Role.ADMIN
    invitation = Invitation.objects.get()
    assert invitation.accepted_by == dave and invitation.accepted_at is not None
    joined = AuditEvent.objects.get(kind=AuditKind.MEMBER_JOINED)
    assert joined.user == dave and joined.account == personas["account"] and joined.details["role"] == "admin"
    # The account joined becomes the one home shows.
    assert b"Alice&#x27;s Apparel" in client.get(reverse("home")).content


def test_accepting_compares_the_address_case_insensitively(invite, personas):
    path = invite("Dave.Smith@Example.com")
    dave = UserFactory(email="dave.smith@example.com")

    response = signed_in(dave).post(path)

    assert response.status_code == 302
    assert Membership.objects.filter(user=dave, account=personas["account"], role=Role.MEMBER).exists()


def test_user_with_another_address_cannot_accept(invite, personas):
    path = invite("dave@example.com")
    eve = UserFactory(email="eve@example.com")
    client = signed_in(eve)

    page = client.get(path)
    response = client.post(path)

    assert b"this invitation is for dave@example.com" in page.content
    assert b"Accept and join" not in page.content
    assert response.status_code == 403
    assert b"This invitation was sent to dave@example.com" in response.content
    assert not Membership.objects.filter(user=eve, account=personas["account"]).exists()
    assert Invitation.objects.get().state == "pending"


def test_unconfirmed_address_cannot_accept(invite, personas):
    path = invite("dave@example.com")
    dave = UserFactory(email="dave@example.com", confirmed_email=False)

    response = signed_in(dave).post(path)

    assert response.status_code == 403
    assert not Membership.objects.filter(user=dave, account=personas["account"]).exists()


def test_expired_invitation_is_refused_with_a_clear_message(invite, personas):
    path = invite("dave@example.com")
    Invitation.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    dave = UserFactory(email="dave@example.com")
    client = signed_in(dave)

    page = client.get(path)
    response = client.post(path)

    for answer in (page, response):
        assert answer.status_code == 410
        assert b"This invitation has expired" in answer.content
    assert b"This invitation has expired" in Client().get(path).content
    assert not Membership.objects.filter(user=dave, account=personas["account"]).exists()


def test_revoked_invitation_is_refused_with_a_clear_message(invite, alice_client, personas):
    path = invite("dave@example.com")
    invitation = Invitation.objects.get()

    revoked = alice_client.post(reverse("invitation-revoke", args=[invitation.public_id]))
    dave = UserFactory(email="dave@example.com")
    response = signed_in(dave).post(path)

    assert revoked.status_code == 302
    assert response.status_code == 410
    assert b"withdrawn" in response.content
    assert not Membership.objects.filter(user=dave, account=personas["account"]).exists()
    event = AuditEvent.objects.get(kind=AuditKind.INVITATION_REVOKED)
    assert event.actor == personas["alice"] and event.details["email"] == "dave@example.com"


def test_used_invitation_cannot_be_used_again(invite, alice_client, personas):
    path = invite("dave@example.com")
    dave = UserFactory(email="dave@example.com")
    client = signed_in(dave)
    client.post(path)
    alice_client.post(reverse("member-remove", args=[Membership.objects.get(user=dave).public_id]))

    response = client.post(path)

    assert response.status_code == 410
    assert b"already been used" in response.content
    assert not Membership.objects.filter(user=dave, account=personas["account"]).exists()


def test_opening_the_link_again_after_joining_goes_home(invite, personas):
    path = invite("dave@example.com")
    client = signed_in(UserFactory(email="dave@example.com"))
    client.post(path)

    response = client.get(path)

    assert response.status_code == 302
    assert response.url == reverse("home")


@pytest.mark.parametrize("token", ["not-a-real-token", "x" * 500])
def test_unknown_token_shows_a_not_found_page(client, db, token):
    response = client.get(reverse("invitation-accept", args=[token]))

    assert response.status_code == 404
    assert b"This invitation link is not valid" in response.content


def test_anonymous_visitor_sees_the_invitation_with_links_that_return_to_it(invite, client):
    path = invite("dave@example.com")

    response = client.get(path)

    html = response.content.decode()
    assert response.status_code == 200
    assert "Join Alice&#x27;s Apparel" in html
    assert "alice@example.com" in html
    assert f'{reverse("account_login")}?next={path}"' in html
    assert f'{reverse("account_signup")}?next={path}"' in html
    assert Membership.objects.count() == 3


def test_signing_in_from_the_invitation_returns_to_it(invite, client):
    path = invite("dave@example.com")
    UserFactory(email="dave@example.com")

    response = client.post(
        reverse("account_login"), {"login": "dave@example.com", "password": "correct horse battery staple", "next": path}
    )

    assert response.status_code == 302
    assert response.url == path


def test_resending_mails_a_new_link_and_the_old_one_stops_working(invite, alice_client, mailoutbox, django_capture_on_commit_callbacks):
    old_path = invite("dave@example.com")
    invitation = Invitation.objects.get()
    Invitation.objects.update(expires_at=timezone.now() - timedelta(days=1))

    with django_capture_on_commit_callbacks(execute=True):
        response = alice_client.post(reverse("invitation-resend", args=[invitation.public_id]))

    new_path = LINK.search(mailoutbox[-1].body).group(1)
    assert response.status_code == 302
    assert len(mailoutbox) == 2 and new_path != old_path
    assert Client().get(old_path).status_code == 404
    assert Client().get(new_path).status_code == 200
    assert Invitation.objects.get().state == "pending"


def test_inviting_the_same_address_again_renews_the_open_invitation(invite):
    first = invite("dave@example.com", Role.MEMBER)
    second = invite("DAVE@example.com", Role.ADMIN)

    invitation = Invitation.objects.get()
    assert invitation.role == Role.ADMIN
    assert Client().get(first).status_code == 404
    assert Client().get(second).status_code == 200


def test_inviting_a_member_is_refused(alice_client, personas, mailoutbox):
    response = alice_client.post(
        reverse("account-invite", args=[personas["account"].public_id]), {"email": "Bob@example.com", "role": "member"}
    )

    assert response.status_code == 400
    assert b"bob@example.com is already a member" in response.content
    assert not Invitation.objects.exists()
    assert mailoutbox == []


@pytest.mark.parametrize("role", ["owner", "superuser"])
def test_invitations_are_for_admins_or_members_only(alice_client, personas, role):
    response = alice_client.post(
        reverse("account-invite", args=[personas["account"].public_id]), {"email": "dave@example.com", "role": role}
    )

    assert response.status_code == 400
    assert not Invitation.objects.exists()


def test_members_cannot_invite_resend_or_revoke(invite, personas, mailoutbox):
    invite("dave@example.com")
    invitation = Invitation.objects.get()
    bob = signed_in(personas["bob"])

    answers = [
        bob.post(reverse("account-invite", args=[personas["account"].public_id]), {"email": "eve@example.com", "role": "member"}),
        bob.post(reverse("invitation-resend", args=[invitation.public_id])),
        bob.post(reverse("invitation-revoke", args=[invitation.public_id])),
    ]

    assert [answer.status_code for answer in answers] == [403, 403, 403]
    assert list(Invitation.objects.values_list("email", "revoked_at")) == [("dave@example.com", None)]
    assert len(mailoutbox) == 1


def test_outsiders_get_404_for_the_accounts_invitations(invite, personas):
    invite("dave@example.com")
    invitation = Invitation.objects.get()
    charlie = signed_in(personas["charlie"])

    answers = [
        charlie.post(reverse("account-invite", args=[personas["account"].public_id]), {"email": "x@example.com", "role": "member"}),
        charlie.post(reverse("invitation-resend", args=[invitation.public_id])),
        charlie.post(reverse("invitation-revoke", args=[invitation.public_id])),
    ]

    assert [answer.status_code for answer in answers] == [404, 404, 404]
    assert Invitation.objects.get().state == "pending"


def test_team_page_lists_pending_invitations_for_owners_only(invite, alice_client, personas):
    invite("dave@example.com", Role.ADMIN)

    owner_page = alice_client.get(reverse("account-team")).content.decode()
    member_page = signed_in(personas["bob"]).get(reverse("account-team")).content.decode()

    assert 'data-invitation="dave@example.com"' in owner_page
    assert "dave@example.com" not in member_page


# Invitations found on home, for someone who signed up instead of following the link


def test_an_invited_address_that_signs_up_finds_the_invitation_and_joins(client, personas, mailoutbox):
    alice_client = Client()
    alice_client.force_login(personas["alice"])
    alice_client.post(
        reverse("account-invite", args=[personas["account"].public_id]), {"email": "Nadia@example.com", "role": "admin"}
    )
    invitation = Invitation.objects.get(email__iexact="nadia@example.com")
    nadia = UserFactory(email="nadia@example.com")  # signed up and confirmed, no account of her own
    client.force_login(nadia)

    home = client.get(reverse("home"))
    assert b"Join Alice&#x27;s Apparel" in home.content
    response = client.post(reverse("invitation-join", args=[invitation.public_id]))

    assert response.url == reverse("home")
    assert Membership.objects.get(user=nadia, account=personas["account"]).role == Role.ADMIN
    invitation.refresh_from_db()
    assert invitation.accepted_by == nadia
    assert b"Join Alice" not in client.get(reverse("home")).content


def test_an_invitation_for_someone_else_cannot_be_joined_by_its_id(client, personas):
    invitation = Invitation.objects.create(
        account=personas["account"], email="nadia@example.com", role=Role.MEMBER, token_hash="1" * 64,
        expires_at=timezone.now() + timedelta(days=7),
    )
    client.force_login(personas["charlie"])

    response = client.post(reverse("invitation-join", args=[invitation.public_id]))

    assert response.status_code == 404
    assert not Membership.objects.filter(user=personas["charlie"], account=personas["account"]).exists()
    assert b"Alice" not in client.get(reverse("home")).content


def test_an_expired_invitation_is_not_offered(client, personas):
    Invitation.objects.create(
        account=personas["account"], email="nadia@example.com", role=Role.MEMBER, token_hash="2" * 64,
        expires_at=timezone.now() - timedelta(minutes=1),
    )
    client.force_login(UserFactory(email="nadia@example.com"))

    assert b"Join Alice" not in client.get(reverse("home")).content
