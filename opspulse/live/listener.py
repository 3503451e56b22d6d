"""The web process's one LISTEN connection for the PostgreSQL live transport.

Notifications sent by opspulse.live.publish (inside the writing transaction, so only
for committed data) go to the hub of the store's dashboards in this process
(opspulse.live.hub), which renders once for all of them, and to the overviews and
wallboards that show the store (opspulse.live.storewatch); a sign-out
(opspulse.live.sessions) closes the session's dashboards, and a team change has the
user's dashboards re-check their access. After a lost connection
the listener reconnects and asks every dashboard of the process to re-read the
database, since NOTIFYs sent while it was away are gone.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random

import psycopg
from django.conf import settings

from opspulse.lib import db
from opspulse.live.access import watch
from opspulse.live.hub import hubs
from opspulse.live.publish import NOTIFY_CHANNEL
from opspulse.live.storewatch import store_watches

logger = logging.getLogger("opspulse.live")

_task: asyncio.Task | None = None
connected = asyncio.Event()


async def start() -> None:
    global _task
    if settings.LIVE_TRANSPORT != "postgres" or _task is not None:
        return
    _task = asyncio.create_task(_run(), name="opspulse-live-listener")


async def stop() -> None:
    global _task, connected
    if _task is not None:
        _task.cancel()
        try:
            await _task
        except asyncio.CancelledError:
            pass
        _task = None
        # A fresh event: the next start may run in another event loop.
        connected = asyncio.Event()


async def _run() -> None:
    delay = 0.5
    first = True
    while True:
        try:
            async with await psycopg.AsyncConnection.connect(
                db.conninfo(application_name="opspulse-live"), autocommit=True
            ) as conn:
                await conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
                connected.set()
                delay = 0.5
                if not first:
                    hubs().resync_all()
                    store_watches().resync_all()
                first = False
                async for notify in conn.notifies():
                    dispatch(notify.payload)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # connection lost or database restarting
            connected.clear()
            logger.warning("live listener lost its connection (%s); reconnecting", exc)
            await asyncio.sleep(delay + random.uniform(0, delay))
            delay = min(delay * 2, 10)


def dispatch(payload: str) -> None:
    """Hand one notification's payload to this process's dashboards."""
    try:
        data = json.loads(payload)
        if "signed_out" in data:
            watch().sign_out(str(data["signed_out"]))
            return
        if "recheck_user" in data:
            watch().recheck_user(int(data["recheck_user"]))
            return
        store, messages = data["store"], data["messages"]
    except (ValueError, KeyError, TypeError):
        logger.warning("ignoring malformed live notification")
        return
    # The store's dashboards in this process share one hub: one call reaches them all.
    hub = hubs().for_store(store)
    if hub is not None and isinstance(messages, list):
        hub.on_messages(messages)
    # Overviews and wallboards showing the store re-read what they show.
    store_watches().changed(store)
