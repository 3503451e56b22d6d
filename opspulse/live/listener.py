"""The web process's one LISTEN connection: the PostgreSQL live transport's receiving
side (opspulse.live.transports), started and stopped by the process's lifespan.

Notifications sent by opspulse.lib.broadcast (inside the writing transaction, so only
for committed data) go to the hub of the store's dashboards in this process
(opspulse.live.hub), which renders once for all of them, and to the overviews and
wallboards that show the store (opspulse.live.storewatch); a sign-out
(close_session_sockets) closes the session's dashboards, and a team change has the
user's dashboards re-check their access. After a lost connection
the listener reconnects and asks every dashboard of the process to re-read the
database, since NOTIFYs sent while it was away are gone.

It also keeps when it last connected and when each store's last message arrived, so a
dashboard that opens its socket right after its page was rendered can be told that its
page is still current (page_is_current) instead of being sent every panel again.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time

import psycopg

from opspulse.lib import db
from opspulse.lib.broadcast import NOTIFY_CHANNEL
from opspulse.live.access import watch
from opspulse.live.hub import hubs
from opspulse.live.panels import mentions_alerts
from opspulse.live.storewatch import store_watches

logger = logging.getLogger("opspulse.live")

# A page is never taken for current once it is this old: figures move with the clock
# alone (the 30-minute cart window, "yesterday by this time"), without any message.
PAGE_CURRENT_SECONDS = 10.0
# Pages may be rendered by a web process on another host: wall clocks may differ this much.
CLOCK_SKEW_SECONDS = 1.0

_task: asyncio.Task | None = None
connected = asyncio.Event()
# Wall-clock times: since when the LISTEN connection has been up (None while it is down),
# and when each store's last message arrived (by the store's public id).
listening_since: float | None = None
last_message_at: dict[str, float] = {}


async def start() -> None:
    global _task
    if _task is not None:
        return
    _task = asyncio.create_task(_run(), name="opspulse-live-listener")


async def stop() -> None:
    global _task, connected, listening_since
    listening_since = None
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
    global listening_since
    delay = 0.5
    first = True
    while True:
        try:
            async with await psycopg.AsyncConnection.connect(
                db.conninfo(application_name="opspulse-live"), autocommit=True
            ) as conn:
                await conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
                listening_since = time.time()
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
            listening_since = None
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
    last_message_at[str(store)] = time.time()
    # The store's dashboards in this process share one hub: one call reaches them all.
    hub = hubs().for_store(store)
    if hub is not None and isinstance(messages, list):
        hub.on_messages(messages)
    # Overviews and wallboards showing the store re-read what they show.
    store_watches().changed(store, alerts=mentions_alerts(messages))


def page_is_current(store: str, rendered_at: float) -> bool:
    """Whether a dashboard page of `store` whose render began at `rendered_at` (the
    rendering process's time.time(), before its first read) still shows what the
    database holds: it is recent, this listener was connected throughout, and no
    message of the store arrived since.

    A message committed before the page's first read arrived here before the render
    began (give or take the clocks' skew), so the page shows it; one committed after
    arrives after, and the page may lack it.
    """
    if listening_since is None:
        return False
    since = rendered_at - CLOCK_SKEW_SECONDS
    age = time.time() - rendered_at
    return (
        -CLOCK_SKEW_SECONDS <= age <= PAGE_CURRENT_SECONDS
        and listening_since <= since
        and last_message_at.get(str(store), float("-inf")) < since
    )
