"""`make demo`'s terminal: after the sign-in banner only problems, and one line per mail.

A real run of scripts/demo.py (web, worker, simulator and the Shopify stand-in) on the
test database, with one store: the demo user signs in, opens the admin link the banner
prints, connects the stand-in's shop (whose orders then arrive by webhook) and asks for a
password reset.
"""

from __future__ import annotations

import html
import io
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from django.core.management import call_command
from django.urls import reverse

from opspulse.accounts.models import User
from opspulse.lib.mailbox import stored_mails
from opspulse.sim.demo import DEMO_EMAIL, DEMO_PASSWORD
from tests.support.processes import ROOT, free_port, process_env, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

BANNER_END = "Press Ctrl-C to stop.\n"
DEMO_SHOP = "lighthouse-supply.myshopify.com"


class Demo:
    def __init__(self, var: Path) -> None:
        self.var = var
        self.url = f"http://127.0.0.1:{free_port()}"
        self.shopify_url = f"http://127.0.0.1:{free_port()}"
        self.terminal = var / "terminal.txt"
        env = process_env(
            DJANGO_SETTINGS_MODULE="config.settings",
            OPSPULSE_VAR_DIR=str(var),
            PORT=str(urlsplit(self.url).port),
            DEMO_SHOPIFY_PORT=str(urlsplit(self.shopify_url).port),
            DEMO_STORES="1",
        )
        for name in ("LOG_LEVEL", "PYTHONWARNINGS", "SHOPIFY_CLIENT_ID", "PUBLIC_URL", "EMAIL_BACKEND", "EMAIL_FILE_PATH"):
            env.pop(name, None)
        var.mkdir(parents=True, exist_ok=True)
        with self.terminal.open("wb") as terminal:
            # A session of its own, like a terminal's: Ctrl-C reaches only the demo.
            self.popen = subprocess.Popen(
                [sys.executable, "scripts/demo.py"], cwd=ROOT, env=env,
                stdout=terminal, stderr=subprocess.STDOUT, start_new_session=True,
            )

    def screen(self) -> str:
        return self.terminal.read_text(errors="replace")

    def after_banner(self) -> list[str]:
        return [line for line in self.screen().split(BANNER_END, 1)[1].splitlines() if line.strip()]

    def stop(self) -> None:
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGINT)
            try:
                self.popen.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait()


@pytest.fixture
def demo(tmp_path):
    running = Demo(tmp_path / "var")
    try:
        wait_for(
            lambda: BANNER_END in running.screen() or running.popen.poll() is not None,
            timeout=180, interval=0.5, message="the demo's banner",
        )
        assert running.popen.poll() is None, running.screen()
        yield running
    finally:
        running.stop()


def signed_in_browser(demo: Demo) -> httpx.Client:
    browser = httpx.Client(base_url=demo.url, timeout=30)
    browser.get("/accounts/login/")
    signed_in = browser.post(
        "/accounts/login/",
        data={"login": DEMO_EMAIL, "password": DEMO_PASSWORD, "csrfmiddlewaretoken": browser.cookies["csrftoken"]},
    )
    assert signed_in.status_code == 302, signed_in.text
    return browser


def connect_demo_shop(demo: Demo, browser: httpx.Client) -> None:
    """"Add a Shopify store" with the stand-in's shop, through its install page."""
    started = browser.post(
        "/shopify/connect/", data={"shop": DEMO_SHOP, "csrfmiddlewaretoken": browser.cookies["csrftoken"]}
    )
    install_page = httpx.get(started.headers["location"], timeout=30)
    assert "Install app" in install_page.text
    fields = {name: html.unescape(value) for name, value in re.findall(r'name="([^"]+)" value="([^"]*)"', install_page.text)}
    approved = httpx.post(str(install_page.url.copy_with(query=None)), data=fields, timeout=30)
    connected = browser.get(approved.headers["location"], follow_redirects=True)
    assert connected.url.path.startswith("/stores/"), connected.text


def test_after_the_banner_the_terminal_shows_one_line_per_mail_and_nothing_routine(demo):
    browser = signed_in_browser(demo)

    admin = browser.get("/admin/")
    connect_demo_shop(demo, browser)
    # The stand-in's shop takes orders at its history's pace (minutes apart): place one.
    httpx.post(f"{demo.shopify_url}/_fake/shops/{DEMO_SHOP}/orders", json={}, timeout=30).raise_for_status()
    wait_for(
        lambda: any(
            delivery["topic"] == "orders/create" and delivery["status"] == 200
            for delivery in httpx.get(
                f"{demo.shopify_url}/_fake/webhooks/deliveries", params={"shop": DEMO_SHOP}
            ).json()["deliveries"]
        ),
        timeout=60, interval=0.5, message="an order webhook from the Shopify stand-in",
    )
    browser.post(
        "/accounts/password/reset/", data={"email": DEMO_EMAIL, "csrfmiddlewaretoken": browser.cookies["csrftoken"]}
    )
    wait_for(lambda: any("Reset your password" in line for line in demo.after_banner()), message="the mail's line")
    time.sleep(1)  # anything else the processes print
    shop_calls = httpx.get(f"{demo.shopify_url}/_fake/shops/{DEMO_SHOP}/calls").json()
    mails = stored_mails(folder=demo.var / "mail")
    lines = demo.after_banner()

    assert admin.status_code == 200 and "Site administration" in admin.text
    assert shop_calls["calls"], "OpsPulse called the Shopify stand-in"
    assert [line for line in lines if "Reset your password" in line] == [
        f"Mail to {DEMO_EMAIL}: [OpsPulse] Reset your password — {demo.url}/dev/mail/"
    ]
    # Every line after the banner announces a mail (an alert digest may come too), one each.
    assert [line for line in lines if not line.startswith("Mail to ")] == [], "\n".join(lines)
    assert len(lines) == len(mails)


def test_the_demo_login_opens_the_admin_and_a_merchant_who_signs_up_gets_no_staff_rights(client):
    call_command("seed_demo", "--stores", "1", "--no-history", stdout=io.StringIO())
    client.force_login(User.objects.get(email=DEMO_EMAIL))

    admin = client.get("/admin/")

    assert admin.status_code == 200
    assert "Site administration" in admin.text

    client.logout()
    passphrase = "lantern orchard velvet quarry"
    client.post(
        reverse("account_signup"),
        {"email": "nadia@example.com", "password1": passphrase, "password2": passphrase, "account_name": "Nadia's"},
    )
    merchant = User.objects.get(email="nadia@example.com")
    assert not merchant.is_staff and not merchant.is_superuser
