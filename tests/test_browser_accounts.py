"""Accounts in a real browser: sign up, confirm from the mail, sign in, reach an empty home."""

from __future__ import annotations

import re
import time

import pytest

from opspulse.lib.mailbox import stored_mails
from tests.factories import MembershipFactory, StoreFactory, UserFactory
from tests.support.browser import chromium

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSPHRASE = "lantern orchard velvet quarry"


@pytest.fixture
def browser_context(web):
    with chromium(width=1280, height=900) as context:
        yield context


def mail_to(web, address: str, *, timeout: float = 10) -> str:
    """The text of the newest mail the web server sent to `address`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for mail in stored_mails(folder=web.mail_dir):
            if address in mail.to:
                return mail.text
        time.sleep(0.1)
    raise AssertionError(f"no mail to {address}")


def test_sign_up_confirm_and_sign_in_reaches_an_empty_home(web, browser_context):
    page = browser_context.new_page()
    console_errors: list[str] = []
    page.on("console", lambda message: message.type == "error" and console_errors.append(message.text))
    email = f"nadia-{time.time_ns()}@example.com"

    page.goto(f"{web.url}/accounts/signup/")
    page.fill('input[name="email"]', email)
    page.fill('input[name="password1"]', PASSPHRASE)
    page.fill('input[name="password2"]', PASSPHRASE)
    page.fill('input[name="account_name"]', "Nadia's Nursery")
    page.click('form [type="submit"]')
    page.wait_for_url("**/accounts/confirm-email/")
    assert "link to confirm your address" in page.inner_text("main")
    page.goto(f"{web.url}/")  # no way in before the address is confirmed
    assert "/accounts/login/" in page.url

    link = re.search(r"https?://\S+/accounts/confirm-email/\S+/", mail_to(web, email)).group(0)
    page.goto(link)
    page.click('form [type="submit"]')
    page.wait_for_url("**/accounts/login/**")

    page.fill('input[name="login"]', email)
    page.fill('input[name="password"]', PASSPHRASE)
    page.click('form [type="submit"]')
    page.wait_for_url(f"{web.url}/")

    main = page.inner_text("main")
    assert "Nadia's Nursery" in page.inner_text("header")
    assert "Connect a Shopify store" in main
    assert email in page.inner_text("header")
    assert console_errors == []


def test_a_wrong_password_shows_an_error_and_does_not_sign_in(web, browser_context):
    page = browser_context.new_page()

    page.goto(f"{web.url}/accounts/login/")
    page.fill('input[name="login"]', "nobody@example.com")
    page.fill('input[name="password"]', "not the password")
    page.click('form [type="submit"]')

    page.wait_for_selector("text=not correct")
    assert "/accounts/login/" in page.url
    page.goto(f"{web.url}/")
    assert "/accounts/login/" in page.url


@pytest.fixture
def team_setup(web):
    """Alice owns a store; erin has signed up (confirmed, no account yet); charlie runs another shop."""
    from opspulse.accounts.models import Role

    alice = UserFactory(email="alice@example.com", password=PASSPHRASE)
    UserFactory(email="erin@example.com", password=PASSPHRASE)
    charlie = UserFactory(email="charlie@example.com", password=PASSPHRASE)
    own = MembershipFactory(user=alice, role=Role.OWNER, account__name="Alice's Apparel").account
    foreign = MembershipFactory(user=charlie, role=Role.OWNER, account__name="Charlie's Chairs").account
    return {
        "store": StoreFactory(account=own, name="Alice Apparel Shop"),
        "foreign_store": StoreFactory(account=foreign, name="Charlie Chairs Shop"),
    }


def sign_in_page(context, web, email: str, next_path: str = "/"):
    page = context.new_page()
    page.goto(f"{web.url}/accounts/login/?next={next_path}")
    page.fill('input[name="login"]', email)
    page.fill('input[name="password"]', PASSPHRASE)
    page.click('form [type="submit"]')
    page.wait_for_url(f"{web.url}{next_path}")
    return page


def test_an_invited_teammate_joins_and_sees_only_that_account(web, team_setup, browser_context):
    foreign_store = team_setup["foreign_store"]
    alice = sign_in_page(browser_context, web, "alice@example.com", "/account/team/")
    alice.fill('input[name="email"]', "erin@example.com")
    alice.select_option('select[name="role"]', "member")
    alice.click("text=Send invitation")
    alice.wait_for_selector("text=erin@example.com")
    link = re.search(r"https?://\S+/invitations/\S+/", mail_to(web, "erin@example.com")).group(0)

    from playwright.sync_api import Browser

    browser: Browser = browser_context.browser
    erin_context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        erin = erin_context.new_page()
        console_errors: list[str] = []
        erin.on("console", lambda message: message.type == "error" and console_errors.append(message.text))
        erin.goto(link)
        assert "Alice's Apparel" in erin.inner_text("main")
        erin.locator("main").get_by_role("link", name="Sign in", exact=True).click()
        erin.fill('input[name="login"]', "erin@example.com")
        erin.fill('input[name="password"]', PASSPHRASE)
        erin.click('form [type="submit"]')
        erin.click("text=Accept and join")
        erin.wait_for_url(f"{web.url}/")

        home = erin.inner_text("main")
        assert "Alice Apparel Shop" in home
        assert "Charlie Chairs Shop" not in home
        erin.click("main >> text=Alice Apparel Shop")
        erin.wait_for_selector("#live-status:has-text('Live')", timeout=10_000)

        # Another tenant's dashboard: not found, and its socket is refused.
        response = erin.goto(f"{web.url}/stores/{foreign_store.public_id}/")
        assert response.status == 404
        close_code = erin.evaluate(
            """url => new Promise(resolve => {
                const socket = new WebSocket(url);
                socket.onclose = event => resolve(event.code);
            })""",
            f"{web.url.replace('http', 'ws')}/ws/stores/{foreign_store.public_id}/",
        )
        assert close_code == 4403
        assert [error for error in console_errors if "404" not in error and "WebSocket" not in error] == []
    finally:
        erin_context.close()
