"""No secret or personal data reaches the logs.

Attack: whoever reads the logs (a log service, an operator's terminal, a support bundle)
would otherwise collect what they hold: httpx logs every request's URL at INFO, and an
alert channel's URL is the credential that posts to it.
"""

from __future__ import annotations

import copy
import io
import logging
import logging.config
import re
from collections.abc import Iterator

import httpx
import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from opspulse.accounts.models import Role
from opspulse.alerts import actions as alert_actions
from opspulse.alerts import delivery
from opspulse.alerts.models import Alert, AlertEvent, AlertType, ChannelDeliveryStatus
from opspulse.lib.logging import RedactSecrets, redact
from opspulse.stores.models import Integration, Store
from tests.factories import MembershipFactory, UserFactory
from tests.support.accounts import reset_link
from tests.support.alerts import Receiver
from tests.support.jobs import run_platform_jobs, run_worker_until_idle
from tests.support.processes import WebServer
from tests.support.shopify import app_env, create_shop, install
from tests.support.stores import SHOPIFY_APP_CLIENT_SECRET
from tests.support.webhooks import post_shopify, shopify_order

CUSTOMER_EMAIL = "grace.hopper@example.net"
CUSTOMER_PHONE = "+33 6 12 34 56 78"
OWNER_EMAIL = "owner@example.com"
NEW_PASSWORD = "quiet meadow copper lantern"


@pytest.fixture
def every_log_record(settings) -> Iterator[io.StringIO]:
    """This process's log as the configured handlers write it, with LOG_LEVEL=DEBUG."""
    config = copy.deepcopy(settings.LOGGING)
    config["root"]["level"] = "DEBUG"
    written = io.StringIO()
    config["handlers"]["console"]["stream"] = written
    logging.config.dictConfig(config)
    yield written
    logging.config.dictConfig(settings.LOGGING)


@pytest.fixture
def debug_web(django_db_setup, process_logs, shopify_app) -> Iterator[WebServer]:  # noqa: F811 - fixture
    """An OpsPulse web process logging at DEBUG, receiving the shop's webhooks."""
    server = WebServer(process_logs, "web-debug-log", LOG_LEVEL="DEBUG", **app_env(shopify_app))
    yield server
    server.stop()


@pytest.fixture
def slack_receiver() -> Iterator[Receiver]:
    server = Receiver([])
    yield server
    server.close()


@pytest.mark.django_db(transaction=True)
def test_install_backfill_webhooks_a_slack_alert_and_a_password_reset_log_no_secret(
    shopify_app, debug_web, slack_receiver, every_log_record, settings, private_receivers  # noqa: F811 - fixture
):
    owner = MembershipFactory(user=UserFactory(email=OWNER_EMAIL), role=Role.OWNER).user
    browser = Client()
    browser.force_login(owner)
    shop = "logbook-supply.myshopify.com"
    create_shop(shopify_app, shop, orders=5, days=5, seed=5)

    # An install through OAuth, and its import.
    install(browser, shop)
    store = Store.objects.get(domain=shop)
    tokens_at_install = Integration.objects.get(store=store)
    run_platform_jobs()

    # Orders arrive as webhooks (the customer's email and phone in them) and are drained;
    # the big one fires an alert to a Slack channel.
    Alert.objects.create(store=store, type=AlertType.HIGH_VALUE_ORDER, config={"threshold": "40.00"})
    slack_url = slack_receiver.url.replace("/hook", "/services/T0LOGS/B0LOGS/Sl4ckSecretPathXyz")
    channel = alert_actions.create_channel(account=store.account, store=store, kind="slack", name="Ops", url=slack_url)
    for order_id in (7001, 7002, 7003):
        payload = shopify_order(order_id, at=timezone.now(), email=CUSTOMER_EMAIL, currency="EUR") | {
            "phone": CUSTOMER_PHONE
        }
        response = post_shopify(debug_web.url, store, "orders/create", payload, secret=SHOPIFY_APP_CLIENT_SECRET)
        assert response.status_code == 200
    forged = post_shopify(debug_web.url, store, "orders/create", payload, secret="shpss_forged_by_an_attacker")
    assert forged.status_code == 401
    run_worker_until_idle()
    deliveries, _ = alert_actions.dispatch_event(AlertEvent.objects.filter(store=store).earliest("pk").pk)
    assert delivery.post_delivery(deliveries[0], final=True) == ChannelDeliveryStatus.DELIVERED
    assert len(slack_receiver.requests) == 1

    # A password reset, by the link of its mail.
    browser.post(reverse("account_logout"))
    browser.post(reverse("account_reset_password"), {"email": OWNER_EMAIL})
    link = reset_link(mail.outbox[-1])
    form = browser.get(link, follow=True)
    browser.post(form.redirect_chain[-1][0], {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD})
    assert browser.post(reverse("account_login"), {"login": OWNER_EMAIL, "password": NEW_PASSWORD}).status_code == 302

    logged = every_log_record.getvalue()
    web_logged = debug_web.output()
    integration = Integration.objects.get(store=store)
    secrets = {
        "access token": tokens_at_install.access_token,
        "refresh token": tokens_at_install.refresh_token,
        "current access token": integration.access_token,
        "app client secret": SHOPIFY_APP_CLIENT_SECRET,
        "channel URL": "Sl4ckSecretPathXyz",
        "channel secret": channel.secret,
        "reset link": link.rstrip("/").rsplit("/", 1)[-1],
        "customer email": CUSTOMER_EMAIL,
        "customer phone": CUSTOMER_PHONE,
        "customer phone digits": CUSTOMER_PHONE.replace(" ", ""),
        "user email": OWNER_EMAIL,
    }
    for name, secret in secrets.items():
        assert secret and secret not in logged, f"the {name} is in this process's log"
        assert secret not in web_logged, f"the {name} is in the web process's log"
    # Both logs were written: the sign-ins were audited, the forged webhook was refused.
    assert re.search(r" INFO opspulse\.audit audit login ", logged)
    refused = r" WARNING opspulse\.security webhook refused: platform=shopify reason=signature mismatch shop=logbook"
    assert re.search(refused, web_logged)


def test_the_filter_is_on_every_configured_handler(settings):
    assert settings.LOGGING["filters"]["redact"]["()"] == "opspulse.lib.logging.RedactSecrets"
    assert all("redact" in handler.get("filters", []) for handler in settings.LOGGING["handlers"].values())
    assert {name: settings.LOGGING["loggers"][name]["level"] for name in ("httpx", "httpcore", "urllib3")} == {
        "httpx": "WARNING", "httpcore": "WARNING", "urllib3": "WARNING",
    }


def test_the_web_servers_own_log_goes_through_the_filter_too(settings):
    """uvicorn installs handlers of its own before Django configures logging; a traceback it
    logs for a failed request must still be redacted."""
    import uvicorn

    uvicorn.Config("config.asgi:application", log_level="info")  # sets up uvicorn's logging, as `uvicorn` does
    logging.config.dictConfig(settings.LOGGING)  # then django.setup()

    for name in ("uvicorn.error", "uvicorn.access"):
        handlers, logger = [], logging.getLogger(name)
        while logger:
            handlers += logger.handlers
            logger = logger.parent if logger.propagate else None
        assert handlers, name
        assert all(any(isinstance(f, RedactSecrets) for f in handler.filters) for handler in handlers), name


def test_djangos_own_records_are_written_once_and_redacted_with_debug_on(settings, capsys):
    """Django's default logging gives its loggers a console handler of their own with DEBUG
    on, which would write each request warning a second time, unredacted."""
    from django.utils.log import configure_logging

    settings.DEBUG = True
    config = copy.deepcopy(settings.LOGGING)
    written = io.StringIO()
    config["handlers"]["console"]["stream"] = written
    configure_logging("logging.config.dictConfig", config)  # Django's defaults, then ours, as django.setup()
    try:
        logging.getLogger("django.request").warning("Not Found: /invitations/ for %s", OWNER_EMAIL)
    finally:
        logging.config.dictConfig(settings.LOGGING)

    assert written.getvalue().count("Not Found") == 1
    assert OWNER_EMAIL not in written.getvalue()
    assert capsys.readouterr().err == ""


def test_an_http_client_logging_a_slack_post_at_info_is_redacted_by_the_filter(settings):
    """Even with httpx turned up to INFO, the URL's secret path does not reach the handler."""
    written = io.StringIO()
    handler = logging.StreamHandler(written)
    handler.addFilter(RedactSecrets())
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
    httpx_logger = logging.getLogger("httpx")
    httpx_logger.addHandler(handler)
    level = httpx_logger.level
    httpx_logger.setLevel(logging.INFO)
    try:
        with httpx.Client(transport=httpx.MockTransport(lambda request: httpx.Response(200))) as client:
            client.post("https://hooks.slack.com/services/T0AAAA/B0BBBB/Sl4ckSecretPathXyz", json={})
    finally:
        httpx_logger.removeHandler(handler)
        httpx_logger.setLevel(level)

    assert written.getvalue() == (
        'INFO httpx HTTP Request: POST https://hooks.slack.com/[redacted] "HTTP/1.1 200 OK"\n'
    )


@pytest.mark.parametrize(
    ("logged", "written"),
    [
        pytest.param("POST https://hooks.slack.com/services/T0/B0/XXXX done",
                     "POST https://hooks.slack.com/[redacted] done", id="slack_webhook_path"),
        pytest.param("POST https://hooks.example.com/in/3f2a9c0e5b7d4e11a2b3/ok 200",
                     "POST https://hooks.example.com/in/[redacted]/ok 200", id="webhook_url_secret_segment"),
        pytest.param("POST https://x.myshopify.com/admin/api/2026-10/graphql.json",
                     "POST https://x.myshopify.com/admin/api/2026-10/graphql.json", id="api_url_kept"),
        pytest.param("GET https://ops:hunter22@hooks.example.com/in?key=abc&team=ops",
                     "GET https://hooks.example.com/in?key=[redacted]&team=[redacted]", id="url_userinfo_and_query"),
        pytest.param("GET /shopify/callback?code=c0de&hmac=ab12&shop=x.myshopify.com 302",
                     "GET /shopify/callback?code=[redacted]&hmac=[redacted]&shop=[redacted] 302", id="oauth_callback"),
        pytest.param("token shpat_0123456789abcdef and shpua_0123456789abcdef and shpca_abcdef012345",
                     "token shpat_[redacted] and shpua_[redacted] and shpca_[redacted]", id="shopify_tokens"),
        pytest.param("{'X-Shopify-Access-Token': 'opaque-token-1'}", "{'X-Shopify-Access-Token': '[redacted]'}",
                     id="shopify_token_header"),
        pytest.param("[(b'authorization', b'Bearer abcdefgh123')]", "[(b'authorization', b'Bearer [redacted]')]",
                     id="authorization_header_tuple"),
        pytest.param("Authorization: Basic dXNlcjpwYXNz", "Authorization: Basic [redacted]", id="basic_auth"),
        pytest.param('{"access_token": "abc", "refresh_token": "def", "scope": "read_orders"}',
                     '{"access_token": "[redacted]", "refresh_token": "[redacted]", "scope": "read_orders"}',
                     id="token_json"),
        pytest.param("keys ck_0123456789abcdef0123 / cs_0123456789abcdef0123", "keys ck_[redacted] / cs_[redacted]",
                     id="woocommerce_consumer_keys"),
        pytest.param("channel secret whsec_abcdefghij123", "channel secret whsec_[redacted]", id="channel_secret"),
        pytest.param("http://testserver/accounts/password/reset/key/4-cabc12-deadbeef/ sent",
                     "http://testserver/accounts/password/reset/key/[redacted] sent", id="password_reset_link"),
        pytest.param("join at /invitations/AbC123tokenXyz/", "join at /invitations/[redacted]", id="invitation_link"),
        pytest.param("customer ada@example.com, +33 6 12 34 56 78, (555) 555-1234",
                     "customer [email], [phone], [phone]", id="email_and_phones"),
        pytest.param("order 5550000000001 at 2026-12-06 23:48:23 for 950.00 in store 42",
                     "order 5550000000001 at 2026-12-06 23:48:23 for 950.00 in store 42", id="ids_dates_amounts_kept"),
    ],
)
def test_the_filter_redacts(logged, written):
    assert redact(logged) == written


def test_a_traceback_is_redacted_too():
    written = io.StringIO()
    handler = logging.StreamHandler(written)
    handler.addFilter(RedactSecrets())
    logger = logging.getLogger("opspulse.tests.redaction")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        try:
            raise ValueError("could not post to https://hooks.slack.com/services/T0/B0/Sl4ckSecretPathXyz")
        except ValueError:
            logger.exception("alert for %s failed", "ada@example.com")
    finally:
        logger.removeHandler(handler)
        logger.propagate = True

    output = written.getvalue()
    assert output.startswith("alert for [email] failed\nTraceback")
    assert "Sl4ckSecretPathXyz" not in output and "hooks.slack.com/[redacted]" in output
