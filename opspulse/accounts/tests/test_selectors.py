from __future__ import annotations

import uuid

import pytest
from django.contrib.auth.models import AnonymousUser
from django.http import Http404

from opspulse.stores.selectors import get_store_for_user, stores_for_user
from tests.factories import MembershipFactory, StoreFactory, UserFactory


@pytest.fixture
def user(db):
    return UserFactory()


def test_stores_for_user_spans_every_account_of_the_user(user):
    first = StoreFactory(account=MembershipFactory(user=user).account)
    second = StoreFactory(account=MembershipFactory(user=user).account)
    StoreFactory()

    assert set(stores_for_user(user)) == {first, second}


def test_stores_for_an_anonymous_user_is_empty(db):
    StoreFactory()

    assert list(stores_for_user(AnonymousUser())) == []


def test_get_store_for_user_returns_a_store_of_the_users_account(user):
    store = StoreFactory(account=MembershipFactory(user=user).account)

    assert get_store_for_user(user, store.public_id) == store


def test_get_store_for_user_raises_404_for_another_accounts_store(user):
    MembershipFactory(user=user)
    foreign = StoreFactory()

    with pytest.raises(Http404):
        get_store_for_user(user, foreign.public_id)


def test_get_store_for_user_raises_404_for_an_unknown_store(user):
    with pytest.raises(Http404):
        get_store_for_user(user, uuid.uuid4())


def test_get_store_for_user_raises_404_for_an_anonymous_user(db):
    store = StoreFactory()

    with pytest.raises(Http404):
        get_store_for_user(AnonymousUser(), store.public_id)
