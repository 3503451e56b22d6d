"""The worker's LISTEN connection: it wakes the worker for new jobs and survives losing the database."""

from __future__ import annotations

import asyncio

import psycopg
import pytest
from django.db import connection
from procrastinate.contrib.django.utils import connector_params

from config.worker import WorkerConnector
from opspulse.lib import db

pytestmark = [pytest.mark.anyio, pytest.mark.django_db(transaction=True)]

CHANNEL = "opspulse_worker_test"


async def execute(sql: str, params: list | None = None) -> None:
    async with await psycopg.AsyncConnection.connect(db.conninfo(), autocommit=True) as conn:
        await conn.execute(sql, params)


async def notify(payload: str) -> None:
    await execute("SELECT pg_notify(%s, %s)", [CHANNEL, payload])


KILL_LISTENER = "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query ILIKE %s AND pid <> pg_backend_pid()"


async def kill_listener() -> None:
    await execute(KILL_LISTENER, [f"%LISTEN%{CHANNEL}%"])


async def next_notification(received: asyncio.Queue, *, within: float = 10) -> str:
    """Notify until the listener hears one (those sent while it reconnects are lost)."""
    deadline = asyncio.get_running_loop().time() + within
    attempt = 0
    while asyncio.get_running_loop().time() < deadline:
        attempt += 1
        await notify(f"n{attempt}")
        try:
            return await asyncio.wait_for(received.get(), timeout=0.1)
        except TimeoutError:
            continue
    pytest.fail("the listener did not hear a notification")


@pytest.fixture
async def listening(monkeypatch):
    monkeypatch.setattr(WorkerConnector, "max_backoff_seconds", 0.2)
    connector = WorkerConnector(kwargs=connector_params())
    await connector.open_async()
    received: asyncio.Queue = asyncio.Queue()

    async def on_notification(*, channel: str, payload: str) -> None:
        await received.put(payload)

    task = asyncio.create_task(connector.listen_notify(on_notification=on_notification, channels=[CHANNEL]))
    yield task, received
    task.cancel()
    await connector.close_async()


async def test_the_listener_comes_back_after_its_connection_is_killed(listening):
    task, received = listening
    assert await next_notification(received)

    await kill_listener()

    assert await next_notification(received)
    assert not task.done()


async def test_the_listener_waits_out_a_database_that_refuses_connections(listening):
    task, received = listening
    assert await next_notification(received)
    name = connection.settings_dict["NAME"]

    # Through another database: a database cannot close itself to connections.
    async with await psycopg.AsyncConnection.connect(db.conninfo(dbname="postgres"), autocommit=True) as admin:
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        try:
            await admin.execute(KILL_LISTENER, [f"%LISTEN%{CHANNEL}%"])
            await asyncio.sleep(1.0)  # several attempts to reconnect fail meanwhile
            assert not task.done()
        finally:
            await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')

    assert await next_notification(received)
    assert not task.done()
