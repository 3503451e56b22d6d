from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.sessions.models import Session
from django.test import Client
from django.utils import timezone

from opspulse.accounts.sessions import signed_in_users
from opspulse.stores.selectors import member_store_pairs
from tests.factories import MembershipFactory, StoreFactory, UserFactory

pytestmark = pytest.mark.django_db


def session_of(user) -> str:
    client = Client()
    client.force_login(user)
    return client.session.session_key


def test_signed_in_sessions_map_to_their_users_and_ended_ones_are_left_out():
    ada, bob, cleo, dan = (UserFactory() for _ in range(4))
    sessions = {user: session_of(user) for user in (ada, bob, cleo, dan)}
    bob.set_password("a new passphrase for bob")
    bob.save()  # every session of bob signed in with the old password has ended
    cleo.is_active = False
    cleo.save()
    Session.objects.filter(session_key=sessions[dan]).update(expire_date=timezone.now() - timedelta(seconds=1))

    assert signed_in_users([*sessions.values(), "no-such-session"]) == {sessions[ada]: ada.pk}


def test_a_signed_out_session_is_left_out():
    client = Client()
    client.force_login(UserFactory())
    key = client.session.session_key

    client.logout()

    assert signed_in_users([key]) == {}


def test_member_store_pairs_keeps_the_pairs_where_the_user_belongs_to_the_stores_account():
    store, other_store = StoreFactory(), StoreFactory()
    member = MembershipFactory(account=store.account).user
    outsider = MembershipFactory(account=other_store.account).user

    pairs = {(member.pk, store.pk), (member.pk, other_store.pk), (outsider.pk, store.pk), (outsider.pk, other_store.pk)}

    assert member_store_pairs(pairs) == {(member.pk, store.pk), (outsider.pk, other_store.pk)}
