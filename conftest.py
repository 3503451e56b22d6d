"""Fixtures shared by every test: personas, stores, and real OpsPulse processes.

Tests run on real PostgreSQL (the embedded server, or DATABASE_URL), the real
procrastinate queue and the real channel layer. Web and worker processes started
here are ordinary `uvicorn` and `manage.py worker` processes pointed at the
test database (tests/support/processes.py). Helpers that are not fixtures live in
tests/support/.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.processes import WebServer, Worker
from tests.support.stores import (
    SHOPIFY_APP_CLIENT_ID,
    SHOPIFY_APP_CLIENT_SECRET,
    SHOPIFY_SECRET,
    WOO_SECRET,
    make_store,
)


@pytest.fixture(autouse=True)
def empty_job_queue(request, django_db_blocker):
    """Start each transactional test with an empty queue and an empty shared cache.

    procrastinate's tables belong to unmanaged models, and the cache table (rate-limit
    counters) to no model: the test database flush between transactional tests leaves
    them alone.
    """
    marker = request.node.get_closest_marker("django_db")
    if marker is None or not marker.kwargs.get("transaction"):
        yield
        return
    from django.db import connection

    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE procrastinate_jobs, procrastinate_events, procrastinate_periodic_defers,"
            " procrastinate_workers RESTART IDENTITY CASCADE"
        )
        cursor.execute("DELETE FROM opspulse_cache")
    yield


@pytest.fixture
def personas(db):
    """alice owns the account, bob is her teammate, charlie is an outsider."""
    from opspulse.accounts.models import Account, Membership, Role, User

    account = Account.objects.create(name="Alice's Apparel")
    other = Account.objects.create(name="Charlie's Chairs")
    alice = User.objects.create_user("alice@example.com", "alice-password-1")
    bob = User.objects.create_user("bob@example.com", "bob-password-1")
    charlie = User.objects.create_user("charlie@example.com", "charlie-password-1")
    Membership.objects.create(account=account, user=alice, role=Role.OWNER)
    Membership.objects.create(account=account, user=bob, role=Role.MEMBER)
    Membership.objects.create(account=other, user=charlie, role=Role.OWNER)
    return {"account": account, "other_account": other, "alice": alice, "bob": bob, "charlie": charlie}


@pytest.fixture
def private_receivers(settings):
    """Let alert posts reach receivers on 127.0.0.1: the guard refuses them by default."""
    settings.OUTBOUND_ALLOW_PRIVATE_ADDRESSES = True


@pytest.fixture
def shopify_store(personas):
    return make_store(personas["account"], platform="shopify", domain="alice-apparel.myshopify.com", secret=SHOPIFY_SECRET)


@pytest.fixture
def woo_store(personas):
    return make_store(personas["account"], platform="woocommerce", domain="shop.alice.example", secret=WOO_SECRET, currency="EUR")


@pytest.fixture(scope="session")
def process_logs(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("processes")


@pytest.fixture(scope="session")
def web(django_db_setup, django_db_blocker, process_logs) -> Iterator[WebServer]:
    """A uvicorn process serving OpsPulse on the test database."""
    server = WebServer(process_logs, "web")
    yield server
    server.stop()


@pytest.fixture
def worker(django_db_setup, process_logs) -> Iterator[Worker]:
    process = Worker(process_logs, "worker")
    yield process
    process.stop()


@pytest.fixture
async def live_listener():
    """The web process's LISTEN connection, as the ASGI lifespan starts it."""
    from opspulse.live import listener

    await listener.start()
    await asyncio.wait_for(listener.connected.wait(), timeout=5)
    yield
    await listener.stop()


@pytest.fixture(scope="session")
def fake_shopify():
    """The fake Shopify (opspulse.sim.fake_shopify), a real HTTP server, for this test session."""
    from opspulse.sim.fake_shopify.app import ServerThread, create_app
    from opspulse.sim.fake_shopify.state import AppSettings

    app = create_app(
        AppSettings(
            client_id=SHOPIFY_APP_CLIENT_ID, client_secret=SHOPIFY_APP_CLIENT_SECRET, redirect_prefix="http://127.0.0.1:"
        ),
        webhook_retries=1,
        webhook_retry_delay=0.1,
    )
    with ServerThread(app) as server:
        yield server


@pytest.fixture
def shopify_app(settings, fake_shopify):
    """OpsPulse's settings for the app, with shops reached at the fake."""
    settings.SHOPIFY_CLIENT_ID = SHOPIFY_APP_CLIENT_ID
    settings.SHOPIFY_CLIENT_SECRET = SHOPIFY_APP_CLIENT_SECRET
    settings.SHOPIFY_SHOP_URL_TEMPLATE = f"{fake_shopify.url}/shops/{{shop}}"
    settings.PUBLIC_URL = "http://127.0.0.1:9"  # nothing listens: webhooks are not under test here
    # Calls closer together than Shopify allows, for the tests that are not about that
    # limit; those that are (test_call_slots, the bulk import) keep the real spacing.
    settings.SHOPIFY_CALL_SPACING_SECONDS = 0.05
    return fake_shopify
