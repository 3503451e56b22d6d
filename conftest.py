"""Fixtures shared by every test: personas, stores, and real OpsPulse processes.

Tests run on real PostgreSQL (the embedded server, or DATABASE_URL), the real
procrastinate queue and the real channel layer. Web and worker processes started
here are ordinary `uvicorn` and `manage.py worker` processes pointed at the
test database.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, urlsplit

import httpx
import pytest

from opspulse.lib.serve import uvicorn_command

ROOT = Path(__file__).resolve().parent
SHOPIFY_SECRET = "shpss_test_webhook_secret"
# The Shopify app's credentials, as the fake Shopify knows them.
SHOPIFY_APP_CLIENT_ID = "opspulse-test-app"
SHOPIFY_APP_CLIENT_SECRET = "shpss_fake_app_client_secret"
WOO_SECRET = "woo_test_webhook_secret"


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



def client_for(user):
    """A Django test client signed in as `user`."""
    from django.test import Client

    client = Client()
    client.force_login(user)
    return client


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


def make_store(account, *, platform: str, domain: str, secret: str, timezone: str = "Europe/Paris", currency: str = "EUR"):
    from opspulse.stores.models import Integration, Store

    store = Store.objects.create(
        account=account, name=domain.split(".")[0].title(), platform=platform, domain=domain,
        timezone=timezone, currency=currency,
    )
    integration = Integration(store=store, type=platform)
    integration.webhook_secret = secret
    integration.save()
    return store


@pytest.fixture
def shopify_store(personas):
    return make_store(personas["account"], platform="shopify", domain="alice-apparel.myshopify.com", secret=SHOPIFY_SECRET)


@pytest.fixture
def woo_store(personas):
    return make_store(personas["account"], platform="woocommerce", domain="shop.alice.example", secret=WOO_SECRET, currency="EUR")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def redis_answers(url: str) -> bool:
    """Whether a Redis server answers PING at `url` (redis://host:port/db)."""
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 6379), timeout=0.5) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """A redis-server of a test's own, on a free port: never the machine's shared one."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.popen: subprocess.Popen | None = None
        self.start()

    def start(self) -> None:
        with (self.directory / f"redis-{self.port}.log").open("ab") as log:
            self.popen = subprocess.Popen(
                ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                 "--dir", str(self.directory)],
                stdout=log, stderr=subprocess.STDOUT,
            )
        wait_for(lambda: redis_answers(self.url), timeout=10, message=f"the test's Redis on port {self.port}")

    def stop(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            self.popen.terminate()
            self.popen.wait(timeout=10)

    def restart(self) -> None:
        self.stop()
        self.start()


def database_url_for_processes() -> str:
    from django.db import connection

    s = connection.settings_dict
    auth = quote(s["USER"] or "", safe="") + (":" + quote(s["PASSWORD"], safe="") if s.get("PASSWORD") else "")
    host = quote(s["HOST"] or "", safe="") + (f":{s['PORT']}" if s.get("PORT") else "")
    return f"postgresql://{auth}@{host}/{s['NAME']}"


def process_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=database_url_for_processes(),
        DJANGO_SETTINGS_MODULE="config.settings_test",
        PYTHONPATH=str(ROOT),
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


class Process:
    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.log_path = log
        self.log = log.open("wb")
        self.popen = subprocess.Popen(args, cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT)

    def stop(self, sig: int | None = None) -> None:
        if self.popen.poll() is None:
            if sig is None:
                self.popen.terminate()
            else:
                self.popen.send_signal(sig)
            try:
                self.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        self.log.close()

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")


class WebServer(Process):
    def __init__(self, tmp: Path, name: str, *, port: int | None = None, **env: str) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        # The server's mail goes to files here (the development mailbox backend).
        self.mail_dir = tmp / f"{name}-mail"
        super().__init__(
            uvicorn_command(host="127.0.0.1", port=self.port),
            process_env(
                PGAPPNAME=f"opspulse-test-{name}",
                EMAIL_BACKEND="opspulse.lib.mailbox.DevelopmentEmailBackend",
                EMAIL_FILE_PATH=str(self.mail_dir),
                **env,
            ),
            tmp / f"{name}.log",
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                raise RuntimeError(f"web server {name} exited:\n{self.output()}")
            try:
                httpx.get(f"{self.url}/accounts/login/", timeout=1)
                return
            except httpx.HTTPError:
                time.sleep(0.2)
        raise RuntimeError(f"web server {name} did not start:\n{self.output()}")


class Worker(Process):
    def __init__(self, tmp: Path, name: str, **env: str) -> None:
        super().__init__(
            [sys.executable, "manage.py", "worker", "--concurrency", "2"],
            process_env(PGAPPNAME=f"opspulse-test-{name}", **env),
            tmp / f"{name}.log",
        )


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


def run_worker_until_idle() -> None:
    """Process every job that is due, in this process, on the real queue."""
    from procrastinate.contrib.django import app

    # As `manage.py procrastinate worker` does: workers use a psycopg connector.
    with app.replace_connector(app.connector.get_worker_connector()) as worker_app:
        worker_app.run_worker(queues=["ingest"], wait=False, install_signal_handlers=False, listen_notify=False)


def wait_for(predicate, *, timeout: float = 10, interval: float = 0.05, message: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {message}")


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
