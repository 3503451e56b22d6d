from __future__ import annotations

import pytest
from django.db import connections

from tests.factories import MembershipFactory, StoreFactory, UserFactory
from tests.support.stores import client_for


@pytest.fixture
def store(db):
    return StoreFactory(name="Northwind Outfitters")


@pytest.fixture
def owner(store):
    return MembershipFactory(account=store.account, user=UserFactory(email="owner@example.com")).user


@pytest.fixture
def outsider(db):
    """A member of another account, with a store of their own."""
    membership = MembershipFactory(user=UserFactory(email="outsider@example.com"))
    StoreFactory(account=membership.account)
    return membership.user


@pytest.fixture
def owner_client(owner):
    return client_for(owner)


@pytest.fixture
def outsider_client(outsider):
    return client_for(outsider)


@pytest.fixture(autouse=True)
def close_thread_connections():
    """Close each connection a consumer's worker thread opens as soon as its call ends.

    Otherwise those connections outlive the test and keep the test database from being dropped.
    """
    database = connections.settings["default"]
    previous = database.get("CONN_MAX_AGE", 0)
    database["CONN_MAX_AGE"] = 0
    yield
    database["CONN_MAX_AGE"] = previous


@pytest.fixture
def small_clock_skew(monkeypatch):
    """The listener has just connected: pages rendered now count as rendered after it."""
    from opspulse.live import listener

    monkeypatch.setattr(listener, "CLOCK_SKEW_SECONDS", 0.01)
