from __future__ import annotations

import pytest
from django.urls import reverse

from tests.factories import MembershipFactory, StoreFactory, UserFactory

PASSWORD = "correct horse battery staple"


@pytest.fixture
def user(db):
    return UserFactory(email="maya@example.com")


def test_login_with_email_and_password_goes_home(client, user):
    response = client.post(reverse("account_login"), {"login": "maya@example.com", "password": PASSWORD})

    assert response.status_code == 302
    assert response.url == reverse("home")


def test_login_with_a_wrong_password_is_refused(client, user):
    response = client.post(reverse("account_login"), {"login": "maya@example.com", "password": "wrong"})

    assert response.status_code == 200
    assert "_auth_user_id" not in client.session


def test_login_page_renders(client, db):
    response = client.get(reverse("account_login"))

    assert response.status_code == 200
    assert b'name="login"' in response.content
    assert b'name="remember"' in response.content


def test_home_lists_the_current_accounts_stores_with_dashboard_links(client, user):
    first = StoreFactory(name="Harbor Goods", account=MembershipFactory(user=user, account__name="A Harbor").account)
    second = StoreFactory(name="Fjord Supply", account=MembershipFactory(user=user, account__name="B Fjord").account)
    foreign = StoreFactory(name="Someone Else's Shop")
    client.force_login(user)

    response = client.get(reverse("home"))

    html = response.content.decode()
    assert response.status_code == 200
    assert reverse("dashboard", args=[first.public_id]) in html
    assert reverse("dashboard", args=[second.public_id]) not in html
    assert foreign.name not in html


def test_home_with_a_single_store_shows_the_list(client, user):
    store = StoreFactory(account=MembershipFactory(user=user).account)
    client.force_login(user)

    response = client.get(reverse("home"))

    assert response.status_code == 200
    assert reverse("dashboard", args=[store.public_id]) in response.content.decode()


def test_home_without_stores_shows_an_empty_state(client, user):
    MembershipFactory(user=user)
    client.force_login(user)

    response = client.get(reverse("home"))

    assert b"No stores yet" in response.content


@pytest.mark.parametrize("page", ["home", "account-team", "account-settings", "account-audit"])
def test_account_pages_promise_no_billing_plans_or_upgrades(client, user, page):
    StoreFactory(account=MembershipFactory(user=user).account)
    client.force_login(user)

    html = client.get(reverse(page)).content.decode().lower()

    for word in ("billing", "pricing", "upgrade", "subscription"):
        assert word not in html, f"{page} mentions {word}"


def test_home_sends_anonymous_visitors_to_sign_in(client, db):
    response = client.get(reverse("home"))

    assert response.status_code == 302
    assert response.url.startswith(reverse("account_login"))


def test_logout_signs_out(client, user):
    client.force_login(user)

    response = client.post(reverse("account_logout"))

    assert response.status_code == 302
    assert "_auth_user_id" not in client.session
