from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied
from django.db import connection, transaction
from django.http import Http404
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from opspulse.accounts import actions
from opspulse.accounts.actions import LastOwnerError, TeamError
from opspulse.accounts.audit import record_event
from opspulse.accounts.models import Account, AuditEvent, AuditKind, Invitation, Membership, Role
from opspulse.accounts.selectors import accounts_for_user, get_account_for_user
from tests.factories import StoreFactory


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def alice_client(personas):
    return signed_in(personas["alice"])


@pytest.fixture
def bob_membership(personas):
    return Membership.objects.get(user=personas["bob"], account=personas["account"])


@pytest.fixture
def alice_membership(personas):
    return Membership.objects.get(user=personas["alice"], account=personas["account"])


@pytest.fixture
def rechecks(monkeypatch):
    """The user ids whose open dashboards were asked to re-check their access (after commit)."""
    asked: list[int] = []
    monkeypatch.setattr(actions, "recheck_user_access", asked.append)
    return asked


# Access helpers


def test_get_account_for_user_is_404_for_outsiders_and_403_below_the_role(personas):
    account = personas["account"]

    assert get_account_for_user(personas["bob"], account.public_id).role == Role.MEMBER
    assert get_account_for_user(personas["alice"], account.public_id, at_least=Role.OWNER).role == Role.OWNER
    with pytest.raises(PermissionDenied):
        get_account_for_user(personas["bob"], account.public_id, at_least=Role.ADMIN)
    with pytest.raises(Http404):
        get_account_for_user(personas["charlie"], account.public_id)
    with pytest.raises(Http404):
        get_account_for_user(personas["alice"], "not-a-uuid")


def test_admins_pass_admin_checks_but_not_owner_checks(personas, bob_membership):
    bob_membership.role = Role.ADMIN
    bob_membership.save()

    assert get_account_for_user(personas["bob"], personas["account"].public_id, at_least=Role.ADMIN)
    with pytest.raises(PermissionDenied):
        get_account_for_user(personas["bob"], personas["account"].public_id, at_least=Role.OWNER)


def test_accounts_for_user_lists_the_users_accounts_with_their_role(personas):
    Membership.objects.create(account=personas["other_account"], user=personas["bob"], role=Role.ADMIN)

    accounts = {account.name: account.role for account in accounts_for_user(personas["bob"])}

    assert accounts == {"Alice's Apparel": "member", "Charlie's Chairs": "admin"}


# Team page


def test_owner_sees_members_with_roles_joined_dates_and_controls(alice_client, personas, bob_membership):
    html = alice_client.get(reverse("account-team")).content.decode()

    assert 'data-member="alice@example.com"' in html
    assert 'data-member="bob@example.com"' in html
    assert "charlie@example.com" not in html
    assert reverse("member-role", args=[bob_membership.public_id]) in html
    assert reverse("member-remove", args=[bob_membership.public_id]) in html
    assert reverse("account-invite", args=[personas["account"].public_id]) in html
    assert f"joined <time datetime=\"{bob_membership.created_at.isoformat()}" in html.replace("+00:00", "+00:00")


def test_member_sees_the_team_without_owner_controls(personas, bob_membership):
    html = signed_in(personas["bob"]).get(reverse("account-team")).content.decode()

    assert 'data-member="alice@example.com"' in html
    assert reverse("member-remove", args=[bob_membership.public_id]) not in html
    assert reverse("account-invite", args=[personas["account"].public_id]) not in html
    assert reverse("account-leave", args=[personas["account"].public_id]) in html


def test_the_team_page_describes_roles_without_billing(alice_client, personas):
    html = alice_client.get(reverse("account-team")).content.decode()

    assert "owners also manage the team and the account." in html
    assert "billing" not in html.lower()


# Changing roles, removing, leaving


def test_owner_changes_a_members_role(alice_client, personas, bob_membership, rechecks, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = alice_client.post(reverse("member-role", args=[bob_membership.public_id]), {"role": "admin"})

    assert response.status_code == 302
    bob_membership.refresh_from_db()
    assert bob_membership.role == Role.ADMIN
    event = AuditEvent.objects.get(kind=AuditKind.ROLE_CHANGED)
    assert (event.user, event.actor, event.account) == (personas["bob"], personas["alice"], personas["account"])
    assert event.details == {"from": "member", "to": "admin"}
    assert rechecks == [personas["bob"].pk]


def test_owner_promotes_a_member_to_owner_and_can_then_step_down(alice_client, personas, bob_membership, alice_membership):
    alice_client.post(reverse("member-role", args=[bob_membership.public_id]), {"role": "owner"})
    alice_client.post(reverse("member-role", args=[alice_membership.public_id]), {"role": "member"})

    assert dict(Membership.objects.filter(account=personas["account"]).values_list("user__email", "role")) == {
        "alice@example.com": "member",
        "bob@example.com": "owner",
    }


def test_owner_removes_a_member(alice_client, personas, bob_membership, rechecks, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = alice_client.post(reverse("member-remove", args=[bob_membership.public_id]))

    assert response.status_code == 302
    assert not Membership.objects.filter(pk=bob_membership.pk).exists()
    event = AuditEvent.objects.get(kind=AuditKind.MEMBER_REMOVED)
    assert (event.user, event.actor, event.account) == (personas["bob"], personas["alice"], personas["account"])
    assert rechecks == [personas["bob"].pk]


def test_member_leaves_the_account(personas, rechecks, django_capture_on_commit_callbacks):
    bob = signed_in(personas["bob"])

    with django_capture_on_commit_callbacks(execute=True):
        response = bob.post(reverse("account-leave", args=[personas["account"].public_id]))

    assert response.status_code == 302
    assert not Membership.objects.filter(user=personas["bob"]).exists()
    event = AuditEvent.objects.get(kind=AuditKind.MEMBER_LEFT)
    assert (event.user, event.account) == (personas["bob"], personas["account"])
    assert rechecks == [personas["bob"].pk]
    # With no account left, home offers to create one.
    assert b"You are not in any account" in bob.get(reverse("home")).content


def test_last_owner_cannot_leave(alice_client, personas):
    response = alice_client.post(reverse("account-leave", args=[personas["account"].public_id]), follow=True)

    assert b"You are the last owner of Alice&#x27;s Apparel" in response.content
    assert Membership.objects.filter(user=personas["alice"], role=Role.OWNER).exists()
    assert not AuditEvent.objects.filter(kind=AuditKind.MEMBER_LEFT).exists()


def test_last_owner_cannot_be_demoted(alice_client, personas, alice_membership, rechecks):
    response = alice_client.post(reverse("member-role", args=[alice_membership.public_id]), {"role": "admin"}, follow=True)

    assert b"alice@example.com is the last owner" in response.content
    alice_membership.refresh_from_db()
    assert alice_membership.role == Role.OWNER
    assert not AuditEvent.objects.filter(kind=AuditKind.ROLE_CHANGED).exists()
    assert rechecks == []


def test_last_owner_cannot_be_removed(alice_client, personas, alice_membership):
    response = alice_client.post(reverse("member-remove", args=[alice_membership.public_id]), follow=True)

    assert b"is the last owner and cannot be removed" in response.content
    assert Membership.objects.filter(pk=alice_membership.pk).exists()
    with pytest.raises(LastOwnerError):
        actions.remove_member(membership=alice_membership, actor=personas["alice"])


def test_an_owner_can_leave_while_another_owner_remains(personas, bob_membership):
    bob_membership.role = Role.OWNER
    bob_membership.save()

    actions.leave_account(account=personas["account"], user=personas["alice"])

    assert list(Membership.objects.filter(account=personas["account"]).values_list("user__email", flat=True)) == [
        "bob@example.com"
    ]


def test_a_demoted_owner_can_no_longer_change_the_team(personas, bob_membership, alice_membership):
    bob_membership.role = Role.OWNER
    bob_membership.save()
    actions.change_role(membership=alice_membership, role=Role.MEMBER, actor=personas["bob"])

    # A request that passed the view's check before the demotion is refused by the action.
    with pytest.raises(TeamError):
        actions.remove_member(membership=bob_membership, actor=personas["alice"])
    assert Membership.objects.filter(pk=bob_membership.pk).exists()


@pytest.mark.django_db(transaction=True)
def test_concurrent_demotions_of_the_two_owners_leave_one_owner(personas, bob_membership, alice_membership):
    bob_membership.role = Role.OWNER
    bob_membership.save()
    outcome: dict[str, object] = {}

    def bob_demotes_alice() -> None:
        try:
            actions.change_role(membership=alice_membership, role=Role.MEMBER, actor=personas["bob"])
            outcome["bob"] = "demoted alice"
        except TeamError as exc:
            outcome["bob"] = exc
        finally:
            connection.close()

    with transaction.atomic():
        actions.change_role(membership=bob_membership, role=Role.MEMBER, actor=personas["alice"])
        other = threading.Thread(target=bob_demotes_alice)
        other.start()
        time.sleep(0.5)
        # Bob's change waits for the team's row locks while alice's is not committed.
        assert other.is_alive()
    other.join(timeout=10)

    # Bob's change ran after alice's commit: he was no longer an owner, and alice is the last one.
    assert isinstance(outcome["bob"], TeamError)
    assert dict(Membership.objects.filter(account=personas["account"]).values_list("user__email", "role")) == {
        "alice@example.com": "owner",
        "bob@example.com": "member",
    }


# Permissions


def owner_only_requests(personas, bob_membership, alice_membership, invitation):
    account = personas["account"].public_id
    return [
        ("post", reverse("account-invite", args=[account]), {"email": "x@example.com", "role": "member"}),
        ("post", reverse("member-role", args=[alice_membership.public_id]), {"role": "member"}),
        ("post", reverse("member-remove", args=[alice_membership.public_id]), {}),
        ("post", reverse("invitation-resend", args=[invitation.public_id]), {}),
        ("post", reverse("invitation-revoke", args=[invitation.public_id]), {}),
        ("post", reverse("account-rename", args=[account]), {"name": "Mine now"}),
        ("post", reverse("account-delete", args=[account]), {"confirm_name": "Alice's Apparel"}),
    ]


@pytest.fixture
def invitation(personas):
    return Invitation.objects.create(
        account=personas["account"], email="dave@example.com", role=Role.MEMBER, token_hash="0" * 64,
        invited_by=personas["alice"], expires_at="2099-01-01T00:00:00Z",
    )


def team_state(account):
    return (
        sorted(Membership.objects.filter(account=account).values_list("user__email", "role")),
        sorted(Invitation.objects.filter(account=account).values_list("email", "revoked_at", "token_hash")),
        Account.objects.filter(pk=account.pk).values_list("name", flat=True).first(),
    )


@pytest.mark.parametrize("role", [Role.MEMBER, Role.ADMIN])
def test_members_and_admins_get_403_on_owner_actions(personas, bob_membership, alice_membership, invitation, role):
    bob_membership.role = role
    bob_membership.save()
    before = team_state(personas["account"])
    bob = signed_in(personas["bob"])

    codes = [getattr(bob, method)(url, data).status_code for method, url, data in owner_only_requests(personas, bob_membership, alice_membership, invitation)]
    codes += [bob.get(reverse("account-audit")).status_code, bob.get(reverse("account-settings")).status_code]

    assert set(codes) == {403}
    assert team_state(personas["account"]) == before


def test_outsiders_get_404_on_every_url_naming_the_account(personas, bob_membership, alice_membership, invitation):
    before = team_state(personas["account"])
    charlie = signed_in(personas["charlie"])
    account = personas["account"].public_id
    requests = owner_only_requests(personas, bob_membership, alice_membership, invitation) + [
        ("post", reverse("member-role", args=[bob_membership.public_id]), {"role": "admin"}),
        ("post", reverse("account-leave", args=[account]), {}),
        ("post", reverse("account-switch", args=[account]), {}),
    ]

    codes = [getattr(charlie, method)(url, data).status_code for method, url, data in requests]

    assert set(codes) == {404}
    assert team_state(personas["account"]) == before


def test_team_audit_and_settings_pages_never_show_another_account(personas):
    charlie = signed_in(personas["charlie"])
    session = charlie.session
    session["opspulse_account"] = str(personas["account"].public_id)  # a tampered choice
    session.save()

    pages = [charlie.get(reverse(name)).content.decode() for name in ("account-team", "account-audit", "account-settings")]

    for html in pages:
        assert "Charlie&#x27;s Chairs" in html
        assert "Alice&#x27;s Apparel" not in html
        assert "bob@example.com" not in html


def test_anonymous_visitors_are_sent_to_sign_in(client, personas):
    for name in ("account-team", "account-audit", "account-settings", "account-create"):
        response = client.get(reverse(name))
        assert response.status_code == 302
        assert response.url.startswith(reverse("account_login"))


# Account settings


def test_owner_renames_the_account(alice_client, personas):
    response = alice_client.post(reverse("account-rename", args=[personas["account"].public_id]), {"name": "  Alice & Co  "})

    assert response.status_code == 302
    assert Account.objects.get(pk=personas["account"].pk).name == "Alice & Co"
    assert AuditEvent.objects.get(kind=AuditKind.ACCOUNT_RENAMED).details == {"from": "Alice's Apparel", "to": "Alice & Co"}


def test_renaming_to_an_empty_name_is_refused(alice_client, personas):
    response = alice_client.post(reverse("account-rename", args=[personas["account"].public_id]), {"name": "   "})

    assert response.status_code == 400
    assert Account.objects.get(pk=personas["account"].pk).name == "Alice's Apparel"


def test_deleting_the_account_needs_its_name_typed(alice_client, personas):
    store = StoreFactory(account=personas["account"])

    response = alice_client.post(reverse("account-delete", args=[personas["account"].public_id]), {"confirm_name": "alice"})

    assert response.status_code == 400
    assert b"That is not the account&#x27;s name." in response.content
    assert Account.objects.filter(pk=personas["account"].pk).exists()
    assert type(store).objects.filter(pk=store.pk).exists()


def test_deleting_the_account_removes_its_stores_and_team(alice_client, personas, rechecks, django_capture_on_commit_callbacks):
    store = StoreFactory(account=personas["account"])
    other_store = StoreFactory(account=personas["other_account"])

    with django_capture_on_commit_callbacks(execute=True):
        response = alice_client.post(
            reverse("account-delete", args=[personas["account"].public_id]), {"confirm_name": "Alice's Apparel"}
        )

    assert response.status_code == 302
    assert not Account.objects.filter(pk=personas["account"].pk).exists()
    assert not type(store).objects.filter(pk=store.pk).exists()
    assert type(other_store).objects.filter(pk=other_store.pk).exists()
    assert not Membership.objects.filter(user__in=[personas["alice"], personas["bob"]]).exists()
    assert sorted(rechecks) == sorted([personas["alice"].pk, personas["bob"].pk])
    deleted = AuditEvent.objects.get(kind=AuditKind.ACCOUNT_DELETED)
    assert deleted.user == personas["alice"] and deleted.details == {"account_name": "Alice's Apparel"}


# Audit log


def test_audit_log_shows_the_accounts_team_events_and_its_members_sign_ins(alice_client, personas, bob_membership):
    AuditEvent.objects.all().delete()  # the test client's own sign-in
    alice_client.post(reverse("member-role", args=[bob_membership.public_id]), {"role": "admin"}, HTTP_USER_AGENT=FIREFOX)
    record_event(AuditKind.LOGIN, user=personas["bob"])
    record_event(AuditKind.LOGIN, user=personas["charlie"])
    record_event(AuditKind.MEMBER_JOINED, user=personas["charlie"], account=personas["other_account"], role="member")

    response = alice_client.get(reverse("account-audit"))

    html = response.content.decode()
    assert response.status_code == 200
    assert html.count('data-event="role_changed"') == 1
    assert "from member to admin" in html
    assert "Firefox on Mac OS X" in html
    assert "127.0.0.1" in html
    assert html.count('data-event="login"') == 1
    assert "charlie@example.com" not in html
    assert 'data-event="member_joined"' not in html


def test_audit_log_is_newest_first_and_paginated(alice_client, personas):
    for number in range(55):
        record_event(AuditKind.ACCOUNT_RENAMED, user=personas["alice"], account=personas["account"], **{"from": f"n{number}", "to": f"n{number + 1}"})

    first = alice_client.get(reverse("account-audit")).content.decode()
    second = alice_client.get(reverse("account-audit") + "?page=2").content.decode()

    assert first.count('data-event="account_renamed"') == 50
    assert first.index("n54") < first.index("n53")
    assert "Page 1 of 2" in first
    assert second.count('data-event="account_renamed"') == 5
    assert "n0" in second


def test_audit_log_of_a_removed_member_keeps_the_account_events_but_not_their_sign_ins(alice_client, personas, bob_membership):
    AuditEvent.objects.all().delete()  # the test client's own sign-in
    record_event(AuditKind.LOGIN, user=personas["bob"])
    alice_client.post(reverse("member-remove", args=[bob_membership.public_id]))

    html = alice_client.get(reverse("account-audit")).content.decode()

    assert 'data-event="member_removed"' in html
    assert 'data-event="login"' not in html, html[html.index("<tbody"):]


def test_audit_log_shows_a_members_sign_ins_only_from_the_day_they_joined(alice_client, personas):
    """An owner who invites someone must not learn where and on which devices that person
    signed in, or failed to, while they worked elsewhere."""
    charlie = personas["charlie"]
    AuditEvent.objects.all().delete()  # the test clients' own sign-ins
    before = [
        record_event(AuditKind.LOGIN_FAILED, user=charlie, request=None),
        record_event(AuditKind.LOGIN, user=charlie, request=None),
    ]
    AuditEvent.objects.filter(pk__in=[event.pk for event in before]).update(
        created_at=timezone.now() - timedelta(days=30), user_agent=FIREFOX
    )
    Membership.objects.create(account=personas["account"], user=charlie, role=Role.MEMBER)
    record_event(AuditKind.LOGIN, user=charlie)

    html = alice_client.get(reverse("account-audit")).content.decode()

    assert html.count('data-event="login"') == 1
    assert 'data-event="login_failed"' not in html and "Firefox" not in html


FIREFOX = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14.5; rv:128.0) Gecko/20100101 Firefox/128.0"
